// Pre-compressed log groups that can be joined into one valid LZ4 block without recompressing.
package slsemu

import (
	"errors"

	"github.com/pierrec/lz4/v4"
)

// segment is one framed LogGroupList entry compressed as a standalone LZ4 block,
// cut at its sequence boundaries so that several segments can be spliced into a
// single block: an LZ4 block must end with a literal-only sequence, so the tail
// literals of one segment are carried into the first sequence of the next.
//
// All byte slices alias one compressed buffer that is never modified after the
// segment is built, so readers need no lock.
type segment struct {
	rawLen int // uncompressed length of the framed group

	// Set when the block has at least one match. Then:
	//   headLiterals   literals of the first sequence
	//   firstMatch     that sequence's 2-byte offset and extra match-length bytes
	//   firstMatchCode the low nibble of its token
	//   middle         every following sequence except the final literal-only one
	hasMatch       bool
	headLiterals   []byte
	firstMatchCode byte
	firstMatch     []byte
	middle         []byte

	tailLiterals []byte // literals of the final literal-only sequence (all data when !hasMatch)
}

var errCorruptBlock = errors.New("lz4: corrupt block")

// newSegment compresses raw (one framed LogGroup) into a splice-able segment.
func newSegment(raw []byte, compressor *lz4.Compressor) segment {
	dst := make([]byte, lz4.CompressBlockBound(len(raw)))
	n, err := compressor.CompressBlock(raw, dst)
	if err != nil || n == 0 {
		// Incompressible (or too short for the compressor): keep it as literals.
		lit := append([]byte(nil), raw...)
		return segment{rawLen: len(raw), tailLiterals: lit}
	}
	seg, err := splitBlock(dst[:n:n], len(raw))
	if err != nil {
		lit := append([]byte(nil), raw...)
		return segment{rawLen: len(raw), tailLiterals: lit}
	}
	return seg
}

// splitBlock parses an LZ4 block into the parts of a segment.
func splitBlock(block []byte, rawLen int) (segment, error) {
	seg := segment{rawLen: rawLen}
	pos := 0
	middleFrom, middleTo := 0, 0
	for sequence := 0; ; sequence++ {
		if pos >= len(block) {
			return seg, errCorruptBlock
		}
		token := block[pos]
		pos++
		litLen, next, err := readLength(block, pos, int(token>>4))
		if err != nil {
			return seg, err
		}
		pos = next
		if litLen > len(block)-pos {
			return seg, errCorruptBlock
		}
		literals := block[pos : pos+litLen : pos+litLen]
		pos += litLen
		if pos == len(block) { // the final, literal-only sequence
			seg.tailLiterals = literals
			if seg.hasMatch {
				seg.middle = block[middleFrom:middleTo:middleTo]
			}
			return seg, nil
		}
		matchStart := pos
		if pos+2 > len(block) {
			return seg, errCorruptBlock
		}
		_, next, err = readLength(block, pos+2, int(token&0x0f))
		if err != nil {
			return seg, err
		}
		pos = next
		if sequence == 0 {
			seg.hasMatch = true
			seg.headLiterals = literals
			seg.firstMatchCode = token & 0x0f
			seg.firstMatch = block[matchStart:pos:pos]
			middleFrom = pos
		}
		middleTo = pos
	}
}

// readLength decodes an LZ4 length whose 4-bit token part is nibble.
func readLength(block []byte, pos, nibble int) (int, int, error) {
	length := nibble
	if nibble != 15 {
		return length, pos, nil
	}
	for {
		if pos >= len(block) {
			return 0, pos, errCorruptBlock
		}
		b := block[pos]
		pos++
		length += int(b)
		if b != 255 {
			return length, pos, nil
		}
	}
}

// appendLength writes the extra length bytes that follow a token nibble of 15.
func appendLength(dst []byte, length int) []byte {
	if length < 15 {
		return dst
	}
	length -= 15
	for length >= 255 {
		dst = append(dst, 255)
		length -= 255
	}
	return append(dst, byte(length))
}

// spliceBound is an upper bound of the block built from segs.
func spliceBound(segs []*storedGroup) int {
	n := 16
	for _, g := range segs {
		s := &g.segment
		n += len(s.headLiterals) + len(s.firstMatch) + len(s.middle) + len(s.tailLiterals) + 1 + (len(s.headLiterals)+len(s.tailLiterals))/255 + 2
	}
	return n
}

// appendSplicedBlock appends to dst one LZ4 block that decodes to the
// concatenation of the groups' raw bytes, and returns it with the raw length.
func appendSplicedBlock(dst []byte, groups []*storedGroup) ([]byte, int) {
	rawLen := 0
	// pending holds literals not yet written: the previous segment's tail
	// (and whole literal-only segments) waiting for the next match.
	var pending [][]byte
	pendingLen := 0
	for _, g := range groups {
		s := &g.segment
		rawLen += s.rawLen
		if !s.hasMatch {
			pending = append(pending, s.tailLiterals)
			pendingLen += len(s.tailLiterals)
			continue
		}
		litLen := pendingLen + len(s.headLiterals)
		dst = appendToken(dst, litLen, s.firstMatchCode)
		for _, p := range pending {
			dst = append(dst, p...)
		}
		dst = append(dst, s.headLiterals...)
		dst = append(dst, s.firstMatch...)
		dst = append(dst, s.middle...)
		pending = append(pending[:0], s.tailLiterals)
		pendingLen = len(s.tailLiterals)
	}
	dst = appendToken(dst, pendingLen, 0)
	for _, p := range pending {
		dst = append(dst, p...)
	}
	return dst, rawLen
}

func appendToken(dst []byte, litLen int, matchCode byte) []byte {
	nibble := litLen
	if nibble > 15 {
		nibble = 15
	}
	dst = append(dst, byte(nibble<<4)|matchCode)
	return appendLength(dst, litLen)
}
