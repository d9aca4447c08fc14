// A reload that removes a logstore, with the real binaries: none of its series are left, also when its calls fail or hang at the time, and the logstore kept counts on exactly; and, while one logstore's calls hang, another of its project is not held up.
package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	removalGroup    = "removal-cg"
	removalScrape   = 500 * time.Millisecond // the scraper's interval
	removalShutdown = 4 * time.Second        // --shutdown.timeout
	removalProject  = "project3"
	removalKept     = "logstore3_1"
	removalDropped  = "logstore3_2"
)

// removalConfig reads the given logstores of project3 (cn-qingdao) from
// their beginning.
func removalConfig(emu string, logstores ...string) string {
	return fmt.Sprintf(`consumer_group: %s
consumer_name: remover
cursor_start: begin
heartbeat_interval: 1s
consumer_timeout: 3s
commit_interval: 1s
credentials:
  access_key_id: %s
  access_key_secret: %s
regions:
  - name: cn-qingdao
    endpoint: cn-qingdao.log.aliyuncs.com
    proxy_url: %s
    projects:
      - name: %s
        logstores: [%s]
rules:
`, removalGroup, testAK, testSecret, emu, removalProject, strings.Join(logstores, ", ")) + http5xxRule
}

// waitWritten waits until each writer's logstore shows exactly what it wrote.
func waitWritten(t testing.TB, r *exporterRun, timeout time.Duration, writers ...*seqWriter) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, _ := scrape(t, r.base+"/metrics")
		var wrong []string
		for _, w := range writers {
			wantLogs, wantMatches := w.totals()
			logs, matches := counts(m, w.logstore)
			if logs != float64(wantLogs) || matches != float64(wantMatches) {
				wrong = append(wrong, fmt.Sprintf("%s: %v logs and %v matches counted, %d and %d written", w.logstore, logs, matches, wantLogs, wantMatches))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s:\n%s", timeout, strings.Join(wrong, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clearFaults removes every fault of the emulator.
func clearFaults(t testing.TB, emu string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, emu+"/_slsemu/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clearing faults: %s", resp.Status)
	}
}

// consumerRoutes are the calls a member makes for its logstore.
var consumerRoutes = []string{
	"HeartBeat", "UpdateCheckpoint", "GetCheckpoint", "PullLogs", "GetCursor", "GetCursorTime", "ListShards",
	"ListConsumerGroup", "CreateConsumerGroup", "UpdateConsumerGroup",
}

func TestReloadRemovingALogstoreLeavesNoneOfItsSeries(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault string // JSON fields of a fault on every call of the dropped logstore's member, before the reload
	}{
		{name: "healthy"},
		{name: "its calls fail", fault: `"status":503,"code":"ServerBusy"`},
		{name: "its calls hang", fault: `"latency":"1m"`},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			began := time.Now()
			emu := startEmulator(t, seedWorldYAML)
			client := sdkClient(emu, "cn-qingdao.log.aliyuncs.com")
			kept := newSeqWriter(t, client, removalProject, removalKept)
			dropped := newSeqWriter(t, client, removalProject, removalDropped)
			for _, w := range []*seqWriter{kept, dropped} {
				if err := w.write(0, "500", "200", "503"); err != nil {
					t.Fatal(err)
				}
				if err := w.write(1, "504", "404"); err != nil {
					t.Fatal(err)
				}
			}
			// One refused pull, so that the dropped logstore has an error series too.
			injectFault(t, emu, `{"route":"PullLogs","logstore":"`+removalDropped+`","status":403,"code":"ReadQuotaExceed","times":1}`)

			cfg := writeFile(t, "exporter.yml", removalConfig(emu, removalKept, removalDropped))
			sc := newPromScraper(t, removalScrape)
			r := startExporterRun(t, sc, "remover", cfg, "--shutdown.timeout="+removalShutdown.String())
			waitWritten(t, r, 20*time.Second, kept, dropped)
			waitAllSeries(t, r, removalDropped, 10*time.Second)

			if c.fault != "" {
				m, _ := scrape(t, r.base+"/metrics")
				hbErrors := sum(m, "sls_consumer_errors_total", "logstore="+removalDropped, "operation=HeartBeat")
				ids := map[string]string{}
				for _, route := range consumerRoutes {
					ids[route] = injectFault(t, emu, `{"route":"`+route+`","logstore":"`+removalDropped+`",`+c.fault+`}`)
				}
				// Logs it may or may not count: the logstore goes.
				if err := dropped.write(0, "500"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 10*time.Second, "its heartbeats and pulls refused or hanging", func() bool {
					hits := faultHits(t, emu)
					if hits[ids["HeartBeat"]] == 0 || hits[ids["PullLogs"]] == 0 {
						return false
					}
					if strings.Contains(c.fault, "status") {
						m, _ := scrape(t, r.base+"/metrics")
						return sum(m, "sls_consumer_errors_total", "logstore="+removalDropped, "operation=HeartBeat") > hbErrors
					}
					return true
				})
				// One failing or hanging logstore does not hold up the other
				// (see also TestAHangingLogstoreDoesNotHoldUpAnotherOfItsProject).
				if err := kept.write(1, "500", "200"); err != nil {
					t.Fatal(err)
				}
				waitWritten(t, r, 5*time.Second, kept)
			}

			if err := os.WriteFile(cfg, []byte(removalConfig(emu, removalKept)), 0o600); err != nil {
				t.Fatal(err)
			}
			took := postReload(t, r.base)
			t.Logf("%s: the reload dropping %s took %s (--shutdown.timeout %s)", c.name, removalDropped, took.Round(time.Millisecond), removalShutdown)
			if took >= removalShutdown {
				t.Errorf("the reload took %s, not within --shutdown.timeout %s", took.Round(time.Millisecond), removalShutdown)
			}
			m, _ := scrape(t, r.base+"/metrics")
			if left := seriesOfLogstore(m, removalDropped); len(left) > 0 {
				t.Errorf("right after the reload, %d series of %s remain:\n%s", len(left), removalDropped, strings.Join(left, "\n"))
			}
			if v := value(m, "sls_keyword_exporter_config_last_reload_successful", ""); v != 1 {
				t.Errorf("sls_keyword_exporter_config_last_reload_successful = %v", v)
			}
			staysGone(t, r, removalDropped, 3, removalScrape)

			// The kept logstore counts on exactly; the dropped one is not read.
			if err := kept.write(0, "500", "200"); err != nil {
				t.Fatal(err)
			}
			if err := kept.write(1, "503", "502", "404"); err != nil {
				t.Fatal(err)
			}
			if err := dropped.write(1, "500", "500"); err != nil {
				t.Fatal(err)
			}
			waitWritten(t, r, 10*time.Second, kept)
			staysGone(t, r, removalDropped, 2, removalScrape)
			// Faults gone, calls the dropped member may have left hanging
			// are answered: still nothing of it.
			clearFaults(t, emu)
			staysGone(t, r, removalDropped, 3, removalScrape)
			waitWritten(t, r, 10*time.Second, kept)
			if _, resets, _ := r.target.segments("sls_consumer_logs_total", "logstore="+removalKept); resets != 0 {
				t.Errorf("%s's sls_consumer_logs_total went down %d times across the reload", removalKept, resets)
			}
			// What Prometheus saw of it adds up to exactly what was written.
			r.target.waitScrapes(t, 1, 10*time.Second)
			logs, matches := kept.totals()
			if got := r.target.total("sls_consumer_logs_total", "logstore="+removalKept); got != float64(logs) {
				t.Errorf("scraped sls_consumer_logs_total of %s = %v, want the %d logs written", removalKept, got, logs)
			}
			if got := r.target.total("sls_keyword_matches_total", "logstore="+removalKept); got != float64(matches) {
				t.Errorf("scraped sls_keyword_matches_total of %s = %v, want the %d matches written", removalKept, got, matches)
			}
			t.Logf("%s: took %s", c.name, time.Since(began).Round(time.Millisecond))
		})
	}
}

// TestAHangingLogstoreDoesNotHoldUpAnotherOfItsProject: while every pull
// of logstore3_2 hangs (SLS answers nothing), a log written into
// logstore3_1 of the same project is counted as fast as ever: "one broken
// logstore never stops the others".
func TestAHangingLogstoreDoesNotHoldUpAnotherOfItsProject(t *testing.T) {
	const bar = 2 * time.Second // a quiet shard is polled at least every 1.2 s
	// Eight shards whose polls hang: whatever their phases, the other
	// logstore's polls fall in a batch with one of them.
	emu := startEmulator(t, `access_keys:
  - id: `+testAK+`
    secret: `+testSecret+`
regions:
  - name: cn-qingdao
    endpoint: cn-qingdao.log.aliyuncs.com
    projects:
      - name: `+removalProject+`
        logstores: [{name: `+removalKept+`, shards: 2}, {name: `+removalDropped+`, shards: 8}]
`)
	client := sdkClient(emu, "cn-qingdao.log.aliyuncs.com")
	kept := newSeqWriter(t, client, removalProject, removalKept)
	cfg := writeFile(t, "exporter.yml", removalConfig(emu, removalKept, removalDropped))
	sc := newPromScraper(t, removalScrape)
	r := startExporterRun(t, sc, "isolated", cfg)
	waitWritten(t, r, 20*time.Second, kept)
	waitFor(t, 10*time.Second, "a pull of each shard", func() bool {
		m, _ := scrape(t, r.base+"/metrics")
		return len(m["sls_consumer_last_pull_timestamp_seconds"].GetMetric()) == 10
	})
	hang := injectFault(t, emu, `{"route":"PullLogs","logstore":"`+removalDropped+`","latency":"1m"}`)
	waitFor(t, 10*time.Second, "a poll of "+removalDropped+" hanging", func() bool { return faultHits(t, emu)[hang] >= 1 })
	// Writes spread over a few seconds, to meet the polls in every phase.
	for i := range 12 {
		if err := kept.write(i%2, "500"); err != nil {
			t.Fatal(err)
		}
		written := time.Now()
		waitWritten(t, r, 30*time.Second, kept)
		if took := time.Since(written); took > bar {
			m, _ := scrape(t, r.base+"/metrics")
			var errs []string
			for _, s := range seriesOfLogstore(m, removalKept) {
				if strings.HasPrefix(s, "sls_consumer_errors_total{") {
					errs = append(errs, s)
				}
			}
			t.Fatalf("while %s's pulls hang, a log written into shard %d of %s (same project) at %s was counted only after %s; want within %s (%s's error series: %v)",
				removalDropped, i%2, removalKept, written.Format("15:04:05.000"), took.Round(time.Millisecond), bar, removalKept, errs)
		}
		time.Sleep(500 * time.Millisecond) // spreads the writes over the poll phases; not an assertion
	}
}
