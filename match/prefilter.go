// The multi-literal searcher: which of a set of literals a value contains, in one pass over its bytes.
package match

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// searcher looks for a fixed set of literals (exact or ASCII-folding).
//
// Literals of two bytes or more are found through a filter on byte pairs:
// a 64K-bit table holds, for each literal, the pairs at stride
// consecutive offsets (its rarest such window), in every ASCII case the
// literal allows. Scanning tests the pair at every stride-th position; any
// occurrence of the literal puts one of its window's pairs on such a
// position. A set bit is confirmed against the literals filed under the
// folded pair, at the offset each has it. One-byte literals use a byte
// table. A single case-sensitive literal uses bytes.Index instead.
//
// This is a filter, not an automaton: no state is carried from byte to
// byte, so the loop is a load and a bit test per position, and a step of
// stride bytes skips the rest. Aho-Corasick would touch every byte.
type searcher struct {
	lits   []lit
	minLen int // shorter values hold no literal: not scanned

	one []byte // the only literal, case-sensitive: bytes.Index

	pairs  *[1 << 16 / 64]uint64 // pair filter; nil without literals of 2+ bytes
	stride int
	// Candidates by folded pair: an open-addressing table of slots, each
	// a pair and its run of entries.
	slots   []pairSlot
	entries []pairEntry

	singles *[256][]int32 // one-byte literals by byte (both cases when folding); nil without
}

// pairEntry files literal lit under a pair of its window: a pair at i
// means the literal would start at i-back.
type pairEntry struct {
	lit  int32
	back int32
}

// pairSlot is a folded pair (plus one; 0 is an empty slot) and its
// entries [from, to).
type pairSlot struct {
	key      uint32
	from, to uint32
}

// slotOf is where a folded pair's probe sequence starts.
func slotOf(pair uint16, mask int) int { return int(uint32(pair)*0x9E3779B1>>16) & mask }

// maxStride bounds the scan step: a longer step skips more bytes but puts
// more pairs in the filter, so more false hits.
const maxStride = 8

// lower folds ASCII upper-case letters.
var lower = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i) + 'a' - 'A'
		}
	}
	return t
}()

func newSearcher(lits []lit) *searcher {
	s := &searcher{lits: lits, minLen: minLen(lits)}
	if len(lits) == 1 && !lits[0].fold && len(lits[0].s) >= 2 {
		s.one = []byte(lits[0].s)
		return s
	}
	minPair := 0
	for _, l := range lits {
		if n := len(l.s); n >= 2 && (minPair == 0 || n < minPair) {
			minPair = n
		}
	}
	byPair := map[uint16][]pairEntry{} // folded pair -> entries
	var order []uint16
	if minPair > 0 {
		s.pairs = new([1 << 16 / 64]uint64)
		s.stride = chooseStride(lits, min(minPair-1, maxStride))
	}
	for i, l := range lits {
		if len(l.s) == 1 {
			if s.singles == nil {
				s.singles = new([256][]int32)
			}
			for _, c := range caseVariants(l.s[0], l.fold) {
				s.singles[c] = append(s.singles[c], int32(i))
			}
			continue
		}
		from := rarestWindow(l, s.stride)
		for k := from; k < from+s.stride; k++ {
			a, b := l.s[k], l.s[k+1]
			for _, x := range caseVariants(a, l.fold) {
				for _, y := range caseVariants(b, l.fold) {
					p := uint16(x) | uint16(y)<<8
					s.pairs[p>>6] |= 1 << (p & 63)
				}
			}
			key := uint16(lower[a]) | uint16(lower[b])<<8
			if _, ok := byPair[key]; !ok {
				order = append(order, key)
			}
			byPair[key] = append(byPair[key], pairEntry{int32(i), int32(k)})
		}
	}
	if len(order) > 0 {
		size := 4
		for size < 2*len(order) {
			size *= 2
		}
		s.slots = make([]pairSlot, size)
		for _, key := range order {
			at := slotOf(key, size-1)
			for s.slots[at].key != 0 {
				at = (at + 1) & (size - 1)
			}
			from := uint32(len(s.entries))
			s.entries = append(s.entries, byPair[key]...)
			s.slots[at] = pairSlot{uint32(key) + 1, from, uint32(len(s.entries))}
		}
	}
	return s
}

// chooseStride weighs a longer step (fewer positions tested) against the
// false hits of the extra pairs it files, with confirming a hit taken as
// confirmCost times testing a position.
func chooseStride(lits []lit, maxS int) int {
	const confirmCost = 30
	best, bestCost := 1, 0.0
	for stride := 1; stride <= maxS; stride++ {
		pairs := map[[2]byte]bool{}
		for _, l := range lits {
			if len(l.s) < 2 {
				continue
			}
			from := rarestWindow(l, stride)
			for k := from; k < from+stride; k++ {
				for _, x := range caseVariants(l.s[k], l.fold) {
					for _, y := range caseVariants(l.s[k+1], l.fold) {
						pairs[[2]byte{x, y}] = true
					}
				}
			}
		}
		hitRate := 0.0
		for p := range pairs {
			hitRate += byteFrequency(p[0]) * byteFrequency(p[1])
		}
		if cost := (1 + confirmCost*hitRate) / float64(stride); stride == 1 || cost < bestCost {
			best, bestCost = stride, cost
		}
	}
	return best
}

// rarestWindow picks where, in l, the stride pairs filed for it start:
// the window whose pairs are expected least often in logs.
func rarestWindow(l lit, stride int) int {
	best, bestCost := 0, -1.0
	for from := 0; from+stride < len(l.s); from++ {
		cost := 0.0
		for k := from; k < from+stride; k++ {
			cost += pairFrequency(l.s[k], l.s[k+1], l.fold)
		}
		if bestCost < 0 || cost < bestCost {
			best, bestCost = from, cost
		}
	}
	return best
}

// pairFrequency estimates how often a byte pair occurs in log text, from
// byteFrequency; a folding pair counts all its cases.
func pairFrequency(a, b byte, fold bool) float64 {
	f := func(c byte) float64 {
		if fold && isLetter(c) {
			return byteFrequency(c|0x20) + byteFrequency(c&^0x20)
		}
		return byteFrequency(c)
	}
	return f(a) * f(b)
}

// byteFrequency is a rough share of c in log text: lower-case letters in
// English order first, then digits, common punctuation, upper case; other
// bytes are rare.
func byteFrequency(c byte) float64 {
	const common = "etaoinsrhldcumfpgwybvkxjqz"
	switch {
	case c == ' ':
		return 0.12
	case 'a' <= c && c <= 'z':
		return 0.08 / (1 + float64(strings.IndexByte(common, c))/4)
	case '0' <= c && c <= '9':
		return 0.04
	case strings.IndexByte("/.-_=:,;\"()[]", c) >= 0:
		return 0.02
	case 'A' <= c && c <= 'Z':
		return 0.005
	}
	return 0.001
}

// caseVariants is c, and its other ASCII case when folding.
func caseVariants(c byte, fold bool) []byte {
	if fold && isLetter(c) {
		return []byte{c | 0x20, c &^ 0x20}
	}
	return []byte{c}
}

// scan calls hit with the index of each literal found in v, possibly more
// than once for the same literal; hit returns false to stop the scan.
func (s *searcher) scan(v []byte, hit func(int32) bool) {
	if len(v) < s.minLen {
		return
	}
	if s.one != nil {
		if bytes.Index(v, s.one) >= 0 {
			hit(0)
		}
		return
	}
	if s.pairs != nil {
		pairs, step := s.pairs, s.stride
		for i := 0; i+1 < len(v); i += step {
			p := binary.LittleEndian.Uint16(v[i:])
			if pairs[p>>6]&(1<<(p&63)) != 0 && !s.confirm(v, i, hit) {
				return
			}
		}
	}
	if s.singles != nil {
		for _, c := range v {
			for _, l := range s.singles[c] {
				if !hit(l) {
					return
				}
			}
		}
	}
}

// confirm checks the literals filed under the pair at i.
func (s *searcher) confirm(v []byte, i int, hit func(int32) bool) bool {
	key := uint16(lower[v[i]]) | uint16(lower[v[i+1]])<<8
	mask := len(s.slots) - 1
	for at := slotOf(key, mask); s.slots[at].key != 0; at = (at + 1) & mask {
		if sl := &s.slots[at]; sl.key == uint32(key)+1 {
			for _, e := range s.entries[sl.from:sl.to] {
				if int(e.back) <= i && s.lits[e.lit].at(v, i-int(e.back)) && !hit(e.lit) {
					return false
				}
			}
			break
		}
	}
	return true
}

// at reports whether l occurs in v at offset i.
func (l *lit) at(v []byte, i int) bool {
	if len(v)-i < len(l.s) {
		return false
	}
	w := v[i : i+len(l.s)]
	if !l.fold {
		return string(w) == l.s
	}
	for j := range len(l.s) {
		if lower[w[j]] != l.s[j] {
			return false
		}
	}
	return true
}
