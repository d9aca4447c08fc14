// Differential fuzzing: RuleSet.Match against plain regexp on random rules and random, often invalid UTF-8, logs.
package match

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
)

// ruleFragments are the pieces random regexes are made of: literals whose
// case orbits leave ASCII, U+FFFD, anchors, flags, classes, repetitions
// that make a literal optional, empty alternatives.
var ruleFragments = []string{
	"a", "b", "ab", "k", "K", "s", "S", "\u212a", "\u017f", "é", "É", "ß", "ẞ", "σ", "Σ", "ς",
	"error", "Err", "exception", "bot", "spider", "panic: ", "5", "x", "xy", " ", "\\.", "-",
	"\\d", "[0-9]", "[a-c]", "[^a]", "[kK]", "[sſ]", "[Kk\u212a]", "[ab]", "\\w", "\\W", "\\s", "\\pL", "[[:upper:]]",
	"[\\x{80}-\\x{10FFFF}]", "[\\x00-\\x7f]", ".", "(?s).", "\\x00", "\n", "\\n",
	"(?i)", "(?-i)", "(?m)", "(?s)", "(?i:", "(?:", "(", ")", ")", "|", "|",
	"^", "$", "\\A", "\\z", "\\b", "\\B",
	"*", "+", "?", "{0,}", "{2}", "{1,3}", "{0,2}", "*?", "{4,}",
	"\\x{FFFD}", "\uFFFD", "[\\x{FFFD}]", "\\Q.*\\E", "\\Qa|b\\E", "()", "(|a)", "(a|)",
}

// valueFragments are the pieces random values are made of, next to raw bytes.
var valueFragments = []string{
	"a", "b", "A", "B", "k", "K", "s", "S", "\u212a", "\u017f", "é", "É", "ß", "ẞ", "σ", "Σ", "ς",
	"error", "ERROR", "eRRor", "exception", "Exception", "bot", "BOT", "spider", "ſpider", "SPIDER",
	"panic: runtime error", "OutOfMemory", "5", "500", "5000", "123", "x", "xy", " ", ".", "-", "\n",
	"\xff", "\xfe", "\x80", "\xe2\x84", "\xe2\x84\xaa", "\xc5", "\xc5\xbf", "\xef\xbf\xbd", "\xef\xbf", "\x00",
}

var fieldNames = []string{"*", "*", "msg", "status", "a", ""}

// reader hands out the fuzz input's bytes, then zeros.
type reader struct{ b []byte }

func (r *reader) next() int {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return int(c)
}

func (r *reader) regex() string {
	n := 1 + r.next()%6
	s := ""
	for range n {
		s += ruleFragments[r.next()%len(ruleFragments)]
	}
	return s
}

// decodeSpecs turns bytes into up to four rules with up to two conditions
// each, dropping regexes that do not compile.
func decodeSpecs(b []byte) []Spec {
	r := &reader{b}
	var specs []Spec
	for i := range 1 + r.next()%4 {
		s := Spec{Name: fmt.Sprintf("r%d", i), Field: fieldNames[r.next()%len(fieldNames)], Regex: r.regex()}
		flags := r.next()
		if flags&8 != 0 { // anchored regexes take the byte-prefix path
			s.Regex = "^" + s.Regex
		}
		s.CaseInsensitive = flags&1 != 0
		for range flags >> 1 % 3 {
			c := Condition{Field: fieldNames[r.next()%len(fieldNames)], Regex: r.regex()}
			if _, err := regexp.Compile(c.Regex); err != nil {
				continue
			}
			if r.next()%2 == 0 {
				s.And = append(s.And, c)
			} else {
				s.Unless = append(s.Unless, c)
			}
		}
		expr := s.Regex
		if s.CaseInsensitive {
			expr = "(?i)" + expr
		}
		if _, err := regexp.Compile(expr); err == nil {
			specs = append(specs, s)
		}
	}
	return specs
}

// decodeLogs turns bytes into logs: each byte starts a field, a log,
// appends a fragment, or appends the next raw byte.
func decodeLogs(b []byte) [][]Field {
	r := &reader{b}
	logs := [][]Field{nil}
	for len(r.b) > 0 {
		cur := &logs[len(logs)-1]
		switch op := r.next(); op % 8 {
		case 0:
			logs = append(logs, nil)
		case 1, 2:
			*cur = append(*cur, Field{Key: []byte(fieldNames[1+r.next()%(len(fieldNames)-1)])})
		case 3, 4, 5:
			if len(*cur) == 0 {
				*cur = append(*cur, Field{Key: []byte("msg")})
			}
			f := &(*cur)[len(*cur)-1]
			f.Value = append(f.Value, valueFragments[r.next()%len(valueFragments)]...)
		default:
			if len(*cur) == 0 {
				*cur = append(*cur, Field{Key: []byte("a")})
			}
			f := &(*cur)[len(*cur)-1]
			f.Value = append(f.Value, byte(r.next()))
		}
	}
	return logs
}

// FuzzMatchEqualsRegexp checks that RuleSet.Match, with its literal
// prefilter, reports exactly what running regexp.Match on every value does.
// go test runs the seed corpus; `make fuzz` runs it longer.
func FuzzMatchEqualsRegexp(f *testing.F) {
	f.Add([]byte{0, 0, 7, 1, 2}, []byte{1, 0, 3, 7})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 800 {
		rules := make([]byte, 4+rng.IntN(40))
		logs := make([]byte, rng.IntN(120))
		for i := range rules {
			rules[i] = byte(rng.Uint32())
		}
		for i := range logs {
			logs[i] = byte(rng.Uint32())
		}
		f.Add(rules, logs)
	}
	f.Fuzz(func(t *testing.T, ruleBytes, logBytes []byte) {
		specs := decodeSpecs(ruleBytes)
		checkAgainstRegexp(t, specs, decodeLogs(logBytes))
	})
}

// checkAgainstRegexp compares RuleSet.Match with the reference on each log,
// reusing one matched slice as callers do.
func checkAgainstRegexp(t *testing.T, specs []Spec, logs [][]Field) {
	t.Helper()
	rs, err := Compile(specs)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", specs, err)
	}
	ref, err := newRefMatcher(specs)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]bool, len(specs))
	want := make([]bool, len(specs))
	for _, log := range logs {
		gotAny := rs.Match(log, got)
		wantAny := ref.Match(log, want)
		for i := range specs {
			if got[i] != want[i] {
				t.Fatalf("rule %+v on log %s: got %v, regexp says %v", specs[i], showLog(log), got[i], want[i])
			}
		}
		if gotAny != wantAny {
			t.Fatalf("log %s: Match returned %v, want %v", showLog(log), gotAny, wantAny)
		}
		clear(got)
		clear(want)
	}
}

func showLog(log []Field) string {
	s := "{"
	for i, f := range log {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%q=%q", f.Key, f.Value)
	}
	return s + "}"
}

// TestLargeRuleSetEqualsRegexp covers what small fuzz inputs do not: more
// atoms than fit Match's stack scratch, and groups of over 64 literal atoms.
func TestLargeRuleSetEqualsRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	var specs []Spec
	for len(specs) < 200 {
		for _, s := range decodeSpecs(random(40)) {
			s.Name = fmt.Sprintf("r%d", len(specs))
			if len(specs)%2 == 0 {
				s.Field = FullText // a group of many literal atoms
			}
			specs = append(specs, s)
		}
	}
	var logs [][]Field
	for range 20 {
		logs = append(logs, decodeLogs(random(200))...)
	}
	rs, _ := Compile(specs)
	if rs.words <= inlineWords || rs.candWords <= 1 {
		t.Fatalf("only %d atom words, %d candidate words: not a large set", rs.words, rs.candWords)
	}
	checkAgainstRegexp(t, specs, logs)
}
