// Rule features with the real binaries: unless, and, case_insensitive, logstores: scopes and rule_files count exactly in several logstores of three regions, a reload that changes regexes counts by the new ones from then on, and secrets in matching logs never reach /metrics or the status page.
package e2e

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// rfMainRules are the main file's rules: the rule file adds db_timeout.
// qd_deadlock applies to cn-qingdao/project3/logstore3_2 only (its glob
// leaves out logstore3_1 of the same project).
const rfMainRules = `rules:
  - name: http_5xx
    field: status
    regex: '%s'
    unless: [{field: path, regex: '^/healthz'}]
  - name: slow_5xx
    field: status
    regex: '^5'
    and: [{field: latency_ms, regex: '^\d{4,}$'}]
  - name: oom
    field: "*"
    regex: 'outofmemory|panic: runtime error'
    case_insensitive: true
  - name: qd_deadlock
    field: msg
    regex: deadlock
    logstores: ['cn-qingdao/project3/*_2']
`

const rfTeamRules = `rules:
  - name: db_timeout
    field: msg
    regex: '%s'
`

// rfConfig reads the four seed logstores through the emulator at emu, with
// http5xx as the regex of http_5xx.
func rfConfig(emu, http5xx string) string {
	return fmt.Sprintf(`consumer_group: rules-features-cg
consumer_name: rules-features
cursor_start: begin
heartbeat_interval: 1s
consumer_timeout: 3s
sample_max_length: 1000
credentials:
  access_key_id: %s
  access_key_secret: %s
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects: [{name: project1, logstores: [logstore1]}]
  - name: cn-beijing
    endpoint: cn-beijing.log.aliyuncs.com
    proxy_url: %s
    projects: [{name: project2, logstores: [logstore2]}]
  - name: cn-qingdao
    endpoint: cn-qingdao.log.aliyuncs.com
    proxy_url: %s
    projects: [{name: project3, logstores: [logstore3_1, logstore3_2]}]
rule_files: ['teams/*.yml']
`, testAK, testSecret, emu, emu, emu) + fmt.Sprintf(rfMainRules, http5xx)
}

// rfKind is a log and the rules it matches wherever they apply.
type rfKind struct {
	fields []string
	rules  []string
}

// rfBefore are the logs written before the reload, under the first rules.
var rfBefore = []rfKind{
	{[]string{"status", "500", "path", "/api", "latency_ms", "12"}, []string{"http_5xx"}},
	{[]string{"status", "503", "path", "/healthz", "latency_ms", "5000"}, []string{"slow_5xx"}},
	{[]string{"status", "502", "path", "/healthz/deep", "latency_ms", "10"}, nil},
	{[]string{"status", "504", "path", "/orders", "latency_ms", "1500"}, []string{"http_5xx", "slow_5xx"}},
	{[]string{"status", "200", "path", "/api", "latency_ms", "9000"}, nil},
	{[]string{"status", "5000", "path", "/api", "latency_ms", "2000"}, []string{"slow_5xx"}}, // http_5xx is anchored
	{[]string{"msg", "java.lang.OutOfMemoryError: Java heap space"}, []string{"oom"}},
	{[]string{"level", "fatal", "msg", "PANIC: Runtime Error: index out of range"}, []string{"oom"}},
	{[]string{"status", "200", "msg", "out of memory"}, nil},
	{[]string{"msg", "deadlock detected on table orders"}, []string{"qd_deadlock"}},
	{[]string{"msg", "Deadlock detected"}, nil}, // qd_deadlock does not ignore case
	{[]string{"msg", "query timeout after 300ms"}, []string{"db_timeout"}},
	// One log, four rules, each counted once: /healthz is not at the start of the path.
	{[]string{"status", "500", "path", "/x/healthz", "msg", "deadlock; OutOfMemory; timeout after 5ms", "note", "outofmemory again"},
		[]string{"http_5xx", "oom", "qd_deadlock", "db_timeout"}},
}

// rfAfter are the logs written after the reload: http_5xx is '^50[23]$'
// and db_timeout 'connection refused' from then on.
var rfAfter = []rfKind{
	{[]string{"status", "500", "path", "/api"}, nil}, // the old http_5xx only
	{[]string{"status", "502", "path", "/api"}, []string{"http_5xx"}},
	{[]string{"status", "503", "path", "/healthz"}, nil},
	{[]string{"msg", "query timeout after 300ms"}, nil}, // the old db_timeout only
	{[]string{"msg", "connection refused by 10.0.0.1"}, []string{"db_timeout"}},
	{[]string{"status", "503", "path", "/pay", "latency_ms", "3000", "msg", "Connection refused"}, []string{"http_5xx", "slow_5xx"}},
}

// rfSecrets are the secret values planted in matching logs.
var rfSecrets = []string{"hunter2pw", "tok3nValue9", "bearerXYZ123", "urlTok456", "akSecret789", "pwField0042", "urlPass77"}

// rfSecretLogs match rules in three logstores; want are pairs their
// sample must show, every secret masked.
var rfSecretLogs = []struct {
	logstore int // index into seedLogstores
	shard    int
	kind     rfKind
	want     []string
}{
	{0, 0, rfKind{[]string{
		"status", "500", "path", "/api/orders", "user", "alice", "latency_ms", "12",
		"msg", "login failed for alice password=hunter2pw",
		"body", `{"user": "alice", "token": "tok3nValue9"}`,
		"headers", "Authorization: Bearer bearerXYZ123",
		"request", "GET /api/orders?token=urlTok456&page=2",
		"env", "AccessKeySecret=akSecret789 region=cn-hangzhou",
	}, []string{"http_5xx"}}, []string{
		`status=500`, `path=/api/orders`, `user=alice`, `latency_ms=12`,
		`msg="login failed for alice password=***"`,
		`body="{\"user\": \"alice\", \"token\": \"***\"}"`,
		`headers="Authorization: Bearer ***"`,
		`request="GET /api/orders?token=***&page=2"`,
		`env="AccessKeySecret=*** region=cn-hangzhou"`,
	}},
	{3, 1, rfKind{[]string{
		"status", "503", "path", "/pay", "latency_ms", "2500",
		"msg", "deadlock detected; retry with password=hunter2pw",
		"db_password", "pwField0042",
		"url", "https://svc:urlPass77@db.internal/q?token=urlTok456&x=1",
		"authorization", "Bearer bearerXYZ123",
	}, []string{"http_5xx", "slow_5xx", "qd_deadlock"}}, []string{
		`status=503`, `path=/pay`, `latency_ms=2500`,
		`msg="deadlock detected; retry with password=***"`,
		`db_password=***`,
		`url="https://svc:***@db.internal/q?token=***&x=1"`,
		`authorization=***`,
	}},
	{1, 0, rfKind{[]string{
		"msg", "OutOfMemory in worker 7 AccessKeySecret=akSecret789 user=bob",
		"request", "POST /v1/upload?token=urlTok456",
		"trace", "Authorization: Bearer bearerXYZ123",
	}, []string{"oom"}}, []string{
		`msg="OutOfMemory in worker 7 AccessKeySecret=*** user=bob"`,
		`request="POST /v1/upload?token=***"`,
		`trace="Authorization: Bearer ***"`,
	}},
}

// rfRules are every rule and the logstores it applies to (nil: all).
var rfRules = map[string]func(logstore string) bool{
	"http_5xx":    nil,
	"slow_5xx":    nil,
	"oom":         nil,
	"db_timeout":  nil,
	"qd_deadlock": func(logstore string) bool { return logstore == "logstore3_2" },
}

func rfApplies(rule, logstore string) bool {
	in := rfRules[rule]
	return in == nil || in(logstore)
}

// rfCopies is how many copies of kind k a logstore's shard gets: 1 to 3,
// different between logstores, shards and kinds.
func rfCopies(logstore, shard, k int) int { return 1 + (logstore+shard+k)%3 }

// rfLedger is what was written and what /metrics must show for it.
type rfLedger struct {
	logs    map[string]float64 // by logstore
	matches map[string]float64 // by series key of sls_keyword_matches_total, every series on the page
}

func newRFLedger() *rfLedger {
	l := &rfLedger{logs: map[string]float64{}, matches: map[string]float64{}}
	// Every shard of every logstore has a series, at 0 until it matches,
	// for each rule that applies there, and none for the others.
	for _, s := range seedLogstores {
		for shard := range 2 {
			for rule := range rfRules {
				if rfApplies(rule, s.logstore) {
					l.matches[rfSeriesKey(s.region, s.project, s.logstore, shard, rule)] = 0
				}
			}
		}
	}
	return l
}

func rfField(rule string) string {
	switch rule {
	case "oom":
		return "*"
	case "http_5xx", "slow_5xx":
		return "status"
	}
	return "msg"
}

func rfSeriesKey(region, project, logstore string, shard int, rule string) string {
	return fmt.Sprintf("field=%s,logstore=%s,project=%s,region=%s,rule=%s,shard=%d", rfField(rule), logstore, project, region, rule, shard)
}

// put writes n copies of each kind (n by kind index) as one log group into
// a shard with the real SDK, and books the logs and the matches.
func (l *rfLedger) put(t *testing.T, emu string, logstore, shard int, at time.Time, kinds []rfKind, n func(k int) int) {
	t.Helper()
	s := seedLogstores[logstore]
	var logs [][]string
	for k, kind := range kinds {
		for range n(k) {
			logs = append(logs, kind.fields)
			l.logs[s.logstore]++
			for _, rule := range kind.rules {
				if rfApplies(rule, s.logstore) {
					l.matches[rfSeriesKey(s.region, s.project, s.logstore, shard, rule)]++
				}
			}
		}
	}
	putGroup(t, sdkClient(emu, s.endpoint), s.project, s.logstore, shard, at, nil, logs...)
}

// putAll writes kinds into every shard of every logstore.
func (l *rfLedger) putAll(t *testing.T, emu string, at time.Time, kinds []rfKind) {
	t.Helper()
	for i := range seedLogstores {
		for shard := range 2 {
			l.put(t, emu, i, shard, at, kinds, func(k int) int { return rfCopies(i, shard, k) })
		}
	}
}

// rfPage is what /metrics shows of the ledger's figures.
func rfPage(families map[string]*dto.MetricFamily) (logs, matches map[string]float64) {
	logs, matches = map[string]float64{}, map[string]float64{}
	for _, m := range families["sls_consumer_logs_total"].GetMetric() {
		for _, lp := range m.Label {
			if lp.GetName() == "logstore" {
				logs[lp.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	for _, m := range families["sls_keyword_matches_total"].GetMetric() {
		var parts []string
		for _, lp := range m.Label {
			parts = append(parts, lp.GetName()+"="+lp.GetValue())
		}
		sort.Strings(parts)
		matches[strings.Join(parts, ",")] = m.GetCounter().GetValue()
	}
	return logs, matches
}

// rfDiff lists where got differs from want, a missing key shown as absent.
func rfDiff(what string, want, got map[string]float64) []string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("%s{%s}: absent, want %v", what, k, w))
		} else if g != w {
			out = append(out, fmt.Sprintf("%s{%s} = %v, want %v", what, k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s{%s} = %v, want no such series", what, k, g))
		}
	}
	sort.Strings(out)
	return out
}

// await polls /metrics until every logstore's logs and every match series
// are exactly the ledger's, and no other match series exists; after
// timeout it reports every difference of the last page.
func (l *rfLedger) await(t *testing.T, base, what string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		families, _ := scrape(t, base+"/metrics")
		logs, matches := rfPage(families)
		diff := append(rfDiff("sls_consumer_logs_total", l.logs, logs), rfDiff("sls_keyword_matches_total", l.matches, matches)...)
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after %s /metrics still differs from what was written:\n  %s", what, timeout, strings.Join(diff, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rfGet fetches a page's body.
func rfGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}

// rfNoSecrets checks that no planted secret appears in text.
func rfNoSecrets(t *testing.T, where, text string) {
	t.Helper()
	for _, secret := range rfSecrets {
		if i := strings.Index(text, secret); i >= 0 {
			t.Errorf("%s shows the secret %q: …%s…", where, secret, text[max(0, i-150):min(len(text), i+len(secret)+50)])
		}
	}
}

// rfSamples are the sample labels of sls_keyword_last_match_info by "logstore/rule".
func rfSamples(families map[string]*dto.MetricFamily) map[string][]string {
	out := map[string][]string{}
	for _, m := range families["sls_keyword_last_match_info"].GetMetric() {
		var logstore, rule, sample string
		for _, lp := range m.Label {
			switch lp.GetName() {
			case "logstore":
				logstore = lp.GetValue()
			case "rule":
				rule = lp.GetValue()
			case "sample":
				sample = lp.GetValue()
			}
		}
		out[logstore+"/"+rule] = append(out[logstore+"/"+rule], sample)
	}
	return out
}

// TestRulesFeaturesCountExactlyAndSamplesKeepSecretsWithTheRealBinaries runs
// the exporter binary on the emulator binary with unless, and,
// case_insensitive, a logstores:-scoped rule and a rule from rule_files over
// four logstores in three regions: every (logstore, shard, rule) counts
// exactly, a scoped rule has no series outside its logstore; secrets planted
// in matching logs show nowhere on /metrics or the status page while the
// samples show the other fields; a reload that changes two regexes (one in
// the main file, one in a rule file) counts by the new ones from then on.
func TestRulesFeaturesCountExactlyAndSamplesKeepSecretsWithTheRealBinaries(t *testing.T) {
	began := time.Now()
	emu := startEmulator(t, seedWorldYAML)
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgFile := filepath.Join(dir, "exporter.yml")
	write("exporter.yml", rfConfig(emu, `^5\d{2}$`))
	write("teams/db.yml", fmt.Sprintf(rfTeamRules, `timeout after \d+ms`))

	base := time.Now().Truncate(time.Second)
	before, secretsAt, after := base.Add(-3*time.Minute), base.Add(-2*time.Minute), base.Add(-time.Minute)
	ledger := newRFLedger()
	// Logs already there when the exporter starts (cursor_start: begin) …
	for i := range seedLogstores {
		ledger.put(t, emu, i, 0, before, rfBefore, func(k int) int { return rfCopies(i, 0, k) })
	}
	r := startExporterRun(t, newPromScraper(t, time.Second), "rules-features", cfgFile)
	// … and written while it runs.
	for i := range seedLogstores {
		ledger.put(t, emu, i, 1, before, rfBefore, func(k int) int { return rfCopies(i, 1, k) })
	}
	ledger.await(t, r.base, "the logs before the reload", 20*time.Second)
	t.Logf("%v: %d match series exact over %v logs", time.Since(began).Round(time.Millisecond), len(ledger.matches), ledger.logs)

	// Secrets in matching logs, newer than every other match of their rules.
	for _, s := range rfSecretLogs {
		ledger.put(t, emu, s.logstore, s.shard, secretsAt, []rfKind{s.kind}, func(int) int { return 1 })
	}
	ledger.await(t, r.base, "the logs with secrets", 15*time.Second)
	families, page := scrape(t, r.base+"/metrics")
	rfNoSecrets(t, "/metrics", page)
	status := rfGet(t, r.base+"/")
	rfNoSecrets(t, "the status page", status)
	rfNoSecrets(t, "the status page, unescaped", html.UnescapeString(status))
	samples := rfSamples(families)
	statusText := html.UnescapeString(status)
	for _, s := range rfSecretLogs {
		logstore := seedLogstores[s.logstore].logstore
		for _, rule := range s.kind.rules {
			key := logstore + "/" + rule
			got := samples[key]
			if len(got) != 1 {
				t.Errorf("%s: %d samples %q, want one", key, len(got), got)
				continue
			}
			for _, pair := range s.want {
				if !strings.Contains(got[0], pair) {
					t.Errorf("%s: sample lacks %s:\n  %s", key, pair, got[0])
				}
			}
			if !strings.Contains(statusText, got[0]) {
				t.Errorf("%s: the status page lacks the sample %s", key, got[0])
			}
			labels := fmt.Sprintf("field=%s,logstore=%s,project=%s,region=%s,rule=%s", rfField(rule), logstore,
				seedLogstores[s.logstore].project, seedLogstores[s.logstore].region, rule)
			if ts := value(families, "sls_keyword_last_match_timestamp_seconds", labels); ts != float64(secretsAt.Unix()) {
				t.Errorf("sls_keyword_last_match_timestamp_seconds{%s} = %v, want the secret log's time %d", labels, ts, secretsAt.Unix())
			}
		}
	}
	// A scoped rule has no sample, no timestamp outside its logstore either.
	for _, name := range []string{"sls_keyword_last_match_info", "sls_keyword_last_match_timestamp_seconds"} {
		for _, m := range families[name].GetMetric() {
			var labels []string
			scoped, logstore := false, ""
			for _, lp := range m.Label {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
				scoped = scoped || (lp.GetName() == "rule" && lp.GetValue() == "qd_deadlock")
				if lp.GetName() == "logstore" {
					logstore = lp.GetValue()
				}
			}
			if scoped && !rfApplies("qd_deadlock", logstore) {
				t.Errorf("%s{%s}: qd_deadlock does not apply there", name, strings.Join(labels, ","))
			}
		}
	}

	// Reload: http_5xx (main file) and db_timeout (rule file) change regex.
	write("exporter.yml", rfConfig(emu, `^50[23]$`))
	write("teams/db.yml", fmt.Sprintf(rfTeamRules, `connection refused`))
	postReload(t, r.base)
	if m, _ := scrape(t, r.base+"/metrics"); value(m, "sls_keyword_exporter_config_last_reload_successful", "") != 1 {
		t.Fatal("sls_keyword_exporter_config_last_reload_successful is not 1 after the reload")
	}
	ledger.putAll(t, emu, after, rfAfter)
	ledger.await(t, r.base, "the logs after the reload", 15*time.Second)
	// The counts stay exact once Prometheus has seen them (nothing counted
	// late, nothing again).
	r.target.waitScrapes(t, 2, 10*time.Second)
	ledger.await(t, r.base, "the counts two scrapes later", 0)

	// Nothing, anywhere, ever showed a secret; the exporter's own log neither.
	_, page = scrape(t, r.base+"/metrics")
	rfNoSecrets(t, "/metrics after the reload", page)
	status = rfGet(t, r.base+"/")
	rfNoSecrets(t, "the status page after the reload", html.UnescapeString(status))
	rfNoSecrets(t, "the exporter's log", r.out.String())
	t.Logf("%v: %d match series exact over %v logs", time.Since(began).Round(time.Millisecond), len(ledger.matches), ledger.logs)
}
