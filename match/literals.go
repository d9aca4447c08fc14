// Required-literal extraction: the strings any match of a regex must contain, from its regexp/syntax tree.
package match

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// lit is a literal looked for in a value: its bytes compared exactly, or
// with ASCII letters compared case-insensitively when fold is set (then s
// is stored in lower case). Only ASCII letters fold: a rune whose case
// orbit leaves ASCII (k: K, U+212A KELVIN SIGN; s: ſ U+017F; é: É) is
// spelled out as one lit per orbit member, because folding changes byte
// lengths and a byte-wise fold would miss them.
type lit struct {
	s    string
	fold bool
}

// Limits that keep literal sets small enough to search in one pass.
const (
	maxSetSize   = 256 // literals in one set (cross products, unions, classes)
	maxClassSize = 64  // runes of a character class expanded into literals
)

// litInfo describes what a regex node can match.
type litInfo struct {
	// exact, when known: every match of the node is, as a whole, one of
	// these literals (under their fold rule).
	exact []lit
	known bool
	// precise: exact is the node's language, no more. False once a literal
	// was weakened (case-sensitive letters folded) or the node holds an
	// assertion (^, $, \b) that exact does not express.
	precise bool
	// req, when reqOK: every match contains one of these as a substring.
	req   []lit
	reqOK bool
}

// unknownInfo matches anything as far as literals can tell.
var unknownInfo = litInfo{}

// emptyInfo is a node that matches only the empty string; assertions are
// not precise, since they also constrain where it matches.
func emptyInfo(precise bool) litInfo {
	return litInfo{exact: []lit{{}}, known: true, precise: precise}
}

// literalPlan is what a compiled regex offers the prefilter.
type literalPlan struct {
	lits []lit
	// exact: a value matches the regex if and only if it contains one of
	// lits; the regex need not run.
	exact bool
}

// planLiterals extracts a regex's required literals. ok is false when
// there is no usable set (the regex can match without any literal, or only
// single bytes would be required, which every value has): run the regex.
func planLiterals(re *syntax.Regexp) (plan literalPlan, ok bool) {
	in := analyze(re)
	if in.known && in.precise && usable(in.exact) {
		return literalPlan{lits: in.exact, exact: true}, true
	}
	set, ok := bestReq(in)
	if !ok || minLen(set) < 2 {
		return literalPlan{}, false
	}
	return literalPlan{lits: set}, true
}

// usable: a non-empty set none of whose literals is empty (an empty
// literal is in every value, so the set would require nothing).
func usable(set []lit) bool {
	if len(set) == 0 {
		return false
	}
	for _, l := range set {
		if l.s == "" {
			return false
		}
	}
	return true
}

func minLen(set []lit) int {
	m := -1
	for _, l := range set {
		if m < 0 || len(l.s) < m {
			m = len(l.s)
		}
	}
	return m
}

// bestReq is the node's most selective required set: its exact set when
// usable, else its req.
func bestReq(in litInfo) ([]lit, bool) {
	var best []lit
	ok := false
	if in.known && usable(in.exact) {
		best, ok = in.exact, true
	}
	if in.reqOK && usable(in.req) && (!ok || better(in.req, best)) {
		best, ok = in.req, true
	}
	return best, ok
}

// better reports whether set a is expected to filter more than b: longer
// shortest literal first (up to 4 bytes, beyond which any literal is
// rare), then fewer literals.
func better(a, b []lit) bool {
	la, lb := min(minLen(a), 4), min(minLen(b), 4)
	if la != lb {
		return la > lb
	}
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return minLen(a) > minLen(b)
}

// analyze computes litInfo bottom-up. Every rule errs towards "unknown":
// a missing literal only costs speed, a wrong one costs correctness.
func analyze(re *syntax.Regexp) litInfo {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return emptyInfo(true)
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return emptyInfo(false)
	case syntax.OpLiteral:
		parts := make([]litInfo, len(re.Rune))
		for i, r := range re.Rune {
			parts[i] = runeInfo(r, re.Flags&syntax.FoldCase != 0)
		}
		return concatInfo(parts)
	case syntax.OpCharClass:
		return classInfo(re.Rune)
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpConcat:
		parts := make([]litInfo, len(re.Sub))
		for i, sub := range re.Sub {
			parts[i] = analyze(sub)
		}
		return concatInfo(parts)
	case syntax.OpAlternate:
		parts := make([]litInfo, len(re.Sub))
		for i, sub := range re.Sub {
			parts[i] = analyze(sub)
		}
		return alternateInfo(parts)
	case syntax.OpQuest:
		in := analyze(re.Sub[0])
		if !in.known || len(in.exact)+1 > maxSetSize {
			return unknownInfo
		}
		return litInfo{exact: normalize(append(slices.Clone(in.exact), lit{})), known: true, precise: in.precise}
	case syntax.OpPlus:
		return requireOnly(analyze(re.Sub[0]))
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requireOnly(analyze(re.Sub[0]))
		}
		return unknownInfo
	}
	// OpStar (may match nothing), OpAnyChar, OpAnyCharNotNL (too many
	// runes), OpNoMatch and anything new: no literal.
	return unknownInfo
}

// requireOnly keeps of in what holds for one or more repetitions of it.
func requireOnly(in litInfo) litInfo {
	set, ok := bestReq(in)
	return litInfo{req: set, reqOK: ok}
}

// runeInfo is one rune of a literal. U+FFFD gets no literal: regexp
// decodes each invalid byte as U+FFFD, so the bytes EF BF BD are not
// required for a match.
func runeInfo(r rune, fold bool) litInfo {
	if r == utf8.RuneError {
		return unknownInfo
	}
	if !fold {
		return litInfo{exact: []lit{{s: string(r)}}, known: true, precise: true}
	}
	return litInfo{exact: normalize(foldVariants(r)), known: true, precise: true}
}

// foldVariants lists r's case orbit as literals: the ASCII members as one
// folding literal, each other member spelled out.
func foldVariants(r rune) []lit {
	var out []lit
	ascii := false
	for f := r; ; {
		if f < utf8.RuneSelf {
			ascii = true
		} else {
			out = append(out, lit{s: string(f)})
		}
		if f = unicode.SimpleFold(f); f == r {
			break
		}
	}
	if ascii {
		lower := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf && (lower >= utf8.RuneSelf || f > lower) {
				lower = f // the lower-case ASCII member sorts last
			}
		}
		out = append(out, lit{s: string(lower), fold: true})
	}
	return out
}

// classInfo expands a small character class (ranges already case-folded
// by the parser) into one literal per rune.
func classInfo(ranges []rune) litInfo {
	n := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= utf8.RuneError && utf8.RuneError <= ranges[i+1] {
			return unknownInfo // U+FFFD: see runeInfo
		}
		n += int(ranges[i+1]-ranges[i]) + 1
		if n > maxClassSize {
			return unknownInfo
		}
	}
	if n == 0 {
		return unknownInfo // matches nothing; leave it to the regex
	}
	set := make([]lit, 0, n)
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			set = append(set, lit{s: string(r)})
		}
	}
	return litInfo{exact: normalize(set), known: true, precise: true}
}

// concatInfo multiplies the parts' exact sets left to right; when the
// product grows too big it keeps what it has as a required set and starts
// again. Each part's own required set is a candidate as well.
func concatInfo(parts []litInfo) litInfo {
	cur, curPrecise := []lit{{}}, true
	whole := true // cur covers every part so far
	var cands [][]lit
	keep := func(set []lit) {
		if usable(set) {
			cands = append(cands, set)
		}
	}
	for _, p := range parts {
		if p.known && len(cur)*len(p.exact) <= maxSetSize {
			var precise bool
			cur, precise = cross(cur, p.exact)
			curPrecise = curPrecise && p.precise && precise
			continue
		}
		whole = false
		keep(cur)
		if p.known {
			cur, curPrecise = p.exact, p.precise
		} else {
			if p.reqOK {
				keep(p.req)
			}
			cur, curPrecise = []lit{{}}, true
		}
	}
	keep(cur)
	out := litInfo{}
	if whole {
		out.exact, out.known, out.precise = cur, true, curPrecise
	}
	for _, c := range cands {
		if !out.reqOK || better(c, out.req) {
			out.req, out.reqOK = c, true
		}
	}
	return out
}

// cross is {x+y : x in a, y in b}. Joining a case-sensitive literal that
// has letters to a folding one spells the folding one out in its ASCII
// cases when that stays small; otherwise the result folds all of it,
// which matches more than the regex does: precise is then false.
func cross(a, b []lit) (out []lit, precise bool) {
	precise = true
	out = make([]lit, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			if x.fold == y.fold || x.fold && !hasLetter(y.s) || y.fold && !hasLetter(x.s) {
				fold := x.fold || y.fold
				s := x.s + y.s
				if fold {
					s = lowerASCII(s)
				}
				out = append(out, lit{s: s, fold: fold})
				continue
			}
			xs, ys := spellCases(x), spellCases(y)
			if len(xs)*len(ys) > maxCaseSpellings {
				precise = false
				out = append(out, lit{s: lowerASCII(x.s + y.s), fold: true})
				continue
			}
			for _, xv := range xs {
				for _, yv := range ys {
					out = append(out, lit{s: xv + yv})
				}
			}
		}
	}
	if len(out) > maxSetSize {
		// Too many spellings: fold them all instead.
		for i := range out {
			if hasLetter(out[i].s) {
				out[i] = lit{s: lowerASCII(out[i].s), fold: true}
				precise = false
			}
		}
	}
	return normalize(out), precise
}

// maxCaseSpellings bounds spelling a folding literal out case by case.
const maxCaseSpellings = 32

// spellCases lists a literal's spellings: itself when case-sensitive,
// every ASCII case combination when folding (may be over the limit).
func spellCases(l lit) []string {
	if !l.fold {
		return []string{l.s}
	}
	n := countLetters(l.s)
	if n > 10 {
		return make([]string, maxCaseSpellings+1) // too many; only the count matters
	}
	out := make([]string, 0, 1<<n)
	for mask := 0; mask < 1<<n; mask++ {
		b, k := []byte(l.s), 0
		for i, c := range b {
			if isLetter(c) {
				if mask&(1<<k) != 0 {
					b[i] = c &^ 0x20
				}
				k++
			}
		}
		out = append(out, string(b))
	}
	return out
}

// alternateInfo unions the parts: exact when all are, required when each
// part requires something.
func alternateInfo(parts []litInfo) litInfo {
	out := litInfo{known: true, precise: true, reqOK: true}
	for _, p := range parts {
		if out.known && p.known && len(out.exact)+len(p.exact) <= maxSetSize {
			out.exact = append(out.exact, p.exact...)
			out.precise = out.precise && p.precise
		} else {
			out.exact, out.known, out.precise = nil, false, false
		}
		if set, ok := bestReq(p); out.reqOK && ok && len(out.req)+len(set) <= maxSetSize {
			out.req = append(out.req, set...)
		} else {
			out.req, out.reqOK = nil, false
		}
	}
	if out.known {
		out.exact = normalize(out.exact)
	}
	if out.reqOK {
		out.req = normalize(out.req)
	}
	return out
}

// normalize puts a set in canonical form without changing what it
// matches: folding literals without letters become case-sensitive, exact
// duplicates go, case-sensitive literals covered by a folding one go, and
// a complete family of ASCII case variants becomes one folding literal.
func normalize(set []lit) []lit {
	folded := map[string]bool{}
	for i, l := range set {
		if l.fold {
			if !hasLetter(l.s) {
				set[i].fold = false
			} else {
				folded[l.s] = true
			}
		}
	}
	variants := map[string]int{} // lower-cased case-sensitive literal -> distinct variants seen
	seen := map[lit]bool{}
	out := set[:0:0]
	for _, l := range set {
		if seen[l] || !l.fold && folded[lowerASCII(l.s)] {
			continue
		}
		seen[l] = true
		out = append(out, l)
		if !l.fold && hasLetter(l.s) {
			variants[lowerASCII(l.s)]++
		}
	}
	merged := out[:0]
	done := map[string]bool{}
	for _, l := range out {
		if !l.fold {
			key := lowerASCII(l.s)
			if letters := countLetters(l.s); letters > 0 && letters <= 6 && variants[key] == 1<<letters {
				if !done[key] {
					done[key] = true
					merged = append(merged, lit{s: key, fold: true})
				}
				continue
			}
		}
		merged = append(merged, l)
	}
	slices.SortFunc(merged, func(a, b lit) int {
		if c := strings.Compare(a.s, b.s); c != 0 {
			return c
		}
		if a.fold == b.fold {
			return 0
		}
		if a.fold {
			return 1
		}
		return -1
	})
	return merged
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func hasLetter(s string) bool { return countLetters(s) > 0 }

func countLetters(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isLetter(s[i]) {
			n++
		}
	}
	return n
}

// lowerASCII lower-cases ASCII letters only, leaving other bytes alone.
func lowerASCII(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
