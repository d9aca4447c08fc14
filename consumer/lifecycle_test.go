// Stop and reload under faults: both finish within the stop timeout, leave no goroutine behind, and a dropped logstore's series all go.
package consumer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// lifecycleStopTimeout is the stop timeout given to NewManager here.
const lifecycleStopTimeout = 3 * time.Second

// checkNoGoroutineLeft stops the scraper, closes the writers' idle
// connections and waits (up to 2 s) for the goroutine count to be back at
// the baseline taken before the manager started, tolerance 0.
func checkNoGoroutineLeft(t *testing.T, e *rigExporter, base goroutineSnapshot, writers ...*rigWriter) {
	t.Helper()
	e.stopScraper()
	var closers []func()
	for _, w := range writers {
		closers = append(closers, w.http.CloseIdleConnections)
	}
	after, left, waited := settleGoroutines(t, base, closers...)
	if len(left) > 0 {
		t.Errorf("goroutines started since the manager started and still there 2 s after Stop (NumGoroutine %d before, %d after, the emulator's not counted):\n%s",
			base.n, after.n, strings.Join(left, "\n"))
		return
	}
	t.Logf("goroutines: none of the manager's left %v after Stop; NumGoroutine %d before the manager started, %d after (the emulator's %d and %d not counted)",
		waited.Round(time.Millisecond), base.n, after.n, base.emulator, after.emulator)
}

func TestStopWithinTimeoutWhateverSLSAnswers(t *testing.T) {
	hang := slsemu.Fault{Latency: slsemu.Duration(time.Minute)}
	for _, c := range []struct {
		name string
		// before: injected before the manager starts; during: once it counts.
		before, during *slsemu.Fault
		routes         []string
	}{
		{name: "healthy"},
		{name: "every call hangs", during: &hang},
		{name: "every call 500", during: &slsemu.Fault{Status: 500, Code: "InternalServerError"}},
		{name: "every call 503", during: &slsemu.Fault{Status: 503, Code: "ServerBusy"}},
		{name: "every call resets", during: &slsemu.Fault{Reset: true}},
		{name: "every call 2 s late", during: &slsemu.Fault{Latency: slsemu.Duration(2 * time.Second)}},
		{name: "UpdateCheckpoint 401", during: &slsemu.Fault{Status: 401, Code: "Unauthorized"}, routes: []string{"UpdateCheckpoint"}},
		{name: "setup hangs", before: &hang, routes: []string{"ListShards"}},
		{name: "heartbeats and GetCheckpoint hang", before: &hang, routes: []string{"HeartBeat", "GetCheckpoint"}},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			srv := startRigEmulator(t, seedWorld())
			tg := seedTarget("logstore1")
			w := newRigWriter(t, srv, tg)
			l := newLedger(t, nil, w, tg)
			l.write(3)
			w.http.CloseIdleConnections()
			if c.before != nil {
				injectFaults(t, srv, *c.before, c.routes...)
			}
			base := takeGoroutines()

			e := startRigExporter(t, mustParse(t, seedConfigYAML(srv.URL, threeRules)), lifecycleStopTimeout)
			l.e = e.exporter
			if c.before == nil {
				l.waitExact(20*time.Second, "logs written before the fault")
				l.write(2) // counted, and perhaps not yet committed, when the fault strikes
				l.waitExact(5*time.Second, "more logs")
			}
			if c.during != nil {
				injectFaults(t, srv, *c.during, c.routes...)
			}
			time.Sleep(1500 * time.Millisecond) // calls are failing or hanging: the point
			stopTook := e.stop()
			if stopTook > lifecycleStopTimeout {
				t.Errorf("Stop took %v, more than the stop timeout %v", stopTook, lifecycleStopTimeout)
			}
			t.Logf("%s: Stop took %v (stop timeout %v)", c.name, stopTook.Round(time.Millisecond), lifecycleStopTimeout)
			if c.name == "healthy" {
				if end, cp := endCursors(t, srv, tg); end != cp {
					t.Errorf("a clean stop left checkpoints %v behind the end cursors %v", cp, end)
				}
			}
			checkNoGoroutineLeft(t, e, base, w)
		})
	}
}

// withoutLogstore2 removes the cn-beijing region (logstore2's only) from a seed configuration.
func withoutLogstore2(t testing.TB, text string) string {
	t.Helper()
	from := strings.Index(text, "  - name: cn-beijing\n")
	to := strings.Index(text, "  - name: cn-qingdao\n")
	if from < 0 || to < from || !strings.Contains(text[from:to], "logstores: [logstore2]") {
		t.Fatalf("unexpected seed configuration:\n%s", text)
	}
	return text[:from] + text[to:]
}

// logstoreFamilies are the families every consumed logstore has series in.
var logstoreFamilies = []string{
	"sls_keyword_matches_total", "sls_keyword_last_match_info", "sls_keyword_last_match_timestamp_seconds",
	"sls_consumer_logs_total", "sls_consumer_bytes_total", "sls_consumer_errors_total", "sls_up",
	"sls_consumer_shards_held", "sls_logstore_shards", "sls_consumer_group_timeout_seconds",
	"sls_consumer_lag_seconds", "sls_consumer_last_pull_timestamp_seconds",
}

// seriesOf lists every series (family{labels}) of a logstore in the registry.
func seriesOf(t testing.TB, e *exporter, logstore string) []string {
	var out []string
	for name, samples := range e.gatherAll(t) {
		for key := range samples {
			if hasLabels(key, []string{"logstore", logstore}) {
				out = append(out, name+"{"+key+"}")
			}
		}
	}
	return out
}

func TestReloadDroppingALogstore(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault *slsemu.Fault // on logstore2's calls before the reload
	}{
		{name: "healthy"},
		{name: "its calls hang", fault: &slsemu.Fault{Latency: slsemu.Duration(time.Minute)}},
		{name: "its calls fail", fault: &slsemu.Fault{Status: 503, Code: "ServerBusy"}},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			srv := startRigEmulator(t, seedWorld())
			tg, dropped := seedTarget("logstore1"), seedTarget("logstore2")
			w, w2 := newRigWriter(t, srv, tg), newRigWriter(t, srv, dropped)
			l, l2 := newLedger(t, nil, w, tg), newLedger(t, nil, w2, dropped)
			l.write(3)
			l2.write(3)
			w.http.CloseIdleConnections()
			w2.http.CloseIdleConnections()
			// One refused pull, so that logstore2 has an error series too.
			if _, err := srv.InjectFault(slsemu.Fault{Route: "PullLogs", Logstore: dropped.logstore, Status: 403, Code: "ReadQuotaExceed", Times: 1}); err != nil {
				t.Fatal(err)
			}
			base := takeGoroutines()

			text := seedConfigYAML(srv.URL, threeRules)
			e := startRigExporter(t, mustParse(t, text), lifecycleStopTimeout)
			l.e, l2.e = e.exporter, e.exporter
			l.waitExact(20*time.Second, "logstore1's logs")
			l2.waitExact(10*time.Second, "logstore2's logs")
			waitFor(t, 5*time.Second, "a series of logstore2 in every family", func() bool {
				have := map[string]bool{}
				for _, s := range seriesOf(t, e.exporter, dropped.logstore) {
					have[s[:strings.Index(s, "{")]] = true
				}
				for _, f := range logstoreFamilies {
					if !have[f] {
						return false
					}
				}
				return true
			})
			// Goroutines running the members' code, whatever they are: the
			// fewest seen over half a second (lag probes come and go).
			before := -1
			for range 10 {
				if n := takeGoroutines().countFramePrefix("consumer.(*member)."); before < 0 || n < before {
					before = n
				}
				time.Sleep(50 * time.Millisecond)
			}
			groupBefore, _ := srv.ConsumerGroupState(tg.project, tg.logstore, "test-group")

			if c.fault != nil {
				f := *c.fault
				f.Logstore = dropped.logstore
				injectFaults(t, srv, f)
				l2.write(1)                         // counted or not: the logstore goes
				time.Sleep(1500 * time.Millisecond) // its calls are hanging or failing: the point
			}
			next := mustParse(t, withoutLogstore2(t, text))
			start := time.Now()
			if err := e.manager.Apply(next, consumer.SettingsFrom(next, "unused")); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if took > lifecycleStopTimeout {
				t.Errorf("the reload took %v, more than the stop timeout %v", took, lifecycleStopTimeout)
			}
			if left := seriesOf(t, e.exporter, dropped.logstore); len(left) > 0 {
				t.Errorf("series of the dropped logstore remain after the reload:\n%s", strings.Join(left, "\n"))
			}
			// A quarter of them were the dropped member's.
			var after int
			waitFor(t, 2*time.Second, "the dropped member's goroutines gone", func() bool {
				after = takeGoroutines().countFramePrefix("consumer.(*member).")
				return after*4 <= before*3
			})
			t.Logf("%s: reload dropping logstore2 took %v (stop timeout %v); goroutines in member code: %d before, %d after",
				c.name, took.Round(time.Millisecond), lifecycleStopTimeout, before, after)

			// The kept logstores were not restarted and go on counting exactly.
			l.write(2)
			l.waitExact(5*time.Second, "logstore1's logs after the reload")
			groupAfter, _ := srv.ConsumerGroupState(tg.project, tg.logstore, "test-group")
			if len(groupAfter.Consumers) != 1 || groupBefore.Owner[0] != groupAfter.Owner[0] || groupBefore.Owner[1] != groupAfter.Owner[1] {
				t.Errorf("logstore1's membership changed on a reload that kept it: %+v -> %+v", groupBefore, groupAfter)
			}
			time.Sleep(500 * time.Millisecond) // a late count of the dropped member would bring its series back
			if left := seriesOf(t, e.exporter, dropped.logstore); len(left) > 0 {
				t.Errorf("series of the dropped logstore came back:\n%s", strings.Join(left, "\n"))
			}
			srv.ClearFaults()
			if d := e.stop(); d > lifecycleStopTimeout {
				t.Errorf("Stop took %v", d)
			}
			checkNoGoroutineLeft(t, e, base, w, w2)
		})
	}
}

// TestStopWithinTimeoutWithManyLaggingShards: every call hangs while the
// lag of 8 shards is being measured (each has just read data and, with a 5 s
// fetch interval, is not caught up). Stop must still return within the stop
// timeout, however many probes were queued behind the hanging one.
func TestStopWithinTimeoutWithManyLaggingShards(t *testing.T) {
	const shards = 8
	world := &slsemu.World{
		AccessKeys: []slsemu.AccessKey{{ID: testAK, Secret: testSecret}},
		Regions: []slsemu.RegionConfig{{Name: "cn-hangzhou", Endpoint: "cn-hangzhou.log.aliyuncs.com", Projects: []slsemu.ProjectConfig{{
			Name: "project1", Logstores: []slsemu.LogstoreConfig{{Name: "wide", Shards: shards}},
		}}}},
	}
	srv := startRigEmulator(t, world)
	tg := target{"cn-hangzhou", "cn-hangzhou.log.aliyuncs.com", "project1", "wide"}
	w := newRigWriter(t, srv, tg)
	w.shardKeys(tg.project, tg.logstore)
	w.http.CloseIdleConnections()
	base := takeGoroutines()

	cfg := mustParse(t, fmt.Sprintf(`consumer_group: test-group
consumer_name: test-consumer
cursor_start: begin
heartbeat_interval: 1s
consumer_timeout: 10s
commit_interval: 300ms
lag_interval: 200ms
fetch_interval: 5s
credentials:
  access_key_id: %s
  access_key_secret: %s
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects:
      - name: project1
        logstores: [wide]
`+threeRules, testAK, testSecret, srv.URL))
	e := startRigExporter(t, cfg, lifecycleStopTimeout)
	// Every shard's first pull finds nothing: all caught up, polled every
	// second. The log written next is read by each within a second and
	// leaves it behind (not caught up) for the 5 s fetch interval.
	waitFor(t, 20*time.Second, "every shard pulled once", func() bool {
		return len(keysWith(e.series(t, "sls_consumer_last_pull_timestamp_seconds"), "logstore=wide,")) == shards
	})
	for shard := range shards {
		w.put(tg.project, tg.logstore, shard, newLog(time.Now(), "status", "500"))
	}
	waitFor(t, 5*time.Second, "the log of every shard counted", func() bool {
		return e.sum(t, "sls_keyword_matches_total", "logstore", "wide", "rule", "http_5xx") == shards
	})
	injectFaults(t, srv, slsemu.Fault{Latency: slsemu.Duration(time.Minute)})
	time.Sleep(time.Second) // a lag probe starts and hangs: the point
	took := e.stop()
	if took > lifecycleStopTimeout {
		t.Errorf("Stop took %v, more than the stop timeout %v", took, lifecycleStopTimeout)
	}
	var probes []string
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, "Lag probe failed") {
			probes = append(probes, line[:min(len(line), 160)])
		}
	}
	t.Logf("Stop took %v (stop timeout %v); lag probes failed: %d\n%s", took.Round(time.Millisecond), lifecycleStopTimeout, len(probes), strings.Join(probes, "\n"))
	checkNoGoroutineLeft(t, e, base, w)
}
