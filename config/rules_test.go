// Rules with conditions, rule_files, sample settings and redaction: exact load errors and what a good file becomes.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

func TestRuleAndSampleErrorsNameFileLineAndRule(t *testing.T) {
	cases := []struct{ file, want string }{
		{"testdata/rule_files_bad_unless.yml", "testdata/rules_bad/web.yml:10: rule web_5xx: unless[0]: invalid regex \"(\": error parsing regexp: missing closing ): `(`"},
		{"testdata/rule_files_typo.yml", "testdata/rules_bad/typo.yml:7: rule typo_rule: field regx not found in type config.Rule"},
		{"testdata/rule_files_duplicate.yml", "testdata/rules_dup/b.yml:5: rule web_5xx is defined twice (first at testdata/rules_dup/a.yml:2)"},
		{"testdata/bad_rule_glob.yml", "testdata/bad_rule_glob.yml:9: rule_files[0] \"rules/[\" is not a valid glob: syntax error in pattern"},
		{"testdata/missing_rule_file.yml", "testdata/missing_rule_file.yml:9: rule_files[1]: no such file \"testdata/no_such_rules.yml\""},
		{"testdata/bad_condition.yml", "testdata/bad_condition.yml:14: rule slow: and[0]: field is required (a field name, or \"*\" for any field)"},
		{"testdata/bad_empty_condition_regex.yml", "testdata/bad_empty_condition_regex.yml:16: rule quiet: unless[1]: invalid regex \"\": regex is empty"},
		{"testdata/bad_case_insensitive.yml", "testdata/bad_case_insensitive.yml:16: rule shouty: cannot unmarshal !!str `yes please` into bool"},
		{"testdata/bad_redact.yml", "testdata/bad_redact.yml:12: redact: patterns[1]: invalid regex \"(\": error parsing regexp: missing closing ): `(`"},
		{"testdata/bad_redact_key.yml", "testdata/bad_redact_key.yml:10: field disable_default not found in type config.Redact"},
		{"testdata/bad_sample_fields.yml", "testdata/bad_sample_fields.yml:13: rule r: sample_fields: \"*\" (every field) must be alone"},
		{"testdata/bad_sample_interval.yml", "testdata/bad_sample_interval.yml:14: rule r: sample_min_interval must be 0 (off) or at least 1s, got 500ms"},
	}
	for _, c := range cases {
		_, err := Load(c.file)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got: %v\nwant: %s", c.file, err, c.want)
		}
	}
}

func TestRuleFilesConditionsAndSamples(t *testing.T) {
	cfg, err := Load("testdata/rule_files.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The main file's rules first, then each file once, in glob order.
	var got []string
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		got = append(got, fmt.Sprintf("%s@%s every=%s", r.Name, r.Source(), r.EffectiveSampleMinInterval()))
	}
	want := []string{
		"oom@testdata/rule_files.yml:18 every=30s",
		"db_errors@testdata/rules/db.yml:2 every=30s",
		"web_5xx@testdata/rules/web.yml:3 every=0s",
		"slow_5xx@testdata/rules/web.yml:10 every=30s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Conditions inherit the rule's case_insensitive unless they set their own.
	specs := map[string]string{}
	for i := range cfg.Rules {
		s := cfg.Rules[i].MatchSpec()
		specs[s.Name] = fmt.Sprintf("%s %q ci=%v and=%q unless=%q", s.Field, s.Regex, s.CaseInsensitive, s.And, s.Unless)
	}
	for name, want := range map[string]string{
		"oom":       `* "outofmemory" ci=true and=[] unless=[]`,
		"db_errors": `msg "deadlock" ci=true and=[] unless=[{"msg" "(?i)retried"} {"level" "^debug$"}]`,
		"web_5xx":   `status "^5\\d{2}$" ci=false and=[] unless=[{"path" "^/healthz"}]`,
		"slow_5xx":  `status "^5" ci=false and=[{"latency_ms" "^\\d{4,}$"} {"method" "(?i)^post$"}] unless=[]`,
	} {
		if specs[name] != want {
			t.Errorf("%s spec:\n got %s\nwant %s", name, specs[name], want)
		}
	}
	set, err := match.Compile(func() []match.Spec {
		var s []match.Spec
		for i := range cfg.Rules {
			s = append(s, cfg.Rules[i].MatchSpec())
		}
		return s
	}())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		log  []string
		want string // the rules that match, in order
	}{
		{[]string{"msg", "DeadLock found", "level", "error"}, "db_errors"},
		{[]string{"msg", "Deadlock found, RETRIED", "level", "error"}, ""},
		{[]string{"msg", "Deadlock found", "level", "DEBUG"}, "db_errors"},
		{[]string{"status", "503", "path", "/healthz"}, ""},
		{[]string{"status", "503", "path", "/api", "latency_ms", "1200", "method", "Post"}, "web_5xx slow_5xx"},
		{[]string{"status", "503", "path", "/api", "latency_ms", "999", "method", "POST"}, "web_5xx"},
		{[]string{"msg", "java.lang.OUTOFMEMORYError"}, "oom"},
	} {
		var fields []match.Field
		for i := 0; i < len(c.log); i += 2 {
			fields = append(fields, match.Field{Key: []byte(c.log[i]), Value: []byte(c.log[i+1])})
		}
		matched := make([]bool, len(set.Rules))
		set.Match(fields, matched)
		var names []string
		for i, m := range matched {
			if m {
				names = append(names, set.Rules[i].Name)
			}
		}
		if strings.Join(names, " ") != c.want {
			t.Errorf("%q matched %q, want %q", c.log, strings.Join(names, " "), c.want)
		}
	}

	// Samples: the rule's fields, else the top-level ones; "*" all; the
	// config's redaction, also for whoever else shows logs.
	log := []match.Field{
		{Key: []byte("status"), Value: []byte("503")}, {Key: []byte("path"), Value: []byte("/pay?session_id=42")},
		{Key: []byte("msg"), Value: []byte("deadlock card 4111111111111111")}, {Key: []byte("user"), Value: []byte("bob")},
		{Key: []byte("__tag__:__hostname__"), Value: []byte("node-1")},
	}
	for name, want := range map[string]string{
		"oom":       `msg="deadlock card <card>" path="/pay?session_id=***" status=503 user=bob`,
		"db_errors": `__tag__:__hostname__=node-1 msg="deadlock card <card>"`,
		"web_5xx":   `msg="deadlock card <card>" path="/pay?session_id=***" status=503`,
	} {
		for i := range cfg.Rules {
			if r := &cfg.Rules[i]; r.Name == name {
				if got := r.Sampler().Render(log); got != want {
					t.Errorf("%s sample:\n got %s\nwant %s", name, got, want)
				}
			}
		}
	}
	if got := string(cfg.Redactor().Redact([]byte("msg"), []byte("session_id=42 password=x"))); got != "session_id=*** password=***" {
		t.Errorf("the config's redactor: %q", got)
	}
}

func TestRuleFilesAreReadAgainOnEveryLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("main.yml", `credentials: {access_key_id: ak, access_key_secret: sk}
regions:
  - endpoint: cn-hangzhou.log.aliyuncs.com
    projects: [{name: project1, logstores: [logstore1]}]
rule_files: ['teams/*.yml']
`)
	if _, err := Load(filepath.Join(dir, "main.yml")); err == nil || err.Error() != filepath.Join(dir, "main.yml")+":1: at least one rule is required" {
		t.Fatalf("no rules anywhere: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "teams"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("teams/a.yml", "rules: [{name: a, field: f, regex: x}]\n")
	write("dir.yml", "credentials: {access_key_id: ak, access_key_secret: sk}\nregions: [{endpoint: cn-hangzhou.log.aliyuncs.com, projects: [{name: project1, logstores: [logstore1]}]}]\nrule_files: [teams]\n")
	if _, err := Load(filepath.Join(dir, "dir.yml")); err == nil || err.Error() != filepath.Join(dir, "dir.yml")+":3: rule_files[0]: \""+filepath.Join(dir, "teams")+"\" is a directory (rules/*.yml reads the files in one)" {
		t.Fatalf("a directory as rule file: %v", err)
	}
	names := func() string {
		t.Helper()
		cfg, err := Load(filepath.Join(dir, "main.yml"))
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, r := range cfg.Rules {
			n = append(n, r.Name)
		}
		return strings.Join(n, " ")
	}
	if got := names(); got != "a" {
		t.Fatalf("rules %q, want a", got)
	}
	write("teams/b.yml", "rules: [{name: b, field: f, regex: y}]\n")
	write("teams/a.yml", "rules: [{name: a2, field: f, regex: x}]\n")
	if got := names(); got != "a2 b" {
		t.Fatalf("rules after the files changed %q, want \"a2 b\"", got)
	}
}

func TestSampleDefaultsAreTodaysBehaviour(t *testing.T) {
	cfg, err := Load("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	r := &cfg.Rules[0]
	if r.EffectiveSampleMinInterval() != 0 || r.Source() != "testdata/good.yml:22" {
		t.Fatalf("min interval %s, source %q", r.EffectiveSampleMinInterval(), r.Source())
	}
	log := []match.Field{{Key: []byte("status"), Value: []byte("500")}, {Key: []byte("path"), Value: []byte("/a b")}, {Key: []byte("__topic__"), Value: []byte("t")}}
	if got, want := r.Sampler().Render(log), match.RenderSample(log[:2], cfg.SampleMaxLength); got != want {
		t.Fatalf("default sample %q, want RenderSample's %q", got, want)
	}
	if s := r.MatchSpec(); s.CaseInsensitive || s.And != nil || s.Unless != nil {
		t.Fatalf("spec of a plain rule: %+v", s)
	}
	hand := Rule{Name: "x", Field: "f", Regex: "y"} // not loaded: default sampling
	if got := hand.Sampler().Render(log[:1]); got != "status=500" || hand.EffectiveSampleMinInterval() != time.Duration(0) {
		t.Fatalf("a rule built by hand samples %q", got)
	}
}
