// Anchored prefixes: a regex starting with ^ (\A) checked byte by byte at the value's start.
package match

import (
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// byteSet is a set of byte values.
type byteSet [4]uint64

func (s *byteSet) add(c byte)       { s[c>>6] |= 1 << (c & 63) }
func (s *byteSet) has(c byte) bool  { return s[c>>6]&(1<<(c&63)) != 0 }
func singleByte(c byte) (s byteSet) { s.add(c); return s }
func (s *byteSet) addRange(lo, hi int) {
	for c := lo; c <= hi; c++ {
		s.add(byte(c))
	}
}

// anchorMode tells what passing an anchored prefix proves.
type anchorMode uint8

const (
	anchorFilter anchorMode = iota // only that a match is possible: run the regex
	anchorPrefix                   // a match: what follows the prefix can match empty
	anchorWhole                    // a match if the value is exactly the prefix's length (regex ends in $)
)

// anchored is the prefix a value must start with for a regex anchored at
// the start of the text: one byte set per position.
type anchored struct {
	sets []byteSet
	mode anchorMode
}

// maxAnchored bounds the positions checked.
const maxAnchored = 32

// match reports whether v passes the prefix (and, for anchorWhole, its
// length). Only ASCII runes and the exact UTF-8 bytes of other runes are
// in sets, so positions are rune boundaries as regexp decodes them.
func (a *anchored) match(v []byte) bool {
	if len(v) < len(a.sets) || a.mode == anchorWhole && len(v) != len(a.sets) {
		return false
	}
	for i := range a.sets {
		if !a.sets[i].has(v[i]) {
			return false
		}
	}
	return true
}

// planAnchored derives the anchored prefix of a regex that begins with \A
// (^ without (?m)); ok is false for any other regex.
func planAnchored(re *syntax.Regexp) (a anchored, ok bool) {
	items := flatten(re, nil)
	if len(items) == 0 || items[0].Op != syntax.OpBeginText {
		return anchored{}, false
	}
	items = items[1:]
	for len(items) > 0 && len(a.sets) < maxAnchored {
		it := items[0]
		switch it.Op {
		case syntax.OpBeginText:
			if len(a.sets) == 0 {
				items = items[1:] // another \A at the start is a no-op
				continue
			}
		case syntax.OpLiteral:
			n := 0
			fold := it.Flags&syntax.FoldCase != 0
			for _, r := range it.Rune {
				sets, ok := runeSets(r, fold)
				if !ok || len(a.sets)+len(sets) > maxAnchored {
					break
				}
				a.sets = append(a.sets, sets...)
				n++
			}
			if n < len(it.Rune) {
				return a, true // stopped inside the literal: a filter only
			}
			items = items[1:]
			continue
		case syntax.OpCharClass:
			if s, ok := asciiClass(it.Rune); ok {
				a.sets = append(a.sets, s)
				items = items[1:]
				continue
			}
		case syntax.OpPlus:
			// x+ is x then x*, and x* can match empty: one position, and the
			// prefix ends here.
			if s, ok := oneByte(it.Sub[0]); ok {
				a.sets = append(a.sets, s)
				if allNullable(items[1:]) {
					a.mode = anchorPrefix
				}
				return a, true
			}
		}
		break
	}
	switch {
	case allNullable(items):
		a.mode = anchorPrefix
	case len(items) == 1 && items[0].Op == syntax.OpEndText:
		a.mode = anchorWhole
	}
	return a, true
}

// flatten lists the items of nested concatenations and captures in order.
func flatten(re *syntax.Regexp, out []*syntax.Regexp) []*syntax.Regexp {
	switch re.Op {
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			out = flatten(sub, out)
		}
	case syntax.OpCapture:
		out = flatten(re.Sub[0], out)
	default:
		out = append(out, re)
	}
	return out
}

// runeSets is one rune as per-byte sets: ASCII with its ASCII case
// partner under fold; other runes by their exact bytes, case-sensitive
// only. Not U+FFFD, which invalid bytes also match; not a rune whose case
// orbit leaves ASCII (k, s), whose other members have other lengths.
func runeSets(r rune, fold bool) ([]byteSet, bool) {
	if r == utf8.RuneError {
		return nil, false
	}
	if r < utf8.RuneSelf {
		s := singleByte(byte(r))
		if fold {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				if f >= utf8.RuneSelf {
					return nil, false
				}
				s.add(byte(f))
			}
		}
		return []byteSet{s}, true
	}
	if fold && unicode.SimpleFold(r) != r {
		return nil, false
	}
	var sets []byteSet
	for _, c := range []byte(string(r)) {
		sets = append(sets, singleByte(c))
	}
	return sets, true
}

// asciiClass is a character class of ASCII runes only (already folded by
// the parser) as a byte set.
func asciiClass(ranges []rune) (byteSet, bool) {
	var s byteSet
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i+1] >= utf8.RuneSelf {
			return byteSet{}, false
		}
		s.addRange(int(ranges[i]), int(ranges[i+1]))
	}
	return s, len(ranges) > 0
}

// oneByte is a node matching exactly one ASCII byte.
func oneByte(re *syntax.Regexp) (byteSet, bool) {
	switch re.Op {
	case syntax.OpCharClass:
		return asciiClass(re.Rune)
	case syntax.OpLiteral:
		if len(re.Rune) == 1 && re.Rune[0] < utf8.RuneSelf {
			if sets, ok := runeSets(re.Rune[0], re.Flags&syntax.FoldCase != 0); ok {
				return sets[0], true
			}
		}
	}
	return byteSet{}, false
}

func allNullable(items []*syntax.Regexp) bool {
	for _, it := range items {
		if !nullable(it) {
			return false
		}
	}
	return true
}

// nullable reports whether re matches the empty string wherever it is
// tried. Assertions depend on the context, so they count as not nullable.
func nullable(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpRepeat:
		return re.Min == 0 || nullable(re.Sub[0])
	case syntax.OpPlus, syntax.OpCapture:
		return nullable(re.Sub[0])
	case syntax.OpConcat:
		return allNullable(re.Sub)
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if nullable(sub) {
				return true
			}
		}
	}
	return false
}
