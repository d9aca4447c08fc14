// Pitfalls of literal prefiltering, each checked against regexp itself, and what extraction yields.
package match

import (
	"bytes"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
)

func TestPrefilterPitfalls(t *testing.T) {
	cases := []struct {
		regex string
		ci    bool
		value string
		want  bool
	}{
		// Unicode case folding: orbits that leave ASCII, and change byte lengths.
		{`(?i)k`, false, "\u212a", true}, // KELVIN SIGN
		{`(?i)k`, false, "K", true},
		{`k`, false, "\u212a", false},
		{`[kK]`, false, "\u212a", false},
		{`(?i)[k]`, false, "\u212a", true},
		{`(?i)s`, false, "\u017f", true}, // LONG S
		{`(?i)spider`, false, "GoogleBot ſpider", true},
		{`(?i)spider`, false, "SP\u0130DER", false}, // İ is not in i's orbit
		{`(?i)disk`, false, "DI\u017f\u212a full", true},
		{`disk`, true, "DI\u017f\u212a full", true}, // CaseInsensitive is (?i)
		{`error`, true, "ERROR", true},
		{`(?i)é`, false, "É", true},
		{`(?i)ß`, false, "\u1e9e", true},
		{`(?i)σ`, false, "ς", true},
		{`(?i)OutOfMemory`, false, "OUTOFMEMORY", true},
		{`OutOfMemory`, false, "outofmemory", false},
		{`(?i)error|exception`, false, "EXCEPTION", true},
		{`(?i)(a|b)c`, false, "BC", true},
		{`A(?i)b`, false, "aB", false}, // only the b folds
		{`A(?i)b`, false, "AB", true},
		// Invalid UTF-8 decodes as U+FFFD, one byte at a time.
		{`\x{FFFD}`, false, "\xff", true},
		{`\x{FFFD}`, false, "\xef\xbf\xbd", true},
		{`\x{FFFD}`, false, "a", false},
		{`a\x{FFFD}b`, false, "a\xffb", true},
		{`a\x{FFFD}{2}b`, false, "a\xe2\x84b", true},
		{`[^a]`, false, "\xff", true},
		{"\u212a", false, "\xe2\x84\xaa", true},
		{"\u212a", false, "\xe2\x84", false},
		// Flags, anchors, word boundaries.
		{`(?s)a.b`, false, "a\nb", true},
		{`a.b`, false, "a\nb", false},
		{`(?m)^error$`, false, "x\nerror\ny", true},
		{`^error$`, false, "x\nerror\ny", false},
		{`^5\d{2}$`, false, "503", true},
		{`^5\d{2}$`, false, "5030", false},
		{`^5\d{2}$`, false, " 503", false},
		{`^[0-9]{4,}`, false, "1234.5", true},
		{`^[0-9]{4,}`, false, "123.4", false},
		{`^[0-9]{4,}`, false, "\xff1234", false},
		{`\Aab`, false, "xab", false},
		{`ab\z`, false, "xab", true},
		{`ab\z`, false, "abx", false},
		{`\berror\b`, false, "errors", false},
		{`\berror\b`, false, "an error.", true},
		{`^(?i)k`, false, "\u212ax", true},
		// Empty-width matches: such a regex matches every value.
		{`(error|)`, false, "", true},
		{`a|`, false, "zzz", true},
		{`x{0,}`, false, "", true},
		{`(?:error){0,}`, false, "nothing", true},
		{`^`, false, "", true},
		{`^$`, false, "", true},
		{`^$`, false, "a", false},
		{`\b`, false, "", false},
		// Optional pieces, classes, quoting, plain literals.
		{`colou?r`, false, "color", true},
		{`colou?r`, false, "colour", true},
		{`colou?r`, false, "colouur", false},
		{`5\d{2}`, false, "HTTP 503", true},
		{`5\d{2}`, false, "HTTP 5x3", false},
		{`[0-9a-f]{8}`, false, "id=deadbeef", true},
		{`\Q.*\E`, false, "a.*b", true},
		{`\Q.*\E`, false, "ab", false},
		{`OutOfMemory`, false, "java.lang.OutOfMemoryError", true},
		{`panic: runtime error`, false, "panic: runtime error: index", true},
	}
	for _, c := range cases {
		expr := c.regex
		if c.ci {
			expr = "(?i)" + expr
		}
		if got := regexp.MustCompile(expr).MatchString(c.value); got != c.want {
			t.Fatalf("table is wrong: regexp %q on %q is %v", expr, c.value, got)
		}
		for _, field := range []string{"msg", FullText} {
			rs, err := Compile([]Spec{{Name: "r", Field: field, Regex: c.regex, CaseInsensitive: c.ci}})
			if err != nil {
				t.Fatal(err)
			}
			matched := make([]bool, 1)
			log := fields("other", "-", "msg", c.value)
			if got := rs.Match(log, matched); got != c.want || matched[0] != c.want {
				t.Errorf("%q (ci=%v, field %s) on %q: got %v, want %v", c.regex, c.ci, field, c.value, got, c.want)
			}
		}
	}
}

func TestPlanLiterals(t *testing.T) {
	cases := []struct {
		regex string
		lits  string // |-separated, "" when no prefilter; fold literals end in /i
		exact bool
	}{
		{`(?i)error|exception`, "error/i|exception/i", true},
		{`(?i)bot|crawler|spider`, "bot/i|crawler/i|spider/i|ſpider/i", true},
		{`(?i)k8s`, "k8s/i|k8\u017f/i|\u212a8s/i|\u212a8\u017f", true}, // K's and s's orbits spelled out
		{`OutOfMemory|panic: runtime error`, "OutOfMemory|panic: runtime error", true},
		{`colou?r`, "color|colour", true},
		{`[Ee]rror`, "Error|error", true},
		{`A(?i)b`, "AB|Ab", true},
		{`A(?i)bcdefg`, "abcdefg/i", false}, // too many spellings: folds the A too
		{`\berror\b`, "error", false},
		{`x*error`, "error", false},
		{`(?:timeout|refused) after \d+s`, "refused after |timeout after ", false},
		{`a\x{FFFD}bc`, "bc", false},
		{`\x{FFFD}`, "", false},
		{`(error|)`, "", false},
		{`(?:error)?`, "", false},
		{`[0-9]+`, "", false}, // single bytes: every value has one
		{`.*`, "", false},
		{`(?s).+`, "", false},
		{`[^a]`, "", false},
	}
	for _, c := range cases {
		tree, err := syntax.Parse(c.regex, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		plan, ok := planLiterals(tree.Simplify())
		var got []string
		for _, l := range plan.lits {
			s := l.s
			if l.fold {
				s += "/i"
			}
			got = append(got, s)
		}
		var want []string
		if c.lits != "" {
			want = strings.Split(c.lits, "|")
		}
		slices.Sort(got)
		slices.Sort(want)
		if ok != (len(want) > 0) || !slices.Equal(got, want) || plan.exact != c.exact {
			t.Errorf("%q: got %q exact=%v ok=%v, want %q exact=%v", c.regex, got, plan.exact, ok, want, c.exact)
		}
	}
	// 5\d{2} is spelled out: a hit is a match.
	tree, _ := syntax.Parse(`5\d{2}`, syntax.Perl)
	if plan, ok := planLiterals(tree.Simplify()); !ok || !plan.exact || len(plan.lits) != 100 {
		t.Errorf(`5\d{2}: %d literals, exact=%v`, len(plan.lits), plan.exact)
	}
}

func TestPlanAnchored(t *testing.T) {
	cases := []struct {
		regex string
		ok    bool
		n     int
		mode  anchorMode
	}{
		{`^[0-9]{4,}`, true, 4, anchorPrefix},
		{`^5\d{2}$`, true, 3, anchorWhole},
		{`\AGET /api`, true, 8, anchorPrefix},
		{`^(?i)get`, true, 3, anchorPrefix},
		{`^(?i)k`, true, 0, anchorFilter}, // K's orbit leaves ASCII
		{`^ab.*c`, true, 2, anchorFilter},
		{`^ab(c|d)*`, true, 2, anchorPrefix},
		{`^ab\b`, true, 2, anchorFilter},
		{`^é`, true, 2, anchorPrefix},
		{`^\x{FFFD}`, true, 0, anchorFilter},
		{`(?m)^ab`, false, 0, 0},
		{`ab`, false, 0, 0},
	}
	for _, c := range cases {
		tree, _ := syntax.Parse(c.regex, syntax.Perl)
		a, ok := planAnchored(tree.Simplify())
		if ok != c.ok || ok && (len(a.sets) != c.n || a.mode != c.mode) {
			t.Errorf("%q: got ok=%v %d positions mode %d, want ok=%v %d mode %d", c.regex, ok, len(a.sets), a.mode, c.ok, c.n, c.mode)
		}
	}
}

// TestSearcherFindsEveryLiteral compares the searcher with a plain
// substring test over random literal sets and haystacks.
func TestSearcherFindsEveryLiteral(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("aAbBkK5 :\xe2\x84\xaa\xff")
	word := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	for range 3000 {
		var lits []lit
		for range 1 + rng.IntN(5) {
			l := lit{s: string(word(1 + rng.IntN(5))), fold: rng.IntN(2) == 0}
			if l.fold {
				l.s = lowerASCII(l.s)
			}
			lits = append(lits, l)
		}
		lits = normalize(lits)
		s := newSearcher(lits)
		v := word(rng.IntN(40))
		found := make([]bool, len(lits))
		s.scan(v, func(l int32) bool { found[l] = true; return true })
		for i, l := range lits {
			want := bytes.Contains(v, []byte(l.s))
			if l.fold {
				want = strings.Contains(lowerASCII(string(v)), l.s)
			}
			if found[i] != want {
				t.Fatalf("literal %q (fold %v) of %+v in %q: found %v, want %v", l.s, l.fold, lits, v, found[i], want)
			}
		}
	}
}
