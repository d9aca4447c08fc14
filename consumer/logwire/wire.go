// Protobuf wire primitives, checked exactly as the SDK's gogo-generated Unmarshal code (log.pb.go) checks them.
package logwire

import "errors"

// ErrMalformed is matched (errors.Is) by every error Walk returns.
var ErrMalformed = errors.New("logwire: malformed LogGroupList")

// malformed is a reason; a constant, so returning one allocates nothing.
type malformed string

func (e malformed) Error() string        { return string(e) }
func (e malformed) Is(target error) bool { return target == ErrMalformed }

// The reasons mirror gogo's errors; which one is reported may differ from
// gogo's when an input has several defects, but there is one exactly when
// gogo has one.
const (
	errTruncated   malformed = "unexpected end of input"              // io.ErrUnexpectedEOF
	errOverflow    malformed = "varint longer than 10 bytes"          // ErrIntOverflowLog
	errLength      malformed = "negative or overflowing length"       // ErrInvalidLengthLog
	errEndGroup    malformed = "end-group wire type outside a group"  // "wiretype end group for non-group"
	errIllegalTag  malformed = "field number not positive"            // "illegal tag"
	errIllegalWire malformed = "wire type 6 or 7"                     // "illegal wireType"
	errWireType    malformed = "known field with the wrong wire type" // "wrong wireType = %d for field"
	errMissingTime malformed = "log without Time"                     // RequiredNotSetError
	errMissingKV   malformed = "content or tag without Key or Value"  // RequiredNotSetError
)

// Wire types.
const (
	wtVarint     = 0
	wtFixed64    = 1
	wtBytes      = 2
	wtStartGroup = 3
	wtEndGroup   = 4
	wtFixed32    = 5
)

// varint reads a varint at b[i:] and returns it with the index after it.
// As gogo: at most 10 bytes, bits past the 64th dropped without error.
func varint(b []byte, i int) (uint64, int, error) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1, nil
	}
	return varintSlow(b, i)
}

// varintSlow is kept out of line so that varint inlines.
//
//go:noinline
func varintSlow(b []byte, i int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, i, errTruncated
		}
		c := b[i]
		i++
		v |= uint64(c&0x7F) << shift
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, i, errOverflow
}

// tag reads a field key at b[i:]. As gogo, the field number is int32(key>>3)
// (so a key above 2^35 wraps onto the low 32 bits), it must be positive, and
// an end-group wire type is an error even for an unknown field.
func tag(b []byte, i int) (num int32, wt int, next int, err error) {
	var key uint64
	if i < len(b) && b[i] < 0x80 {
		key, next = uint64(b[i]), i+1
	} else if key, next, err = varintSlow(b, i); err != nil {
		return 0, 0, next, err
	}
	num, wt = int32(key>>3), int(key&7)
	if wt == wtEndGroup {
		return 0, 0, next, errEndGroup
	}
	if num <= 0 {
		return 0, 0, next, errIllegalTag
	}
	return num, wt, next, nil
}

// length reads the length prefix of a length-delimited field at b[i:] and
// returns the payload's bounds [start, end) in b.
func length(b []byte, i int) (start, end int, err error) {
	v, i, err := varint(b, i)
	if err != nil {
		return 0, 0, err
	}
	n := int(v)
	if n < 0 {
		return 0, 0, errLength
	}
	end = i + n
	if end < 0 {
		return 0, 0, errLength
	}
	if end > len(b) {
		return 0, 0, errTruncated
	}
	return i, end, nil
}

// skip skips an unknown field whose key (of wire type wt) ended at b[i:]
// and returns the index after it. It is gogo's skipLog: start groups nest
// until their end-group keys, whatever their field numbers (inside a group
// even field number 0 passes), and anything running past b is an error.
func skip(b []byte, i int, wt int) (int, error) {
	depth := 0
	for {
		switch wt {
		case wtVarint:
			var err error
			if _, i, err = varint(b, i); err != nil {
				return i, err
			}
		case wtFixed64:
			i += 8
		case wtBytes:
			v, next, err := varint(b, i)
			if err != nil {
				return next, err
			}
			n := int(v)
			if n < 0 {
				return next, errLength
			}
			i = next + n
		case wtStartGroup:
			depth++
		case wtEndGroup:
			// Unreachable at depth 0: tag rejects it before skip is called.
			if depth == 0 {
				return i, errEndGroup
			}
			depth--
		case wtFixed32:
			i += 4
		default:
			return i, errIllegalWire
		}
		if i < 0 {
			return i, errLength
		}
		if depth == 0 {
			if i > len(b) {
				return i, errTruncated
			}
			return i, nil
		}
		// Inside a group: the next key, with no field-number check.
		if i >= len(b) {
			return i, errTruncated
		}
		key, next, err := varint(b, i)
		if err != nil {
			return next, err
		}
		i, wt = next, int(key&7)
	}
}
