// Richer rules and safe samples end to end: unless/and/case_insensitive counts, rule_files reloaded, secrets kept out of /metrics, sample_min_interval.
package consumer_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
)

func TestRulesUnlessAndAndCaseInsensitiveCountExactly(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	rules := `rules:
  - name: http_5xx
    field: status
    regex: '^5\d{2}$'
    unless:
      - field: path
        regex: '^/healthz'
  - name: slow_5xx
    field: status
    regex: '^5'
    and:
      - field: latency_ms
        regex: '^\d{4,}$'
  - name: oom
    field: "*"
    regex: outofmemory
    case_insensitive: true
    unless:
      - field: msg
        regex: expected   # inherits case_insensitive: EXPECTED is excluded too
`
	e := startExporter(t, mustParse(t, seedConfigYAML(srv.URL, rules)))
	w := newWriter(t, srv, "cn-hangzhou.log.aliyuncs.com")
	now := time.Now()
	w.put("project1", "logstore1", 0,
		newLog(now, "status", "500", "path", "/api", "latency_ms", "12"),          // http_5xx
		newLog(now, "status", "503", "path", "/healthz", "latency_ms", "5000"),    // slow_5xx
		newLog(now, "status", "502", "path", "/healthz/deep", "latency_ms", "10"), // none
		newLog(now, "status", "504", "path", "/orders", "latency_ms", "1500"),     // http_5xx, slow_5xx
		newLog(now, "status", "200", "path", "/api", "latency_ms", "9000"),        // none
		newLog(now, "status", "500", "path", "/x/healthz", "latency_ms", "1"),     // http_5xx: /healthz not at the start
		newLog(now, "msg", "java.lang.OutOfMemoryError"),                          // oom
		newLog(now, "msg", "OUTOFMEMORY in worker 3"),                             // oom
		newLog(now, "msg", "EXPECTED OutOfMemory in the load test"),               // none
		newLog(now, "msg", "out of memory"),                                       // none
	)
	w.put("project1", "logstore1", 1, newLog(now, "status", "500", "path", "/healthz")) // none, on the other shard
	waitFor(t, 10*time.Second, "all 11 logs read", func() bool {
		return e.sum(t, "sls_consumer_logs_total", "logstore", "logstore1") == 11
	})
	for rule, want := range map[string]float64{"http_5xx": 3, "slow_5xx": 2, "oom": 2} {
		if got := e.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "rule", rule); got != want {
			t.Errorf("%s counted %v, want %v", rule, got, want)
		}
	}
	// The rule's own field stays the field label, whatever its conditions test.
	if n := len(keysWith(e.series(t, "sls_keyword_matches_total"), "field=status,", "logstore=logstore1,", "rule=slow_5xx")); n != 2 {
		t.Errorf("%d slow_5xx series with field=status in logstore1, want one per shard (2)", n)
	}
	info := keysWith(e.series(t, "sls_keyword_last_match_info"), "logstore=logstore1,", "rule=http_5xx")
	if len(info) != 1 || !strings.Contains(info[0], "status=5") || strings.Contains(info[0], "path=/healthz ") {
		t.Errorf("http_5xx sample: %v", info)
	}
}

func TestRulesFromRuleFilesLoadAndReload(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := func() (*config.Config, error) { return config.Load(filepath.Join(dir, "main.yml")) }
	write("main.yml", seedConfigYAML(srv.URL, "rule_files: ['teams/*.yml']\n"))
	write("teams/web.yml", `rules:
  - name: web_5xx
    field: status
    regex: '^5\d{2}$'
    unless: [{field: path, regex: '^/healthz'}]
`)
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, cfg)
	w := newWriter(t, srv, "cn-hangzhou.log.aliyuncs.com")
	w.put("project1", "logstore1", 0, newLog(time.Now(), "status", "500", "path", "/a"), newLog(time.Now(), "status", "503", "path", "/healthz"))
	waitFor(t, 10*time.Second, "web_5xx from teams/web.yml", func() bool {
		return e.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "rule", "web_5xx") == 1
	})

	// A broken file fails the reload, naming file, line and rule; the
	// running rules are not touched.
	write("teams/db.yml", "rules:\n  - name: db_deadlock\n    field: msg\n    regex: '('\n")
	if _, err := load(); err == nil || err.Error() != filepath.Join(dir, "teams/db.yml")+":4: rule db_deadlock: invalid regex \"(\": error parsing regexp: missing closing ): `(`" {
		t.Fatalf("broken rule file: %v", err)
	}

	// Files change: a team adds a file, another renames its rule.
	write("teams/db.yml", "rules:\n  - name: db_deadlock\n    field: msg\n    regex: deadlock\n    case_insensitive: true\n")
	write("teams/web.yml", "rules:\n  - name: web_5xx_all\n    field: status\n    regex: '^5'\n")
	next, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.manager.Apply(next, consumer.SettingsFrom(next, "unused")); err != nil {
		t.Fatal(err)
	}
	w.put("project1", "logstore1", 0, newLog(time.Now(), "status", "500", "path", "/healthz"), newLog(time.Now(), "msg", "DEADLOCK detected"))
	waitFor(t, 10*time.Second, "the reloaded files' rules", func() bool {
		return e.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "rule", "web_5xx_all") == 1 &&
			e.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "rule", "db_deadlock") == 1
	})
	if n := len(keysWith(e.series(t, "sls_keyword_matches_total"), "rule=web_5xx,")); n != 0 {
		t.Errorf("%d series of web_5xx, gone from its file, remain", n)
	}
}

// The log's secrets, none of which may reach /metrics.
var leakedSecrets = []string{"hunter2", "s3cr3t", "abc.def", "Bearer abc"}

func TestRulesSamplesNeverShowSecrets(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	rules := `rules:
  - name: leaky_5xx
    field: status
    regex: '^5\d{2}$'
  - name: topic_5xx
    field: status
    regex: '^5\d{2}$'
    sample_fields: [status, msg, __topic__, "__tag__:env"]
`
	yamlText := strings.Replace(seedConfigYAML(srv.URL, rules), "sample_max_length: 120", "sample_max_length: 400", 1)
	e := startExporter(t, mustParse(t, yamlText))
	w := newWriter(t, srv, "cn-hangzhou.log.aliyuncs.com")
	shards, err := w.client.ListShards("project1", "logstore1")
	if err != nil {
		t.Fatal(err)
	}
	topic, env, prod := "web", "env", "prod"
	group := &sls.LogGroup{Topic: &topic, LogTags: []*sls.LogTag{{Key: &env, Value: &prod}}, Logs: []*sls.Log{newLog(time.Now(),
		"status", "500",
		"request", "GET /login?token=s3cr3t&lang=en",
		"headers", "Authorization: Bearer abc.def",
		"msg", "login failed for alice with password=hunter2",
		"db_password", "hunter2",
	)}}
	if err := w.client.PostLogStoreLogs("project1", "logstore1", group, &shards[0].InclusiveBeginKey); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "both samples", func() bool {
		return len(keysWith(e.series(t, "sls_keyword_last_match_info"), "logstore=logstore1,", "rule=")) == 2
	})
	want := map[string]string{
		"leaky_5xx": `db_password=*** headers="Authorization: Bearer ***" msg="login failed for alice with password=***" request="GET /login?token=***&lang=en" status=500`,
		"topic_5xx": `__tag__:env=prod __topic__=web msg="login failed for alice with password=***" status=500`,
	}
	families, err := e.metrics.Gatherer(e.reg).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.Metric {
			rule, sample := "", ""
			for _, l := range m.Label {
				for _, secret := range leakedSecrets {
					if strings.Contains(l.GetValue(), secret) {
						t.Errorf("%s{%s} shows %q: %s", f.GetName(), l.GetName(), secret, l.GetValue())
					}
				}
				switch l.GetName() {
				case "rule":
					rule = l.GetValue()
				case "sample":
					sample = l.GetValue()
				}
			}
			if f.GetName() == "sls_keyword_last_match_info" && sample != want[rule] {
				t.Errorf("%s sample:\n got %s\nwant %s", rule, sample, want[rule])
			}
		}
	}
	// The page Prometheus reads, whole.
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set(collector.ScrapeTimeoutHeader, "1")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	page, _ := io.ReadAll(rec.Result().Body)
	for _, secret := range leakedSecrets {
		if strings.Contains(string(page), secret) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
	if !strings.Contains(string(page), `request=\"GET /login?token=***&lang=en\"`) {
		t.Errorf("/metrics lacks the redacted sample:\n%s", page)
	}
}

func TestRulesSampleMinIntervalHoldsTheLabelWhileTheTimestampMoves(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	rules := `rules:
  - name: held_5xx
    field: status
    regex: '^5\d{2}$'
    sample_min_interval: 1h
  - name: live_5xx
    field: status
    regex: '^5\d{2}$'
`
	e := startExporter(t, mustParse(t, seedConfigYAML(srv.URL, rules)))
	w := newWriter(t, srv, "cn-hangzhou.log.aliyuncs.com")
	base := time.Now().Truncate(time.Second)
	first, second := base.Add(-20*time.Second), base.Add(-10*time.Second)
	timestamp := func(rule string) float64 {
		return e.sum(t, "sls_keyword_last_match_timestamp_seconds", "logstore", "logstore1", "rule", rule)
	}
	samples := func(rule string) []string {
		return keysWith(e.series(t, "sls_keyword_last_match_info"), "logstore=logstore1,", "rule="+rule+",")
	}

	w.put("project1", "logstore1", 0, newLog(first, "status", "500", "path", "/first"))
	waitFor(t, 10*time.Second, "the first match of both rules", func() bool {
		return timestamp("held_5xx") == float64(first.Unix()) && timestamp("live_5xx") == float64(first.Unix())
	})
	w.put("project1", "logstore1", 1, newLog(second, "status", "502", "path", "/second"))
	waitFor(t, 10*time.Second, "the second match's timestamp", func() bool {
		return timestamp("held_5xx") == float64(second.Unix()) && timestamp("live_5xx") == float64(second.Unix())
	})
	if got := samples("held_5xx"); len(got) != 1 || !strings.Contains(got[0], "sample=path=/first status=500") {
		t.Errorf("held_5xx's label moved within its interval: %v", got)
	}
	if got := samples("live_5xx"); len(got) != 1 || !strings.Contains(got[0], "sample=path=/second status=502") {
		t.Errorf("live_5xx (no interval) shows %v, want the second match", got)
	}
}

// TestReloadThatTightensRedactionDropsOldSamples: a user spots a value in a
// sample, adds its key to redact.keys and reloads: the old sample leaves
// the page at once, not when the rule next matches in that logstore.
func TestReloadThatTightensRedactionDropsOldSamples(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	rules := `rules:
  - {name: http_5xx, field: status, regex: '^5\d{2}$'}
  - {name: oom, field: "*", regex: OutOfMemory}
`
	before := seedConfigYAML(srv.URL, rules)
	e := startExporter(t, mustParse(t, before))
	w := newWriter(t, srv, "cn-hangzhou.log.aliyuncs.com")
	w.put("project1", "logstore1", 0, newLog(time.Now(), "status", "500", "session_id", "abc123"))
	w.put("project1", "logstore1", 1, newLog(time.Now(), "msg", "OutOfMemory", "host", "web-1"))
	samples := func() map[string]float64 { return e.series(t, "sls_keyword_last_match_info") }
	waitFor(t, 10*time.Second, "both samples", func() bool { return len(samples()) == 2 })
	if len(keysWith(samples(), "session_id=abc123")) != 1 {
		t.Fatalf("samples before the reload: %v", samples())
	}

	after := mustParse(t, strings.Replace(before, "rules:\n", "redact: {keys: [session_id]}\nrules:\n", 1))
	if err := e.manager.Apply(after, consumer.SettingsFrom(after, "unused")); err != nil {
		t.Fatal(err)
	}
	for key := range samples() {
		if strings.Contains(key, "abc123") {
			t.Errorf("after the reload that masks session_id, still on the page: %s", key)
		}
	}
	// Every rule's sampling changed (redaction is global): both samples go,
	// and the next match shows the masked value.
	if n := len(samples()); n != 0 {
		t.Errorf("%d samples after the reload, want 0: %v", n, samples())
	}
	w.put("project1", "logstore1", 0, newLog(time.Now(), "status", "503", "session_id", "abc123"))
	waitFor(t, 10*time.Second, "the new sample, masked", func() bool {
		return len(keysWith(samples(), "session_id=***")) == 1
	})
}
