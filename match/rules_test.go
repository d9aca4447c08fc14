// Rule matching and sample rendering.
package match

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func fields(kv ...string) []Field {
	var out []Field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Field{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return out
}

func TestMatchCountsEachRuleOncePerLog(t *testing.T) {
	rs, err := Compile([]Spec{
		{Name: "http_5xx", Field: "status", Regex: `^5\d{2}$`},
		{Name: "http_503", Field: "status", Regex: `503`},
		{Name: "oom", Field: "*", Regex: `OutOfMemory`},
		{Name: "slow", Field: "latency_ms", Regex: `^\d{4,}`},
		{Name: "nocase", Field: "*", Regex: `(?i)timeout`},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		log  []Field
		want []bool
	}{
		{fields("status", "503", "msg", "java.lang.OutOfMemoryError", "trace", "OutOfMemory again"), []bool{true, true, true, false, false}},
		{fields("status", "200", "latency_ms", "12000", "msg", "TIMEOUT upstream"), []bool{false, false, false, true, true}},
		{fields("status", "5000", "code", "503"), []bool{false, false, false, false, false}},
		{fields("Status", "500"), []bool{false, false, false, false, false}}, // field names are case-sensitive
		{nil, []bool{false, false, false, false, false}},
	}
	for i, c := range cases {
		got := make([]bool, len(rs.Rules))
		anyMatched := rs.Match(c.log, got)
		for j := range got {
			if got[j] != c.want[j] {
				t.Errorf("case %d rule %s: got %v want %v", i, rs.Rules[j].Name, got[j], c.want[j])
			}
		}
		wantAny := false
		for _, w := range c.want {
			wantAny = wantAny || w
		}
		if anyMatched != wantAny {
			t.Errorf("case %d: Match returned %v, want %v", i, anyMatched, wantAny)
		}
	}
}

func TestCompileNamesTheBrokenRule(t *testing.T) {
	_, err := Compile([]Spec{{Name: "ok", Field: "a", Regex: "x"}, {Name: "broken_rule", Field: "a", Regex: `(5\d{2}`}})
	if err == nil || !strings.Contains(err.Error(), "rule broken_rule") {
		t.Fatalf("got %v, want an error naming broken_rule", err)
	}
}

func TestRenderSample(t *testing.T) {
	got := RenderSample(fields("status", "500", "path", "/api/v1/orders", "agent", "curl 8", "empty", ""), 200)
	want := `agent="curl 8" empty="" path=/api/v1/orders status=500`
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	bad := RenderSample([]Field{{Key: []byte("k"), Value: []byte{'a', 0xff, 'b'}}}, 200)
	if !utf8.ValidString(bad) || bad != "k=a\uFFFDb" {
		t.Fatalf("invalid UTF-8 rendered as %q", bad)
	}
	long := RenderSample(fields("msg", strings.Repeat("é", 500)), 64)
	if len(long) > 64 || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Fatalf("cut sample is %d bytes, valid=%v: %q", len(long), utf8.ValidString(long), long)
	}
}

func TestConditions(t *testing.T) {
	rs, err := Compile([]Spec{
		{Name: "prod_errors", Field: "msg", Regex: `error`, CaseInsensitive: true,
			And: []Condition{{Field: "env", Regex: `^prod$`}}},
		{Name: "errors_not_health", Field: "*", Regex: `error`,
			Unless: []Condition{{Field: "path", Regex: `^/healthz`}, {Field: "*", Regex: `(?i)synthetic`}}},
		{Name: "slow_5xx", Field: "latency_ms", Regex: `^[0-9]{4,}`,
			And: []Condition{{Field: "status", Regex: `^5`}, {Field: "*", Regex: `error`}}},
		{Name: "any_error", Field: "*", Regex: `error`}, // its atom is also the conditions' above
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		log  []Field
		want []bool
	}{
		{fields("msg", "ERROR: disk", "env", "prod"), []bool{true, false, false, false}},
		{fields("msg", "error: disk", "env", "prod"), []bool{true, true, false, true}},
		{fields("msg", "error: disk", "env", "production"), []bool{false, true, false, true}},
		{fields("msg", "error", "path", "/healthz/live"), []bool{false, false, false, true}},
		{fields("msg", "error", "agent", "Synthetic-Check"), []bool{false, false, false, true}},
		{fields("latency_ms", "12000", "status", "503", "msg", "upstream error"), []bool{false, true, true, true}},
		{fields("latency_ms", "12000", "status", "503", "msg", "upstream timeout"), []bool{false, false, false, false}},
		{fields("latency_ms", "12000", "status", "200", "msg", "error"), []bool{false, true, false, true}},
	}
	for i, c := range cases {
		got := make([]bool, len(rs.Rules))
		rs.Match(c.log, got)
		for j := range got {
			if got[j] != c.want[j] {
				t.Errorf("case %d rule %s: got %v want %v", i, rs.Rules[j].Name, got[j], c.want[j])
			}
		}
	}
}

func TestCompileNamesTheBrokenCondition(t *testing.T) {
	_, err := Compile([]Spec{{Name: "r", Field: "a", Regex: "x",
		And: []Condition{{Field: "b", Regex: "ok"}}, Unless: []Condition{{Field: "c", Regex: "ok"}, {Field: "d", Regex: "[z"}}}})
	if err == nil || !strings.Contains(err.Error(), "rule r: unless[1] on field \"d\"") {
		t.Fatalf("got %v, want an error naming rule r's unless[1]", err)
	}
	_, err = Compile([]Spec{{Name: "r", Field: "a", Regex: "x", And: []Condition{{Field: "b", Regex: "(?P<"}}}})
	if err == nil || !strings.Contains(err.Error(), "rule r: and[0] on field \"b\"") {
		t.Fatalf("got %v, want an error naming rule r's and[0]", err)
	}
}

// TestMatchAllocatesNothing: Match runs for every log of every batch.
func TestMatchAllocatesNothing(t *testing.T) {
	rs, err := Compile([]Spec{benchStatus, benchNoCase, benchAlternation, benchSlow, benchBots,
		{Name: "cond", Field: "*", Regex: "error", And: []Condition{{Field: "status", Regex: "^5"}}}})
	if err != nil {
		t.Fatal(err)
	}
	log := fields("status", "503", "latency_ms", "12000", "user_agent", "Googlebot", "msg", "java.lang.OutOfMemoryError: error")
	matched := make([]bool, len(rs.Rules))
	if n := testing.AllocsPerRun(100, func() { rs.Match(log, matched); clear(matched) }); n != 0 {
		t.Fatalf("Match allocates %v times per log", n)
	}
}
