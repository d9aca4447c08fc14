// Helpers of the fault and lifecycle tests: an exporter with its own stop timeout and stoppable scraper, exact per-shard bookkeeping, fault sets, goroutine accounting.
package consumer_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/testkit"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// target is one logstore of the seed topology.
type target struct{ region, endpoint, project, logstore string }

func seedTarget(logstore string) target {
	for _, s := range seedTopology {
		if s.logstore == logstore {
			return target{s.region, s.endpoint, s.project, s.logstore}
		}
	}
	panic("no seed logstore " + logstore)
}

// key is the target's labels as the harness's series keys spell them.
func (tg target) key() string {
	return fmt.Sprintf("logstore=%s,project=%s,region=%s", tg.logstore, tg.project, tg.region)
}

func (tg target) shardKey(shard int) string {
	return fmt.Sprintf("logstore=%s,project=%s,region=%s,shard=%d", tg.logstore, tg.project, tg.region, shard)
}

// rigConfigYAML is the seed configuration with some settings replaced, e.g.
// "consumer_timeout: 3s" -> "consumer_timeout: 10s".
func rigConfigYAML(t testing.TB, proxyURL string, replace ...string) string {
	t.Helper()
	text := seedConfigYAML(proxyURL, threeRules)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(text, replace[i]) {
			t.Fatalf("the seed config has no %q", replace[i])
		}
		text = strings.Replace(text, replace[i], replace[i+1], 1)
	}
	return text
}

// startRigEmulator is startEmulator with the emulator's request log kept
// and shown (heartbeats and failures) when the test fails, next to how long
// the test process was starved of CPU (the machine is shared).
func startRigEmulator(t testing.TB, world *slsemu.World) *slsemu.Server {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	srv, err := slsemu.NewServer(world, slsemu.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	stalls := startStallMonitor()
	t.Cleanup(func() {
		stalls.stop()
		srv.Close()
		if t.Failed() {
			var lines []string
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "route=HeartBeat") || (strings.Contains(line, "msg=request") && !strings.Contains(line, "status=200")) {
					lines = append(lines, line)
				}
			}
			t.Logf("emulator: heartbeats and failed requests:\n%s", tail(strings.Join(lines, "\n"), 80))
			t.Logf("scheduling stalls of the test process over 250 ms: %s", stalls.report())
		}
	})
	return srv
}

// stallMonitor measures how late a 50 ms sleep wakes up: on a starved
// machine, timing bounds can be missed for reasons outside the engine.
type stallMonitor struct {
	mu     sync.Mutex
	stalls []string
	worst  time.Duration
	quit   chan struct{}
	done   chan struct{}
}

func startStallMonitor() *stallMonitor {
	s := &stallMonitor{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			before := time.Now()
			select {
			case <-s.quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
			late := time.Since(before) - 50*time.Millisecond
			s.mu.Lock()
			s.worst = max(s.worst, late)
			if late > 250*time.Millisecond {
				s.stalls = append(s.stalls, fmt.Sprintf("%s +%v", before.UTC().Format("15:04:05.000"), late.Round(time.Millisecond)))
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *stallMonitor) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

func (s *stallMonitor) report() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("worst %v; %d stalls %v", s.worst.Round(time.Millisecond), len(s.stalls), s.stalls)
}

// rigExporter is the harness's exporter with a stop timeout of the test's
// choosing and a scraper the test can stop (goroutine accounting).
type rigExporter struct {
	*exporter
	stopTimeout time.Duration
	stopScraper func()
}

func startRigExporter(t testing.TB, cfg *config.Config, stopTimeout time.Duration) *rigExporter {
	t.Helper()
	e := &exporter{reg: prometheus.NewRegistry(), logs: &testkit.SyncBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.metrics = collector.New(e.reg)
	e.manager = consumer.NewManager(logger, e.metrics, stopTimeout)
	e.metrics.SetStateSource(e.manager)
	e.handler = e.metrics.Acks.Handler(e.metrics.Handler(e.reg, promhttp.HandlerOpts{}))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				e.scrape()
			}
		}
	}()
	var once sync.Once
	r := &rigExporter{exporter: e, stopTimeout: stopTimeout, stopScraper: func() { once.Do(func() { close(stop); <-done }) }}
	t.Cleanup(r.stopScraper)
	if err := e.manager.Apply(cfg, consumer.SettingsFrom(cfg, "unused")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.manager.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s", tail(e.logs.String(), 120))
		}
	})
	return r
}

// stop stops the manager and reports how long that took.
func (r *rigExporter) stop() time.Duration {
	start := time.Now()
	r.manager.Stop()
	return time.Since(start)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… %d earlier lines", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// rigWriter writes through the real SDK with shard hash keys listed once,
// so that faults on every route but PutLogs leave it working; its
// connections can be closed for goroutine accounting.
type rigWriter struct {
	t      testing.TB
	http   *http.Client
	client sls.ClientInterface
	keys   map[string][]string // logstore -> begin key per shard
}

func newRigWriter(t testing.TB, srv *slsemu.Server, tg target) *rigWriter {
	t.Helper()
	hc := srv.HTTPClient()
	c := sls.CreateNormalInterface(tg.endpoint, testAK, testSecret, "")
	c.SetHTTPClient(hc)
	w := &rigWriter{t: t, http: hc, client: c, keys: map[string][]string{}}
	t.Cleanup(hc.CloseIdleConnections)
	return w
}

// shardKeys lists a logstore's shard hash keys once.
func (w *rigWriter) shardKeys(project, logstore string) []string {
	w.t.Helper()
	keys := w.keys[logstore]
	if keys == nil {
		shards, err := w.client.ListShards(project, logstore)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, s := range shards {
			keys = append(keys, s.InclusiveBeginKey)
		}
		w.keys[logstore] = keys
	}
	return keys
}

func (w *rigWriter) put(project, logstore string, shard int, logs ...*sls.Log) {
	w.t.Helper()
	key := w.shardKeys(project, logstore)[shard]
	if err := w.client.PostLogStoreLogs(project, logstore, &sls.LogGroup{Logs: logs}, &key); err != nil {
		w.t.Fatal(err)
	}
}

// ledger knows exactly how many matching logs each shard of one logstore
// received, and checks that the exporter counted exactly those.
type ledger struct {
	t    testing.TB
	e    *exporter
	w    *rigWriter
	tg   target
	want [2]int // http_5xx matches per shard
	logs [2]int // logs per shard
	seq  int
}

func newLedger(t testing.TB, e *exporter, w *rigWriter, tg target) *ledger {
	return &ledger{t: t, e: e, w: w, tg: tg}
}

// write puts n matching logs (status 500) and one non-matching log into
// every shard, one log group per shard.
func (l *ledger) write(n int) {
	l.t.Helper()
	for shard := range 2 {
		var logs []*sls.Log
		for range n {
			l.seq++
			logs = append(logs, newLog(time.Now(), "status", "500", "path", fmt.Sprintf("/fault/%d", l.seq)))
		}
		logs = append(logs, newLog(time.Now(), "status", "200", "path", "/ok"))
		l.w.put(l.tg.project, l.tg.logstore, shard, logs...)
		l.want[shard] += n
		l.logs[shard] += n + 1
	}
}

// gatherAll returns every family's samples as name -> "label=value,..." -> value, from one Gather.
func (e *exporter) gatherAll(t testing.TB) map[string]map[string]float64 {
	t.Helper()
	families, err := e.metrics.Gatherer(e.reg).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, f := range families {
		samples := map[string]float64{}
		for _, m := range f.Metric {
			samples[labelKey(m)] = metricValue(m)
		}
		out[f.GetName()] = samples
	}
	return out
}

// countedAll returns the exporter's http_5xx matches and logs per shard, from one Gather.
func (l *ledger) countedAll() (matches, logs [2]float64) {
	all := l.e.gatherAll(l.t)
	for shard := range 2 {
		sel := []string{"logstore", l.tg.logstore, "project", l.tg.project, "shard", fmt.Sprint(shard)}
		for key, v := range all["sls_keyword_matches_total"] {
			if hasLabels(key, append(sel, "rule", "http_5xx")) {
				matches[shard] += v
			}
		}
		for key, v := range all["sls_consumer_logs_total"] {
			if hasLabels(key, sel) {
				logs[shard] += v
			}
		}
	}
	return matches, logs
}

// counted returns the exporter's http_5xx matches and logs of a shard.
func (l *ledger) counted(shard int) (matches, logs float64) {
	m, n := l.countedAll()
	return m[shard], n[shard]
}

// exact reports whether every shard's counts are exactly the ledger's, and
// fails the test at once when one exceeds it (a recount).
func (l *ledger) exact() bool {
	l.t.Helper()
	ok := true
	m, n := l.countedAll()
	for shard := range 2 {
		if m[shard] > float64(l.want[shard]) || n[shard] > float64(l.logs[shard]) {
			l.t.Fatalf("%s shard %d counted %v matches and %v logs, more than the %d and %d written: a batch was counted twice",
				l.tg.logstore, shard, m[shard], n[shard], l.want[shard], l.logs[shard])
		}
		ok = ok && m[shard] == float64(l.want[shard]) && n[shard] == float64(l.logs[shard])
	}
	return ok
}

// waitExact waits until every shard has counted exactly what was written
// and returns how long that took (until the Gather that saw it began).
func (l *ledger) waitExact(timeout time.Duration, what string) time.Duration {
	l.t.Helper()
	start := time.Now()
	for {
		probe := time.Now()
		if l.exact() {
			return probe.Sub(start)
		}
		if probe.Sub(start) > timeout {
			m, n := l.countedAll()
			var got []string
			for shard := range 2 {
				got = append(got, fmt.Sprintf("shard %d: %v/%d matches, %v/%d logs", shard, m[shard], l.want[shard], n[shard], l.logs[shard]))
			}
			l.t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, strings.Join(got, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// up returns sls_up of a target (-1 when absent).
func (e *exporter) up(t testing.TB, tg target) float64 {
	v, ok := e.series(t, "sls_up")[tg.key()]
	if !ok {
		return -1
	}
	return v
}

// lastPull returns sls_consumer_last_pull_timestamp_seconds of one shard (0 when absent).
func (e *exporter) lastPull(t testing.TB, tg target, shard int) float64 {
	return e.series(t, "sls_consumer_last_pull_timestamp_seconds")[tg.shardKey(shard)]
}

// errorCodes returns a target's sls_consumer_errors_total as "operation/code" -> count.
func (e *exporter) errorCodes(t testing.TB, tg target) map[string]float64 {
	out := map[string]float64{}
	for key, v := range e.series(t, "sls_consumer_errors_total") {
		if !hasLabels(key, []string{"logstore", tg.logstore, "project", tg.project}) {
			continue
		}
		var op, code string
		for _, p := range strings.Split(key, ",") {
			if s, ok := strings.CutPrefix(p, "operation="); ok {
				op = s
			}
			if s, ok := strings.CutPrefix(p, "code="); ok {
				code = s
			}
		}
		out[op+"/"+code] += v
	}
	return out
}

// checkErrorCodes fails unless the target's error series are exactly the
// allowed operation/code pairs, each with at least one error where required.
func checkErrorCodes(t testing.TB, got map[string]float64, required []string, allowed ...string) {
	t.Helper()
	ok := map[string]bool{}
	for _, k := range append(required, allowed...) {
		ok[k] = true
	}
	for k, v := range got {
		if !ok[k] {
			t.Errorf("unexpected error series %s = %v (all: %v)", k, v, got)
		}
	}
	for _, k := range required {
		if got[k] < 1 {
			t.Errorf("no error counted as %s (all: %v)", k, got)
		}
	}
}

// consumerRoutes are every route the engine calls. PutLogs (the test's
// writer) and ListShards (the writer lists shards once, before faults) are
// left out of "every call" faults unless asked for.
var consumerRoutes = []string{
	"ListShards", "GetCursor", "GetCursorTime", "PullLogs", "ListConsumerGroup", "CreateConsumerGroup",
	"UpdateConsumerGroup", "HeartBeat", "UpdateCheckpoint", "GetCheckpoint",
}

// injectFaults injects f once per route (all consumer routes when none are
// given) and returns a function removing them all.
func injectFaults(t testing.TB, srv *slsemu.Server, f slsemu.Fault, routes ...string) (remove func()) {
	t.Helper()
	if len(routes) == 0 {
		routes = consumerRoutes
	}
	var ids []string
	for _, r := range routes {
		f.Route = r
		id, err := srv.InjectFault(f)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var once sync.Once
	remove = func() {
		once.Do(func() {
			for _, id := range ids {
				srv.RemoveFault(id)
			}
		})
	}
	t.Cleanup(remove)
	return remove
}

// faultHits sums the hits of the active faults on a route.
func faultHits(srv *slsemu.Server, route string) int {
	n := 0
	for _, f := range srv.Faults() {
		if f.Route == route {
			n += f.Hits
		}
	}
	return n
}

// goroutineSnapshot is the goroutines of the process by id, to tell what a
// leak is. The emulator's own goroutines (its listener and the server side
// of every connection, which may wait out an injected latency after the
// client has gone) are counted apart.
type goroutineSnapshot struct {
	n        int               // runtime.NumGoroutine less the emulator's
	emulator int               // the emulator's
	byID     map[string]string // goroutine id -> stack signature, the emulator's left out
}

func takeGoroutines() goroutineSnapshot {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	snap := goroutineSnapshot{byID: map[string]string{}}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.TrimSpace(g) == "" {
			continue
		}
		sig := stackSignature(g)
		if emulatorGoroutine(sig) {
			snap.emulator++
			continue
		}
		snap.n++
		id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
		snap.byID[id] = sig
	}
	return snap
}

func emulatorGoroutine(sig string) bool {
	for _, s := range []string{"net/http.(*conn).serve", "net/http.(*connReader).backgroundRead", "net/http.(*Server).Serve", "/pkg/slsemu."} {
		if strings.Contains(sig, s) {
			return true
		}
	}
	return false
}

// stackSignature keeps a goroutine's function names (no arguments,
// addresses or goroutine ids).
func stackSignature(g string) string {
	var funcs []string
	for i, line := range strings.Split(g, "\n") {
		if i == 0 || strings.HasPrefix(line, "\t") || line == "" {
			continue
		}
		if j := strings.LastIndex(line, "("); j > 0 && !strings.HasPrefix(line, "created by") {
			line = line[:j]
		}
		if j := strings.Index(line, " in goroutine"); j > 0 {
			line = line[:j]
		}
		funcs = append(funcs, line)
	}
	return strings.Join(funcs, " <- ")
}

// newSince lists, grouped by stack, the goroutines of s that did not exist in base.
func (s goroutineSnapshot) newSince(base goroutineSnapshot) []string {
	count := map[string]int{}
	for id, sig := range s.byID {
		if _, old := base.byID[id]; !old {
			count[sig]++
		}
	}
	var out []string
	for sig, n := range count {
		out = append(out, fmt.Sprintf("%d × %s", n, sig))
	}
	sort.Strings(out)
	return out
}

// countFramePrefix is how many goroutines run a frame whose name (after
// the last "/") starts with prefix, e.g. "consumer.(*member)."; "created
// by" lines do not count.
func (s goroutineSnapshot) countFramePrefix(prefix string) int {
	n := 0
	for _, sig := range s.byID {
		for _, frame := range strings.Split(sig, " <- ") {
			if !strings.HasPrefix(frame, "created by ") && strings.HasPrefix(frame[strings.LastIndex(frame, "/")+1:], prefix) {
				n++
				break
			}
		}
	}
	return n
}

// settleGoroutines waits up to 2 s until no goroutine started since base is
// left (tolerance 0; the emulator's and those that existed at base, which may
// end meanwhile, aside) and returns the last snapshot and what is left.
func settleGoroutines(t testing.TB, base goroutineSnapshot, closeIdle ...func()) (goroutineSnapshot, []string, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		for _, c := range closeIdle {
			c()
		}
		now := takeGoroutines()
		left := now.newSince(base)
		// The goroutine taking the snapshot existed at base.
		if len(left) == 0 || time.Since(start) > 2*time.Second {
			return now, left, time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
