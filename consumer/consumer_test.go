// The exporter's consumers against the emulator: exact counts, samples, lag, restarts, errors and reloads.
package consumer_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// plan is what one shard of one logstore receives.
type plan struct{ n500, n503, n200, nOOM int }

func planFor(logstoreIndex, shard int) plan {
	return plan{n500: 3 + shard + logstoreIndex, n503: 2 * (shard + 1), n200: 10 + logstoreIndex, nOOM: logstoreIndex + shard}
}

// writePlan writes a shard's planned logs at old, plus (on shard 1) one
// newest 500 at now whose path names the logstore.
func writePlan(w *writer, project, logstore string, shard int, p plan, old, now time.Time) (logs int) {
	var batch []*sls.Log
	for i := range p.n500 {
		batch = append(batch, newLog(old, "status", "500", "path", "/old/"+strconv.Itoa(i)))
	}
	for range p.n503 {
		batch = append(batch, newLog(old, "status", "503", "path", "/busy"))
	}
	for range p.n200 {
		batch = append(batch, newLog(old, "status", "200", "path", "/ok"))
	}
	for range p.nOOM {
		batch = append(batch, newLog(old, "status", "200", "msg", "java.lang.OutOfMemoryError: Java heap space"))
	}
	w.put(project, logstore, shard, batch[:len(batch)/2]...)
	w.put(project, logstore, shard, batch[len(batch)/2:]...)
	logs = len(batch)
	if shard == 1 {
		w.put(project, logstore, shard, newLog(now, "status", "502", "path", "/newest-"+logstore, "method", "GET"))
		logs++
	}
	return logs
}

func TestExactCountsSamplesAndLagOnTheSeedTopology(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	now := time.Now()
	old := now.Add(-30 * time.Second)
	wantLogs := map[string]int{}
	for i, s := range seedTopology {
		w := newWriter(t, srv, s.endpoint)
		for shard := range 2 {
			wantLogs[s.logstore] += writePlan(w, s.project, s.logstore, shard, planFor(i, shard), old, now)
		}
	}
	// A log with invalid UTF-8 and a 100 KB value, the newest OOM of logstore1.
	huge := "\xff\xfe OutOfMemory " + strings.Repeat("x", 100_000)
	newWriter(t, srv, seedTopology[0].endpoint).put("project1", "logstore1", 0, newLog(now, "status", "200", "msg", huge))
	wantLogs["logstore1"]++

	e := startExporter(t, mustParse(t, seedConfigYAML(srv.URL, threeRules)))
	for _, s := range seedTopology {
		waitFor(t, 20*time.Second, "all logs of "+s.logstore, func() bool {
			return e.sum(t, "sls_consumer_logs_total", "logstore", s.logstore) == float64(wantLogs[s.logstore])
		})
	}

	// Every held shard × rule has a series, with exactly the planned count.
	matches := e.series(t, "sls_keyword_matches_total")
	if len(matches) != len(seedTopology)*2*3 {
		t.Errorf("%d match series, want %d", len(matches), len(seedTopology)*2*3)
	}
	for i, s := range seedTopology {
		for shard := range 2 {
			p := planFor(i, shard)
			want := map[string]int{"http_5xx": p.n500 + p.n503, "http_503": p.n503, "oom": p.nOOM}
			if shard == 1 {
				want["http_5xx"]++ // the newest 502
			}
			if s.logstore == "logstore1" && shard == 0 {
				want["oom"]++ // the huge log
			}
			for rule, n := range want {
				field := "status"
				if rule == "oom" {
					field = "*"
				}
				key := fmt.Sprintf("field=%s,logstore=%s,project=%s,region=%s,rule=%s,shard=%d", field, s.logstore, s.project, s.region, rule, shard)
				if got := matches[key]; got != float64(n) {
					t.Errorf("%s = %v, want %d", key, got, n)
				}
			}
		}
	}

	// One info series per (logstore, field, rule), holding the newest sample.
	info := e.series(t, "sls_keyword_last_match_info")
	perKey := map[string]int{}
	for key := range info {
		var parts []string
		for _, p := range strings.Split(key, ",") {
			if !strings.HasPrefix(p, "sample=") {
				parts = append(parts, p)
			}
		}
		perKey[strings.Join(parts, ",")]++
		if !utf8.ValidString(key) {
			t.Errorf("info labels are not valid UTF-8: %q", key)
		}
	}
	for k, n := range perKey {
		if n != 1 {
			t.Errorf("%d info series for %s, want 1", n, k)
		}
	}
	for _, s := range seedTopology {
		want := fmt.Sprintf("field=status,logstore=%s,project=%s,region=%s,rule=http_5xx,sample=method=GET path=/newest-%s status=502", s.logstore, s.project, s.region, s.logstore)
		if info[want] != 1 {
			t.Errorf("missing newest sample %q; have %v", want, keysWith(info, s.logstore, "http_5xx"))
		}
		ts := e.series(t, "sls_keyword_last_match_timestamp_seconds")
		if got := ts[fmt.Sprintf("field=status,logstore=%s,project=%s,region=%s,rule=http_5xx", s.logstore, s.project, s.region)]; got != float64(now.Unix()) {
			t.Errorf("%s last match timestamp %v, want %d", s.logstore, got, now.Unix())
		}
	}
	oomSamples := keysWith(info, "logstore1", "rule=oom")
	if len(oomSamples) != 1 {
		t.Fatalf("logstore1 oom samples: %v", oomSamples)
	}
	sample := oomSamples[0][strings.Index(oomSamples[0], "sample=")+len("sample="):]
	if !strings.HasPrefix(sample, "msg=\"\ufffd OutOfMemory xxx") || len(sample) > 120 || !strings.HasSuffix(sample, "…") {
		t.Errorf("huge non-UTF-8 sample rendered as %q (%d bytes)", sample, len(sample))
	}

	// Caught up: every held shard reports zero lag; all shards held by us.
	waitFor(t, 10*time.Second, "zero lag on all 8 shards", func() bool {
		lag := e.series(t, "sls_consumer_lag_seconds")
		if len(lag) != 8 {
			return false
		}
		for _, v := range lag {
			if v != 0 {
				return false
			}
		}
		return true
	})
	for _, s := range seedTopology {
		key := fmt.Sprintf("logstore=%s,project=%s,region=%s", s.logstore, s.project, s.region)
		if held, shards, up := e.series(t, "sls_consumer_shards_held")[key], e.series(t, "sls_logstore_shards")[key], e.series(t, "sls_up")[key]; held != 2 || shards != 2 || up != 1 {
			t.Errorf("%s: held %v shards %v up %v, want 2 2 1", s.logstore, held, shards, up)
		}
	}
	if problems, err := testutil.GatherAndLint(e.metrics.Gatherer(e.reg)); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	if strings.Contains(e.logs.String(), testSecret) {
		t.Fatal("the AccessKey secret appears in the logs")
	}
}

func keysWith(m map[string]float64, parts ...string) []string {
	var out []string
	for k := range m {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(k, p)
		}
		if ok {
			out = append(out, k)
		}
	}
	return out
}

func TestRestartResumesFromCheckpointsWithoutRecounting(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	w := newWriter(t, srv, "cn-hangzhou.log.aliyuncs.com")
	for shard := range 2 {
		for range 5 {
			w.put("project1", "logstore1", shard, newLog(time.Now(), "status", "500"), newLog(time.Now(), "status", "200"))
		}
	}
	cfg := mustParse(t, seedConfigYAML(srv.URL, threeRules))
	first := startExporter(t, cfg)
	waitFor(t, 15*time.Second, "20 logs", func() bool { return first.sum(t, "sls_consumer_logs_total", "logstore", "logstore1") == 20 })
	first.manager.Stop() // graceful: flushes checkpoints

	for shard := range 2 {
		w.put("project1", "logstore1", shard, newLog(time.Now(), "status", "503"), newLog(time.Now(), "status", "200"), newLog(time.Now(), "status", "200"))
	}
	second := startExporter(t, cfg)
	waitFor(t, 15*time.Second, "the 6 new logs", func() bool { return second.sum(t, "sls_consumer_logs_total", "logstore", "logstore1") >= 6 })
	time.Sleep(800 * time.Millisecond) // further idle pulls would expose a recount
	if logs, hits := second.sum(t, "sls_consumer_logs_total", "logstore", "logstore1"), second.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "rule", "http_5xx"); logs != 6 || hits != 2 {
		t.Fatalf("after restart: %v logs and %v 5xx counted, want exactly 6 and 2", logs, hits)
	}
	cps, err := w.client.GetCheckpoint("project1", "logstore1", "test-group")
	if err != nil || len(cps) != 2 || cps[0].CheckPoint == "" || cps[0].Consumer != "test-consumer" {
		t.Fatalf("checkpoints: %+v %v", cps, err)
	}
}

func TestSDKFailuresAreCountedByOperationAndCode(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	if _, err := srv.InjectFault(slsemu.Fault{Route: "PullLogs", Logstore: "logstore2", Status: 403, Code: "ReadQuotaExceed", Times: 1}); err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, mustParse(t, seedConfigYAML(srv.URL, threeRules)))
	key := "code=ReadQuotaExceed,logstore=logstore2,operation=PullLogs,project=project2,region=cn-beijing"
	waitFor(t, 10*time.Second, key, func() bool { return e.series(t, "sls_consumer_errors_total")[key] == 1 })

	// A heartbeat failure marks the logstore down until the next success.
	hb, _ := srv.InjectFault(slsemu.Fault{Route: "HeartBeat", Logstore: "logstore3_1", Status: 500, Code: "InternalServerError"})
	upKey := "logstore=logstore3_1,project=project3,region=cn-qingdao"
	defer func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	}()
	waitFor(t, 5*time.Second, "logstore3_1 down", func() bool { return e.series(t, "sls_up")[upKey] == 0 })
	if e.series(t, "sls_up")["logstore=logstore1,project=project1,region=cn-hangzhou"] != 1 {
		t.Fatal("a fault on one logstore must not take others down")
	}
	srv.RemoveFault(hb)
	waitFor(t, 5*time.Second, "logstore3_1 up again", func() bool { return e.series(t, "sls_up")[upKey] == 1 })
	if n := e.sum(t, "sls_consumer_errors_total", "logstore", "logstore3_1", "operation", "HeartBeat", "code", "InternalServerError"); n < 1 {
		t.Fatalf("heartbeat errors counted: %v; all: %v", n, e.series(t, "sls_consumer_errors_total"))
	}
}

func TestBrokenTargetsDoNotStopTheOthers(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	yamlText := fmt.Sprintf(`consumer_group: test-group
cursor_start: begin
heartbeat_interval: 1s
consumer_timeout: 3s
retry_timeout: 1s
credentials:
  access_key_id: %s
  access_key_secret: %s
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects:
      - name: project1
        logstores: [logstore1, no-such-logstore]
      - name: no-such-project
        logstores: [logstore1]
  - name: cn-beijing
    endpoint: cn-beijing.log.aliyuncs.com
    proxy_url: %s
    credentials:
      access_key_secret: wrong-secret-do-not-leak
    projects:
      - name: project2
        logstores: [logstore2]
  - name: unreachable
    endpoint: 127.0.0.1:1
    projects:
      - name: project3
        logstores: [logstore3_1]
`+threeRules, testAK, testSecret, srv.URL, srv.URL)
	e := startExporter(t, mustParse(t, yamlText))
	newWriter(t, srv, "cn-hangzhou.log.aliyuncs.com").put("project1", "logstore1", 0, newLog(time.Now(), "status", "500"))

	waitFor(t, 15*time.Second, "every target to start or fail", func() bool { ready, _ := e.manager.Ready(); return ready })
	waitFor(t, 10*time.Second, "the good logstore's match", func() bool {
		return e.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "project", "project1", "rule", "http_5xx") == 1
	})
	up := e.series(t, "sls_up")
	want := map[string]float64{
		"logstore=logstore1,project=project1,region=cn-hangzhou":        1,
		"logstore=no-such-logstore,project=project1,region=cn-hangzhou": 0,
		"logstore=logstore1,project=no-such-project,region=cn-hangzhou": 0,
		"logstore=logstore2,project=project2,region=cn-beijing":         0,
		"logstore=logstore3_1,project=project3,region=unreachable":      0,
	}
	for k, v := range want {
		if got, ok := up[k]; !ok || got != v {
			t.Errorf("sls_up{%s} = %v (present %v), want %v", k, got, ok, v)
		}
	}
	errs := e.series(t, "sls_consumer_errors_total")
	for _, k := range []string{
		"code=LogStoreNotExist,logstore=no-such-logstore,operation=ListShards,project=project1,region=cn-hangzhou",
		"code=ProjectNotExist,logstore=logstore1,operation=ListShards,project=no-such-project,region=cn-hangzhou",
		"code=SignatureNotMatch,logstore=logstore2,operation=ListShards,project=project2,region=cn-beijing",
		"code=ClientError,logstore=logstore3_1,operation=ListShards,project=project3,region=unreachable",
	} {
		if errs[k] < 1 {
			t.Errorf("errors_total{%s} = %v, want ≥ 1", k, errs[k])
		}
	}
	logs := e.logs.String()
	for _, target := range []string{"region=cn-hangzhou project=no-such-project logstore=logstore1", "region=cn-beijing project=project2 logstore=logstore2", "region=unreachable project=project3 logstore=logstore3_1"} {
		if !strings.Contains(logs, `level=ERROR msg="Cannot consume logstore; retrying" `+target) {
			t.Errorf("no error log naming %s", target)
		}
	}
	if strings.Contains(logs, "wrong-secret-do-not-leak") || strings.Contains(logs, testSecret) {
		t.Fatal("a secret appears in the logs")
	}
}

func TestReloadSwapsRulesWithoutRestartingConsumers(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	cfg := mustParse(t, seedConfigYAML(srv.URL, threeRules))
	e := startExporter(t, cfg)
	w := newWriter(t, srv, "cn-hangzhou.log.aliyuncs.com")
	w.put("project1", "logstore1", 0, newLog(time.Now(), "status", "500", "path", "/a"))
	waitFor(t, 10*time.Second, "the first match", func() bool {
		return e.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "rule", "http_5xx") == 1
	})
	before, _ := srv.ConsumerGroupState("project1", "logstore1", "test-group")

	newRules := "rules:\n  - name: admin_path\n    field: path\n    regex: '^/admin'\n"
	next := mustParse(t, seedConfigYAML(srv.URL, newRules))
	if err := e.manager.Apply(next, consumer.SettingsFrom(next, "unused")); err != nil {
		t.Fatal(err)
	}
	w.put("project1", "logstore1", 0, newLog(time.Now(), "status", "500", "path", "/admin/x"))
	waitFor(t, 10*time.Second, "the new rule's match", func() bool {
		return e.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "rule", "admin_path") == 1
	})
	if n := len(keysWith(e.series(t, "sls_keyword_matches_total"), "rule=http_5xx")); n != 0 {
		t.Fatalf("%d series of the removed rule remain", n)
	}
	after, _ := srv.ConsumerGroupState("project1", "logstore1", "test-group")
	if fmt.Sprint(before.HeldShards()) != fmt.Sprint(after.HeldShards()) || len(after.Consumers) != 1 {
		t.Fatalf("consumers changed on a rules-only reload: %v -> %v", before.HeldShards(), after.HeldShards())
	}
}

func TestScopedRulesCountOnlyInTheirLogstores(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	scoped := `rules:
  - name: http_5xx
    field: status
    regex: '^5\d{2}$'
  - name: hangzhou_5xx
    field: status
    regex: '^5\d{2}$'
    logstores: ['cn-hangzhou/project1/*', 'cn-qingdao/*/logstore3_?']
`
	e := startExporter(t, mustParse(t, seedConfigYAML(srv.URL, scoped)))
	for _, s := range seedTopology {
		newWriter(t, srv, s.endpoint).put(s.project, s.logstore, 0, newLog(time.Now(), "status", "500"), newLog(time.Now(), "status", "503"))
	}
	for _, s := range seedTopology {
		waitFor(t, 10*time.Second, "the 5xx of "+s.logstore, func() bool {
			return e.sum(t, "sls_keyword_matches_total", "logstore", s.logstore, "rule", "http_5xx") == 2
		})
	}
	for _, s := range seedTopology {
		want := 2.0
		if s.logstore == "logstore2" {
			want = 0
		}
		if got := e.sum(t, "sls_keyword_matches_total", "logstore", s.logstore, "rule", "hangzhou_5xx"); got != want {
			t.Errorf("hangzhou_5xx in %s = %v, want %v", s.logstore, got, want)
		}
	}
	if n := len(keysWith(e.series(t, "sls_keyword_matches_total"), "logstore=logstore2,", "rule=hangzhou_5xx")); n != 0 {
		t.Errorf("%d hangzhou_5xx series in logstore2, which the rule does not apply to", n)
	}

	// Narrowing the scope on reload drops the series it no longer covers.
	narrowed := strings.Replace(scoped, `['cn-hangzhou/project1/*', 'cn-qingdao/*/logstore3_?']`, `['cn-hangzhou/project1/*']`, 1)
	next := mustParse(t, seedConfigYAML(srv.URL, narrowed))
	if err := e.manager.Apply(next, consumer.SettingsFrom(next, "unused")); err != nil {
		t.Fatal(err)
	}
	if n := len(keysWith(e.series(t, "sls_keyword_matches_total"), "logstore=logstore3_", "rule=hangzhou_5xx")); n != 0 {
		t.Errorf("%d hangzhou_5xx series left in the qingdao logstores after narrowing its scope", n)
	}
	if got := e.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "rule", "hangzhou_5xx"); got != 2 {
		t.Errorf("hangzhou_5xx in logstore1 after the reload = %v, want 2 (kept)", got)
	}
}

// TestZstdPullsAndASmallBufferBudget reads a region asking for zstd, with a
// pull buffer budget smaller than one pull: every log counted all the same.
func TestZstdPullsAndASmallBufferBudget(t *testing.T) {
	srv := startEmulator(t, seedWorld())
	yamlText := strings.Replace(seedConfigYAML(srv.URL, threeRules), "    proxy_url: "+srv.URL+"\n", "    proxy_url: "+srv.URL+"\n    compression: zstd\n", 1)
	yamlText = strings.Replace(yamlText, "sample_max_length: 120\n", "sample_max_length: 120\npull_buffer_bytes: 1MiB\n", 1)
	cfg := mustParse(t, yamlText)
	if cfg.Regions[0].Compression != "zstd" || cfg.PullBufferBytes != 1<<20 {
		t.Fatalf("config: compression %q, budget %d", cfg.Regions[0].Compression, cfg.PullBufferBytes)
	}
	w := newWriter(t, srv, cfg.Regions[0].Endpoint)
	// About 3 MiB raw in one shard: more than the whole budget in one pull.
	big := strings.Repeat("x", 30_000)
	for range 100 {
		w.put("project1", "logstore1", 0, newLog(time.Now(), "status", "500", "blob", big))
	}
	e := startExporter(t, cfg)
	waitFor(t, 20*time.Second, "all 100 big logs", func() bool {
		return e.sum(t, "sls_consumer_logs_total", "logstore", "logstore1") == 100
	})
	if got := e.sum(t, "sls_keyword_matches_total", "logstore", "logstore1", "rule", "http_5xx"); got != 100 {
		t.Fatalf("matches %v, want 100", got)
	}
	if n := len(e.series(t, "sls_consumer_errors_total")); n != 0 {
		t.Fatalf("errors: %v", e.series(t, "sls_consumer_errors_total"))
	}
}
