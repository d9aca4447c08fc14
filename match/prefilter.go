// The multi-literal searcher: which of a set of literals a value contains, in one pass over its bytes.
package match

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
)

// searcher looks for a fixed set of literals (exact or ASCII-folding).
//
// Literals of two bytes or more are found through a filter on byte pairs:
// a 64K-bit table holds, for each literal, the pairs at stride
// consecutive offsets (its rarest such window), in every ASCII case the
// literal allows. Scanning tests the pair at every stride-th position; any
// occurrence of the literal puts one of its window's pairs on such a
// position. A set bit is confirmed against the literals filed under that
// pair's first byte and offset. One-byte literals use a byte table. A
// single case-sensitive literal uses bytes.Index instead.
type searcher struct {
	lits   []lit
	minLen int // shorter values hold no literal: not scanned

	one []byte // the only literal, case-sensitive: bytes.Index

	pairs  *[1 << 16 / 64]uint64 // pair filter; nil without literals of 2+ bytes
	stride int
	// Candidates by window offset k and folded first byte b: entries
	// [start[k*256+b], start[k*256+b+1]).
	start   []uint16
	entries []pairEntry

	singles *[256][]int32 // one-byte literals by byte (both cases when folding); nil without
}

// pairEntry files literal lit under its window's pair at offset k
// (the window starts at from): a pair at i means a start at i-k-from.
type pairEntry struct {
	second byte // folded second byte of the pair
	lit    int32
	back   int32 // k + the window's start in the literal
}

// maxStride bounds the scan step: a longer step skips more bytes but puts
// more pairs in the filter, so more false hits.
const maxStride = 4

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
	type filed struct {
		k     int
		first byte
		e     pairEntry
	}
	var all []filed
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
		for k := 0; k < s.stride; k++ {
			a, b := l.s[from+k], l.s[from+k+1]
			for _, x := range caseVariants(a, l.fold) {
				for _, y := range caseVariants(b, l.fold) {
					p := uint16(x) | uint16(y)<<8
					s.pairs[p>>6] |= 1 << (p & 63)
				}
			}
			all = append(all, filed{k, lower[a], pairEntry{lower[b], int32(i), int32(from + k)}})
		}
	}
	if s.pairs != nil {
		s.start = make([]uint16, s.stride*256+1)
		for _, f := range all {
			s.start[f.k*256+int(f.first)+1]++
		}
		for i := 1; i < len(s.start); i++ {
			s.start[i] += s.start[i-1]
		}
		s.entries = make([]pairEntry, len(all))
		next := slices.Clone(s.start)
		for _, f := range all {
			at := f.k*256 + int(f.first)
			s.entries[next[at]] = f.e
			next[at]++
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

// confirm checks the literals filed under the pair at i, for each window
// offset it may have.
func (s *searcher) confirm(v []byte, i int, hit func(int32) bool) bool {
	first, second := int(lower[v[i]]), lower[v[i+1]]
	for k := 0; k < s.stride; k++ {
		at := k*256 + first
		for _, e := range s.entries[s.start[at]:s.start[at+1]] {
			if e.second == second && int(e.back) <= i && s.lits[e.lit].at(v, i-int(e.back)) && !hit(e.lit) {
				return false
			}
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
