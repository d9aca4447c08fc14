// Restarts of one exporter while logs keep arriving, followed by a Prometheus-like scraper: SIGTERM neither loses nor recounts, SIGKILL only recounts.
package e2e

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const (
	restartGroup    = "restart-cg"
	restartScrape   = 5 * time.Second // the scraper's interval
	restartCommit   = time.Second     // commit_interval
	shutdownTimeout = 15 * time.Second
	// exitSlack is "a little": from the scrape that acknowledged the last
	// counts to the exit (a commit per shard, the last heartbeat, closing).
	exitSlack = 2 * time.Second
)

// restartConfig reads project1/logstore1 from its beginning as consumerName
// of group, committing every second.
func restartConfig(emu, group, consumerName string) string {
	return logstore1Config(emu, fmt.Sprintf("consumer_group: %s\nconsumer_name: %s\ncursor_start: begin\ncommit_interval: %s\n",
		group, consumerName, restartCommit), http5xxRule)
}

// exporterRun is one exporter process and what the scraper saw of it.
type exporterRun struct {
	*proc
	name   string
	base   string
	target *scrapeTarget
}

// startExporterRun starts the exporter on cfgFile at a free port and, once
// ready, has sc scrape it until it is gone; it returns after the first scrape.
func startExporterRun(t testing.TB, sc *promScraper, name, cfgFile string, args ...string) *exporterRun {
	t.Helper()
	addr := freeAddr(t)
	p := start(t, nil, "sls_keyword_exporter", append([]string{"--config.file=" + cfgFile, "--web.listen-address=" + addr, "--log.level=debug"}, args...)...)
	p.name = name
	base := "http://" + addr
	waitHTTP(t, base+"/-/ready", 15*time.Second)
	r := &exporterRun{proc: p, name: name, base: base, target: sc.add(name, base+"/metrics", p.done)}
	waitFor(t, 10*time.Second, "the first scrape of "+name, func() bool { return r.target.scrapeCount() > 0 })
	return r
}

// resumes checks that a run holds both shards of logstore1 well within the
// group's timeout (3 s): under the previous run's consumer name it need not
// wait for that run to expire.
func resumes(t testing.TB, r *exporterRun) {
	t.Helper()
	started := r.target.firstScrape()
	waitFor(t, 10*time.Second, r.name+" to hold both shards", func() bool { return r.peek(t, "sls_consumer_shards_held") == 2 })
	took := time.Since(started)
	t.Logf("%s: holds both shards %s after its first scrape", r.name, took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("%s held both shards only %s after it was ready: it waited for the group timeout", r.name, took.Round(time.Millisecond))
	}
}

// peek reads a sum from /metrics without Prometheus's header: it
// acknowledges nothing.
func (r *exporterRun) peek(t testing.TB, name string, subset ...string) float64 {
	t.Helper()
	m, _ := scrape(t, r.base+"/metrics")
	return sum(m, name, subset...)
}

// termination is how a SIGTERM went.
type termination struct {
	took time.Duration // SIGTERM to exit
	// toScrape is from SIGTERM to the end of the next scrape, afterScrape
	// from there to the exit; both -1 when the run exited before any scrape.
	toScrape, afterScrape time.Duration
}

func (tm termination) String() string {
	if tm.toScrape < 0 {
		return fmt.Sprintf("exit %s after SIGTERM, no scrape in between", tm.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("exit %s after SIGTERM = next scrape %s + %s", tm.took.Round(time.Millisecond),
		tm.toScrape.Round(time.Millisecond), tm.afterScrape.Round(time.Millisecond))
}

// terminate sends SIGTERM and checks the promise: exit code 0, at most the
// next scrape plus a little (at once with no scrape in between), always
// within --shutdown.timeout.
func (r *exporterRun) terminate(t testing.TB, shutdown time.Duration) termination {
	t.Helper()
	sent := time.Now()
	exited, took := r.signal(syscall.SIGTERM, shutdown+5*time.Second)
	if !exited {
		t.Fatalf("%s: still running %s after SIGTERM", r.name, took)
	}
	exit := sent.Add(took)
	<-r.target.done
	tm := termination{took: took, toScrape: -1, afterScrape: -1}
	if s, ok := r.target.firstScrapeSentAfter(sent); ok && s.served.Before(exit) {
		tm.toScrape, tm.afterScrape = s.served.Sub(sent), exit.Sub(s.served)
	}
	t.Logf("%s: %s", r.name, tm)
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s: exit code %d after SIGTERM", r.name, code)
	}
	if took >= shutdown {
		t.Errorf("%s: SIGTERM took %s, not below --shutdown.timeout %s", r.name, took, shutdown)
	}
	if tm.afterScrape > exitSlack || (tm.toScrape < 0 && took > exitSlack) {
		t.Errorf("%s: %s; promised: at most the next scrape + %s", r.name, tm, exitSlack)
	}
	return tm
}

// perShard formats a per-shard slice for messages.
func perShard(v []int) string {
	s := ""
	for i, n := range v {
		if i > 0 {
			s += " "
		}
		s += strconv.Itoa(i) + ":" + strconv.Itoa(n)
	}
	return s
}

func TestSIGTERMRestartsLoseAndRecountNothing(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	w := newSeqWriter(t, sdkClient(emu, "cn-hangzhou.log.aliyuncs.com"), "project1", "logstore1")
	cfg := writeFile(t, "exporter.yml", restartConfig(emu, restartGroup, "restarter"))
	sc := newPromScraper(t, restartScrape)
	began := time.Now()
	w.run(110*time.Millisecond, 250, mixedBatch(2)) // ~500 matches in ~28 s

	// Three runs stopped by SIGTERM while logs arrive, the last after
	// scrapes had already acknowledged (and committed) part of its counts.
	for k, scrapesBeforeStop := range []int{0, 1, 1} {
		startLogs, _ := w.checkpoints(t, restartGroup)
		r := startExporterRun(t, sc, fmt.Sprintf("run%d", k+1), cfg)
		resumes(t, r)
		waitFor(t, 15*time.Second, r.name+" counting", func() bool { return r.peek(t, "sls_consumer_logs_total") > 0 })
		if scrapesBeforeStop > 0 {
			r.target.waitScrapes(t, scrapesBeforeStop, 3*restartScrape)
		}
		// Stop it while it holds counts no scrape has seen yet.
		waitFor(t, 15*time.Second, r.name+" to count past its last scrape", func() bool {
			return r.peek(t, "sls_consumer_logs_total") > r.target.total("sls_consumer_logs_total")
		})
		select {
		case <-w.done:
			t.Logf("%s: stopped after the writing ended (%s in)", r.name, time.Since(began).Round(time.Second))
		default:
		}
		r.terminate(t, shutdownTimeout)
		// It committed exactly what its last scrape showed, per shard.
		endLogs, _ := w.checkpoints(t, restartGroup)
		for shard := range endLogs {
			scraped := r.target.total("sls_consumer_logs_total", "shard="+strconv.Itoa(shard))
			if got := endLogs[shard] - startLogs[shard]; float64(got) != scraped {
				t.Errorf("%s shard %d: checkpoint moved over %d logs (%d → %d), its last scrapes showed %v", r.name, shard, got, startLogs[shard], endLogs[shard], scraped)
			}
		}
	}

	final := startExporterRun(t, sc, "run4", cfg)
	resumes(t, final)
	w.wait(t)
	logs, matches := w.totals()
	t.Logf("written: %d logs, %d matches in %s", logs, matches, time.Since(began).Round(time.Second))
	w.committedToEnd(t, restartGroup, 30*time.Second)
	final.target.waitScrapes(t, 1, 3*restartScrape)
	if got := sc.total("sls_keyword_matches_total"); got != float64(matches) {
		t.Errorf("sum of the last scraped sls_keyword_matches_total of every segment = %v, want exactly the %d matches written", got, matches)
	}
	if got := sc.total("sls_consumer_logs_total"); got != float64(logs) {
		t.Errorf("sum of the last scraped sls_consumer_logs_total of every segment = %v, want exactly the %d logs written", got, logs)
	}

	// Nothing unacknowledged is left: the last run exits at once, its
	// checkpoints at the end of every shard.
	tm := final.terminate(t, shutdownTimeout)
	if tm.toScrape >= 0 {
		t.Errorf("with every count acknowledged the exporter waited for a scrape: %s", tm)
	}
	if endLogs, _ := w.checkpoints(t, restartGroup); fmt.Sprint(endLogs) != fmt.Sprint(first(w.written())) {
		t.Errorf("checkpoints after the last stop at %s, want the end of every shard %s", perShard(endLogs), perShard(first(w.written())))
	}
}

func first(a, _ []int) []int { return a }

func TestSIGKILLRestartsOnlyRecount(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	w := newSeqWriter(t, sdkClient(emu, "cn-hangzhou.log.aliyuncs.com"), "project1", "logstore1")
	cfg := writeFile(t, "exporter.yml", restartConfig(emu, restartGroup, "crasher"))
	sc := newPromScraper(t, restartScrape)
	w.run(110*time.Millisecond, 250, mixedBatch(2))

	// Each run is killed some time after a scrape: within the commit
	// interval (the acknowledged counts may not be committed yet) or after.
	shards := len(first(w.written()))
	recountLogs, recountMatches := make([]int, shards), make([]int, shards)
	for k, afterScrape := range []time.Duration{300 * time.Millisecond, 2 * time.Second, 0} {
		startLogs, startMatches := w.checkpoints(t, restartGroup)
		r := startExporterRun(t, sc, fmt.Sprintf("run%d", k+1), cfg)
		resumes(t, r)
		waitFor(t, 15*time.Second, r.name+" counting", func() bool { return r.peek(t, "sls_consumer_logs_total") > 0 })
		r.target.waitScrapes(t, 1, 3*restartScrape)
		time.Sleep(afterScrape)
		killed := time.Now()
		if exited, _ := r.signal(syscall.SIGKILL, 5*time.Second); !exited {
			t.Fatalf("%s: SIGKILL did not stop it", r.name)
		}
		<-r.target.done
		endLogs, endMatches := w.checkpoints(t, restartGroup)
		// A scrape served long enough before the kill has had its counts committed.
		settled := r.target.lastScrapeBefore(killed.Add(-restartCommit - time.Second))
		for shard := range endLogs {
			label := "shard=" + strconv.Itoa(shard)
			scraped := int(r.target.total("sls_consumer_logs_total", label))
			scrapedMatches := int(r.target.total("sls_keyword_matches_total", label))
			// What the last scrape showed beyond the checkpoint is counted again by the next run.
			recount := startLogs[shard] + scraped - endLogs[shard]
			recountM := startMatches[shard] + scrapedMatches - endMatches[shard]
			t.Logf("%s shard %d: killed %s after a scrape; checkpoint %d → %d, last scrape %d logs, recount %d logs (%d matches)",
				r.name, shard, afterScrape, startLogs[shard], endLogs[shard], scraped, recount, recountM)
			if recount < 0 {
				t.Errorf("%s shard %d: checkpoint %d is past what the scrapes showed (%d + %d): %d logs would be lost", r.name, shard, endLogs[shard], startLogs[shard], scraped, -recount)
			}
			if settled >= 0 {
				if acked := startLogs[shard] + int(r.target.totalAt(settled, "sls_consumer_logs_total", label)); endLogs[shard] < acked {
					t.Errorf("%s shard %d: checkpoint %d behind %d, which a scrape acknowledged more than a commit interval before the kill", r.name, shard, endLogs[shard], acked)
				}
			}
			recountLogs[shard] += recount
			recountMatches[shard] += recountM
		}
	}

	final := startExporterRun(t, sc, "run4", cfg)
	resumes(t, final)
	w.wait(t)
	logs, matches := w.totals()
	w.committedToEnd(t, restartGroup, 30*time.Second)
	final.target.waitScrapes(t, 1, 3*restartScrape)
	gotLogs, gotMatches := sc.total("sls_consumer_logs_total"), sc.total("sls_keyword_matches_total")
	extraLogs, extraMatches := 0, 0
	for shard := range recountLogs {
		extraLogs += recountLogs[shard]
		extraMatches += recountMatches[shard]
	}
	t.Logf("written %d logs, %d matches; scraped segment sums %v logs, %v matches: recounted %v logs, %v matches (%s, %s per shard)",
		logs, matches, gotLogs, gotMatches, gotLogs-float64(logs), gotMatches-float64(matches), perShard(recountLogs), perShard(recountMatches))
	if gotMatches < float64(matches) || gotLogs < float64(logs) {
		t.Errorf("after crashes the scrapes show %v matches and %v logs, fewer than the %d and %d written", gotMatches, gotLogs, matches, logs)
	}
	// Every count beyond the writes is one the checkpoints account for.
	if gotLogs != float64(logs+extraLogs) || gotMatches != float64(matches+extraMatches) {
		t.Errorf("scraped %v logs and %v matches; the writes plus the recounts the checkpoints explain are %d and %d", gotLogs, gotMatches, logs+extraLogs, matches+extraMatches)
	}
}

// TestReloadRestartingATargetLosesNothing reloads a configuration whose
// change restarts every target (commit_interval) while logs arrive: the old
// member waits for a scrape of its last counts, commits and hands over to its
// replacement in the same process; right after the reload a burst of logs
// arrives, so the replacement's counters outgrow the old ones before the next
// scrape. Prometheus must still be able to add up everything.
func TestReloadRestartingATargetLosesNothing(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	w := newSeqWriter(t, sdkClient(emu, "cn-hangzhou.log.aliyuncs.com"), "project1", "logstore1")
	config := func(commit string) string {
		return logstore1Config(emu, "consumer_group: reload-cg\nconsumer_name: reloader\ncursor_start: begin\ncommit_interval: "+commit+"\n", http5xxRule)
	}
	cfg := writeFile(t, "exporter.yml", config("1s"))
	sc := newPromScraper(t, shareScrape)
	w.run(100*time.Millisecond, 150, mixedBatch(2))

	r := startExporterRun(t, sc, "reloader", cfg)
	waitFor(t, 15*time.Second, "scraped counts, and counts past the last scrape", func() bool {
		scraped := r.target.total("sls_consumer_logs_total")
		return scraped >= 60 && r.peek(t, "sls_consumer_logs_total") > scraped
	})
	if err := os.WriteFile(cfg, []byte(config("2s")), 0o600); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	took := postReload(t, r.base)
	// The scraper records a scrape once it has parsed the page, which can
	// be just after the reload it released has answered.
	var s scrapeTimes
	waitFor(t, 3*shareScrape, "the scrape after the reload began", func() bool {
		var ok bool
		s, ok = r.target.firstScrapeSentAfter(sent)
		return ok
	})
	if done := sent.Add(took); s.sent.Before(done) {
		t.Logf("reload took %s; the next scrape was served %s after the reload began", took.Round(time.Millisecond), s.served.Sub(sent).Round(time.Millisecond))
		if after := done.Sub(s.served); after > exitSlack {
			t.Errorf("the reload took %s after the scrape that acknowledged the old counts", after)
		}
	} else {
		t.Errorf("the reload took %s without waiting for a scrape of the counts it held (the next was sent %s after it began)", took, s.sent.Sub(sent))
	}
	before := r.target.total("sls_consumer_logs_total")
	for shard := range 2 {
		for range 3 {
			if err := w.write(shard, repeat("500", 50)...); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.wait(t)
	logs, matches := w.totals()
	w.committedToEnd(t, "reload-cg", 30*time.Second)
	r.target.waitScrapes(t, 1, 3*shareScrape)
	segs, resets, _ := r.target.segments("sls_consumer_logs_total")
	t.Logf("written %d logs, %d matches; %v logs scraped before the burst; segments of sls_consumer_logs_total: %d (%d seen as resets)", logs, matches, before, segs, resets)
	if got := sc.total("sls_keyword_matches_total"); got != float64(matches) {
		t.Errorf("sum of the last scraped sls_keyword_matches_total of every segment = %v, want exactly the %d matches written", got, matches)
	}
	if got := sc.total("sls_consumer_logs_total"); got != float64(logs) {
		t.Errorf("sum of the last scraped sls_consumer_logs_total of every segment = %v, want exactly the %d logs written", got, logs)
	}
}

// TestSIGTERMWithoutScrapesStopsAtTheShutdownTimeout stops an exporter that
// nothing scrapes: it waits for a scrape until --shutdown.timeout, exits 0,
// and commits nothing no scrape acknowledged (the next owner recounts it).
func TestSIGTERMWithoutScrapesStopsAtTheShutdownTimeout(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	w := newSeqWriter(t, sdkClient(emu, "cn-hangzhou.log.aliyuncs.com"), "project1", "logstore1")
	for shard := range 2 {
		if err := w.write(shard, "500", "200", "503"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := writeFile(t, "exporter.yml", restartConfig(emu, "unscraped-cg", "unscraped"))
	addr := freeAddr(t)
	p := start(t, nil, "sls_keyword_exporter", "--config.file="+cfg, "--web.listen-address="+addr, "--log.level=debug", "--shutdown.timeout=3s")
	r := &exporterRun{proc: p, name: "unscraped", base: "http://" + addr}
	waitHTTP(t, r.base+"/-/ready", 15*time.Second)
	waitFor(t, 15*time.Second, "every log counted", func() bool { return r.peek(t, "sls_consumer_logs_total") == 6 })
	time.Sleep(2 * restartCommit) // commits would have had their chance
	exited, took := r.signal(syscall.SIGTERM, 10*time.Second)
	t.Logf("SIGTERM with unscraped counts and no scraper: exit after %s", took.Round(time.Millisecond))
	if !exited || took >= 3*time.Second || took < 2*time.Second {
		t.Errorf("exited %v after %s; want it to wait for a scrape almost all of --shutdown.timeout=3s", exited, took)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if cp, _ := w.checkpoints(t, "unscraped-cg"); cp[0] != 0 || cp[1] != 0 {
		t.Errorf("checkpoints at %s though no scrape acknowledged any count; want the beginning", perShard(cp))
	}
}
