// Config files against exact errors, defaults, credentials and the seed's environment.
package config

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	cases := []struct{ file, want string }{
		{"testdata/unknown_key.yml", "testdata/unknown_key.yml:4: field access_key_secert not found in type config.Credentials"},
		{"testdata/bad_regex.yml", "testdata/bad_regex.yml:15: rule broken: invalid regex \"(unclosed\": error parsing regexp: missing closing ): `(unclosed`"},
		{"testdata/bad_duration.yml", "testdata/bad_duration.yml:2: cannot unmarshal !!str `soon` into time.Duration"},
		{"testdata/fractional_timeout.yml", "testdata/fractional_timeout.yml:2: consumer_timeout must be whole seconds (SLS's unit), got 8.5s"},
		{"testdata/bad_compression.yml", "testdata/bad_compression.yml:4: region cn-hangzhou: compression \"gzip\" must be lz4 or zstd"},
		{"testdata/bad_cursor.yml", "testdata/bad_cursor.yml:2: cursor_start \"yesterday\" must be begin, end, an RFC 3339 time or \"2006-01-02 15:04:05\""},
		{"testdata/duplicate_logstore.yml", "testdata/duplicate_logstore.yml:8: logstore cn-hangzhou/project1/logstore1 is listed twice (first at regions[0].projects[0].logstores[0])"},
		{"testdata/duplicate_pattern_project.yml", "testdata/duplicate_pattern_project.yml:8: project cn-hangzhou/apps has logstore patterns in two entries (first at regions[0].projects[0].logstores[0]): put them in one entry"},
		{"testdata/both_secrets.yml", "testdata/both_secrets.yml:1: credentials: at most one of access_key_secret and access_key_secret_file may be set"},
		{"testdata/no_rules.yml", "testdata/no_rules.yml:1: at least one rule is required"},
		{"testdata/rule_without_field.yml", "testdata/rule_without_field.yml:6: rule nofield: field is required (a field name, or \"*\" for any field)"},
	}
	for _, c := range cases {
		_, err := Load(c.file)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got: %v\nwant: %s", c.file, err, c.want)
		}
	}
}

func TestLoadGoodConfig(t *testing.T) {
	cfg, err := Load("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HeartbeatInterval != 3*time.Second || cfg.ConsumerTimeout != Defaults.ConsumerTimeout || cfg.CommitInterval != Defaults.CommitInterval {
		t.Errorf("durations: heartbeat %s timeout %s commit %s", cfg.HeartbeatInterval, cfg.ConsumerTimeout, cfg.CommitInterval)
	}
	if want := time.Date(2018, 12, 26, 0, 0, 0, 0, time.Local); !cfg.CursorStartTime().Equal(want) {
		t.Errorf("cursor start time %v, want %v", cfg.CursorStartTime(), want)
	}
	targets := cfg.Targets()
	got := make([]string, len(targets))
	for i, tg := range targets {
		got[i] = fmt.Sprintf("%s %s %s %s %s", tg.Key(), tg.Endpoint, tg.ProxyURL, tg.Credentials.AccessKeyID, tg.Credentials.AccessKeySecret.Reveal())
	}
	want := []string{
		"cn-hangzhou/project1/logstore1 cn-hangzhou.log.aliyuncs.com  top-ak top-secret",
		"cn-hangzhou/project1/logstore2 cn-hangzhou.log.aliyuncs.com  top-ak top-secret",
		"beijing/project2/logstore3 https://cn-beijing-intranet.log.aliyuncs.com http://127.0.0.1:3128 bj-ak file-secret",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRegionFromEndpoint(t *testing.T) {
	for endpoint, want := range map[string]string{
		"cn-hangzhou.log.aliyuncs.com":                  "cn-hangzhou",
		"https://cn-shanghai-intranet.log.aliyuncs.com": "cn-shanghai",
		"ap-southeast-1.sls.aliyuncs.com":               "ap-southeast-1",
		"127.0.0.1:9880":                                "127.0.0.1:9880",
		"http://sls.example.com":                        "sls.example.com",
	} {
		if got := RegionFromEndpoint(endpoint); got != want {
			t.Errorf("RegionFromEndpoint(%q) = %q, want %q", endpoint, got, want)
		}
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	s := Secret("hunter2")
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s, "creds", Resolved{AccessKeyID: "id", AccessKeySecret: s})
	out, _ := yaml.Marshal(Credentials{AccessKeyID: "id", AccessKeySecret: s})
	for what, text := range map[string]string{
		"fmt %v": fmt.Sprintf("%v", s), "fmt %#v": fmt.Sprintf("%#v", s), "fmt %s": fmt.Sprintf("%s", s),
		"slog": logged.String(), "yaml": string(out), "Resolved": Resolved{AccessKeySecret: s}.String(),
	} {
		if strings.Contains(text, "hunter2") {
			t.Errorf("%s shows the secret: %s", what, text)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Fatal("Reveal must return the value")
	}
}

func TestCredentialsFromEnvironment(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
	t.Setenv("SLS_AK_ID", "seed-id")
	t.Setenv("SLS_AK_KEY", "seed-secret")
	cfg, err := Parse([]byte(`
regions:
  - endpoint: cn-hangzhou.log.aliyuncs.com
    projects: [{name: project1, logstores: [logstore1]}]
rules: [{name: r, field: f, regex: x}]
`), "env.yml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Targets()[0].Credentials
	if c.AccessKeyID != "seed-id" || c.AccessKeySecret.Reveal() != "seed-secret" {
		t.Fatalf("credentials from SLS_AK_*: %s / %q", c.AccessKeyID, c.AccessKeySecret.Reveal())
	}
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "ali-id")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ali-secret")
	cfg, _ = Parse([]byte(`
regions:
  - endpoint: cn-hangzhou.log.aliyuncs.com
    projects: [{name: project1, logstores: [logstore1]}]
rules: [{name: r, field: f, regex: x}]
`), "env.yml")
	if c := cfg.Targets()[0].Credentials; c.AccessKeyID != "ali-id" || c.AccessKeySecret.Reveal() != "ali-secret" {
		t.Fatalf("ALIBABA_CLOUD_* must win over SLS_AK_*: %s", c.AccessKeyID)
	}
}

func TestSeedEnvironment(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
	t.Setenv("SLS_ENDPOINTS", "cn-hangzhou.log.aliyuncs.com;cn-beijing.log.aliyuncs.com;cn-qingdao.log.aliyuncs.com")
	t.Setenv("SLS_PROJECTS", "project1;project2;project3")
	t.Setenv("SLS_LOGSTORES", "logstore1;logstore2;logstore3_1,logstore3_2")
	t.Setenv("SLS_AK_ID", "id")
	t.Setenv("SLS_AK_KEY", "key")
	t.Setenv("SLS_CG", "seed-group")
	cfg, err := FromEnvironment([]string{`status=5\d{2}`, `status=^503$`, `*=OutOfMemory`})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, tg := range cfg.Targets() {
		keys = append(keys, tg.Key())
	}
	if got := strings.Join(keys, " "); got != "cn-hangzhou/project1/logstore1 cn-beijing/project2/logstore2 cn-qingdao/project3/logstore3_1 cn-qingdao/project3/logstore3_2" {
		t.Fatalf("targets: %s", got)
	}
	if cfg.ConsumerGroup != "seed-group" {
		t.Fatalf("consumer group %q", cfg.ConsumerGroup)
	}
	var rules []string
	for _, r := range cfg.Rules {
		rules = append(rules, r.Name+"|"+r.Field+"|"+r.Regex)
	}
	if got := strings.Join(rules, " "); got != `status|status|5\d{2} status_2|status|^503$ fulltext|*|OutOfMemory` {
		t.Fatalf("rules: %s", got)
	}

	// Empty ';' and ',' entries are skipped, as the seed skipped them.
	t.Setenv("SLS_ENDPOINTS", ";cn-hangzhou.log.aliyuncs.com;;cn-beijing.log.aliyuncs.com;")
	t.Setenv("SLS_PROJECTS", "project1;project2;")
	t.Setenv("SLS_LOGSTORES", "logstore1,;,logstore2,")
	cfg, err = FromEnvironment(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys = keys[:0]
	for _, tg := range cfg.Targets() {
		keys = append(keys, tg.Key())
	}
	if got := strings.Join(keys, " "); got != "cn-hangzhou/project1/logstore1 cn-beijing/project2/logstore2" {
		t.Fatalf("targets with empty entries: %s", got)
	}

	t.Setenv("SLS_LOGSTORES", "logstore1")
	if _, err := FromEnvironment(nil); err == nil || !strings.Contains(err.Error(), "SLS_LOGSTORES 1") {
		t.Fatalf("mismatched entries: %v", err)
	}
	if _, err := RulesFromFlags([]string{"status"}); err == nil || !strings.Contains(err.Error(), `--rule "status"`) {
		t.Fatalf("bad --rule: %v", err)
	}
}
