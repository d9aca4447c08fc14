// Shards shared in one consumer group, handed over while logs arrive: two exporter replicas, and an exporter beside an SDK consumer-library worker.
package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	consumerLibrary "github.com/aliyun/aliyun-log-go-sdk/consumer"
	"github.com/go-kit/log"
)

const shareScrape = 2 * time.Second // the scrapers' interval in these tests

// emuGroupState is what the emulator's admin API tells of one consumer group.
type emuGroupState struct {
	Name      string            `json:"name"`
	Owner     map[string]string `json:"owner"`       // shard ID → consumer
	Transfer  map[string]string `json:"transfer_to"` // shard ID → next consumer
	Consumers map[string]struct {
		Reported []int `json:"reported"`
		Acked    []int `json:"acked"`
	} `json:"consumers"`
}

// emuLogstoreState is one logstore of GET /_slsemu/state.
type emuLogstoreState struct {
	Project        string          `json:"project"`
	Logstore       string          `json:"logstore"`
	ConsumerGroups []emuGroupState `json:"consumer_groups"`
	Violations     []string        `json:"violations"`
}

// emulatorState reads every logstore's state from GET /_slsemu/state.
func emulatorState(t testing.TB, emu string) []emuLogstoreState {
	t.Helper()
	resp, err := http.Get(emu + "/_slsemu/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var state []emuLogstoreState
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
		t.Fatal("decoding /_slsemu/state:", err)
	}
	return state
}

// emulatorGroup reads a consumer group's assignment and the logstore's hold
// violations (moments a shard was held by two consumers) from GET /_slsemu/state.
func emulatorGroup(t testing.TB, emu, project, logstore, group string) (emuGroupState, []string) {
	t.Helper()
	for _, ls := range emulatorState(t, emu) {
		if ls.Project != project || ls.Logstore != logstore {
			continue
		}
		for _, g := range ls.ConsumerGroups {
			if g.Name == group {
				return g, ls.Violations
			}
		}
		return emuGroupState{}, ls.Violations
	}
	t.Fatalf("the emulator has no logstore %s/%s", project, logstore)
	return emuGroupState{}, nil
}

// granted lists the shards the server grants consumer (owned, not being handed over).
func (g emuGroupState) granted(consumer string) []int {
	var out []int
	for id, owner := range g.Owner {
		if owner == consumer && g.Transfer[id] == "" {
			n, _ := strconv.Atoi(id)
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

func TestRebalanceToASecondReplicaAndBackLosesNothing(t *testing.T) {
	const group = "share-cg"
	emu := startEmulator(t, seedWorldYAML)
	w := newSeqWriter(t, sdkClient(emu, "cn-hangzhou.log.aliyuncs.com"), "project1", "logstore1")
	sc := newPromScraper(t, shareScrape)
	began := time.Now()
	w.run(100*time.Millisecond, 220, mixedBatch(2))

	a := startExporterRun(t, sc, "replica-a", writeFile(t, "a.yml", restartConfig(emu, group, "replica-a")))
	waitFor(t, 15*time.Second, "A to hold both shards and count", func() bool {
		return a.peek(t, "sls_consumer_shards_held") == 2 && a.peek(t, "sls_consumer_logs_total") > 0
	})

	joined := time.Now()
	b := startExporterRun(t, sc, "replica-b", writeFile(t, "b.yml", restartConfig(emu, group, "replica-b")))
	waitFor(t, 20*time.Second, "the shards to split 1/1", func() bool {
		return a.peek(t, "sls_consumer_shards_held") == 1 && b.peek(t, "sls_consumer_shards_held") == 1
	})
	t.Logf("A → B: B holds a shard %s after it started", time.Since(joined).Round(time.Millisecond))
	state, _ := emulatorGroup(t, emu, "project1", "logstore1", group)
	heldA, heldB := state.granted("replica-a"), state.granted("replica-b")
	if len(heldA) != 1 || len(heldB) != 1 || heldA[0] == heldB[0] {
		t.Fatalf("the server grants A %v and B %v, want one shard each", heldA, heldB)
	}
	moved := strconv.Itoa(heldB[0])
	// A's series of the shard it gave away go once a scrape has served their last values.
	waitFor(t, 3*shareScrape, "A's series of shard "+moved+" to be deleted", func() bool {
		m, _ := scrape(t, a.base+"/metrics")
		for _, name := range []string{"sls_keyword_matches_total", "sls_consumer_logs_total", "sls_consumer_bytes_total"} {
			if _, ok := m[name]; !ok {
				return false // A still holds a shard: its series are there
			}
			for _, s := range m[name].Metric {
				for _, l := range s.Label {
					if l.GetName() == "shard" && l.GetValue() == moved {
						return false
					}
				}
			}
		}
		return true
	})
	waitFor(t, 15*time.Second, "B to count shard "+moved, func() bool { return b.peek(t, "sls_consumer_logs_total") > 0 })
	b.target.waitScrapes(t, 2, 3*shareScrape)

	// Stop B while it holds counts no scrape has seen: A gets the shard back
	// once the group's timeout (3 s) has expired B.
	waitFor(t, 15*time.Second, "B to count past its last scrape", func() bool {
		return b.peek(t, "sls_consumer_logs_total") > b.target.total("sls_consumer_logs_total")
	})
	select {
	case <-w.done:
		t.Log("B stopped after the writing ended")
	default:
	}
	b.terminate(t, shutdownTimeout)
	stopped := time.Now()
	waitFor(t, 20*time.Second, "A to take shard "+moved+" back", func() bool { return a.peek(t, "sls_consumer_shards_held") == 2 })
	t.Logf("B → A: A holds both shards %s after B exited", time.Since(stopped).Round(time.Millisecond))

	w.wait(t)
	logs, matches := w.totals()
	w.committedToEnd(t, group, 30*time.Second)
	a.target.waitScrapes(t, 1, 3*shareScrape)
	t.Logf("written %d logs, %d matches in %s; A counted %v, B %v logs", logs, matches, time.Since(began).Round(time.Second),
		a.target.total("sls_consumer_logs_total"), b.target.total("sls_consumer_logs_total"))
	if got := sc.total("sls_keyword_matches_total"); got != float64(matches) {
		t.Errorf("sum over both replicas of the last scraped sls_keyword_matches_total of every segment = %v, want exactly the %d matches written", got, matches)
	}
	if got := sc.total("sls_consumer_logs_total"); got != float64(logs) {
		t.Errorf("sum over both replicas of the last scraped sls_consumer_logs_total of every segment = %v, want exactly the %d logs written", got, logs)
	}
	// A's counter of the returned shard left the page while B held it and
	// came back at its old value: one segment with a gap, no reset.
	if segs, resets, gaps := a.target.segments("sls_consumer_logs_total", "shard="+moved); segs != 1 || resets != 0 || gaps < 1 {
		t.Errorf("A's sls_consumer_logs_total of shard %s: %d segments, %d resets, %d gaps; want 1, 0 and at least 1 (off the page while B held it)", moved, segs, resets, gaps)
	}
	if _, violations := emulatorGroup(t, emu, "project1", "logstore1", group); len(violations) > 0 {
		t.Errorf("a shard was held twice: %v", violations)
	}
}

// mixedWorldYAML has one 4-shard logstore for an exporter and an SDK worker to share.
const mixedWorldYAML = `access_keys:
  - id: ` + testAK + `
    secret: ` + testSecret + `
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    projects:
      - name: mixed
        logstores: [{name: four, shards: 4}]
`

// mixedConfig reads mixed/four from its beginning as consumerName of group.
func mixedConfig(emu, group, consumerName string) string {
	return fmt.Sprintf(`consumer_group: %s
consumer_name: %s
cursor_start: begin
commit_interval: 1s
heartbeat_interval: 1s
consumer_timeout: 3s
credentials:
  access_key_id: %s
  access_key_secret: %s
regions:
  - endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects:
      - name: mixed
        logstores: [four]
rules:
%s`, group, consumerName, testAK, testSecret, emu, http5xxRule)
}

// sdkDelivery is one log an SDK worker was given.
type sdkDelivery struct {
	shard, seq int
	at         time.Time
}

// sdkDeliveries records what an SDK consumer-library worker was given.
type sdkDeliveries struct {
	mu  sync.Mutex
	all []sdkDelivery
	ids map[string]int // deliveries per id
}

func (d *sdkDeliveries) Process(shard int, lgl *sls.LogGroupList, tracker consumerLibrary.CheckPointTracker) (string, error) {
	now := time.Now()
	d.mu.Lock()
	for _, lg := range lgl.LogGroups {
		for _, l := range lg.Logs {
			seq, _ := strconv.Atoi(contentOf(l, "seq"))
			d.all = append(d.all, sdkDelivery{shard: shard, seq: seq, at: now})
			d.ids[contentOf(l, "id")]++
		}
	}
	d.mu.Unlock()
	return "", tracker.SaveCheckPoint(false)
}

func (d *sdkDeliveries) Shutdown(consumerLibrary.CheckPointTracker) error { return nil }

// seqs lists, per shard, the seqs delivered (in order), and the ids delivered more than once.
func (d *sdkDeliveries) seqs(shards int) (perShard [][]int, duplicates []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	perShard = make([][]int, shards)
	for _, x := range d.all {
		perShard[x.shard] = append(perShard[x.shard], x.seq)
	}
	for id, n := range d.ids {
		if n > 1 {
			duplicates = append(duplicates, fmt.Sprintf("%s×%d", id, n))
		}
	}
	sort.Strings(duplicates)
	return perShard, duplicates
}

// shardsBefore lists the shards anything was delivered from before at.
func (d *sdkDeliveries) shardsBefore(at time.Time) []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []int
	for _, x := range d.all {
		if x.at.Before(at) && !slices.Contains(out, x.shard) {
			out = append(out, x.shard)
		}
	}
	sort.Ints(out)
	return out
}

// startSDKWorker runs a consumer-library worker in the test process, through
// the emulator as HTTP proxy, recording every log into d.
func startSDKWorker(t testing.TB, emu, project, logstore, group, name string, d *sdkDeliveries) (stop func()) {
	t.Helper()
	proxy, err := url.Parse(emu)
	if err != nil {
		t.Fatal(err)
	}
	worker := consumerLibrary.InitConsumerWorkerWithProcessor(consumerLibrary.LogHubConfig{
		Endpoint:                  "cn-hangzhou.log.aliyuncs.com",
		AccessKeyID:               testAK,
		AccessKeySecret:           testSecret,
		Project:                   project,
		Logstore:                  logstore,
		ConsumerGroupName:         group,
		ConsumerName:              name,
		CursorPosition:            consumerLibrary.BEGIN_CURSOR,
		HeartbeatIntervalInSecond: 1,
		HeartbeatTimeoutInSecond:  3,
		DataFetchIntervalInMs:     100,
		AutoCommitIntervalInMS:    1000,
		HTTPClient:                &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}},
		Logger:                    log.NewNopLogger(),
		DisableRuntimeMetrics:     true,
	}, d)
	if err := setSDKWorkerTimeouts(worker, 10*time.Second, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	worker.Start()
	var once sync.Once
	stop = func() { once.Do(worker.StopAndWait) }
	t.Cleanup(stop)
	return stop
}

// setSDKWorkerTimeouts sets the request and retry timeouts of the *sls.Client
// inside a consumer-library worker (v0.1.124) before it starts: left zero, the
// client writes them under a read lock on its first pulls, which run
// concurrently, and the race detector reports it.
func setSDKWorkerTimeouts(w *consumerLibrary.ConsumerWorker, request, retry time.Duration) error {
	consumerClient := reflect.ValueOf(w).Elem().FieldByName("client")
	if !consumerClient.IsValid() || consumerClient.Kind() != reflect.Pointer || consumerClient.IsNil() {
		return errors.New("consumer library: no ConsumerWorker.client")
	}
	inner := consumerClient.Elem().FieldByName("client")
	if !inner.IsValid() || !inner.CanAddr() {
		return errors.New("consumer library: no ConsumerClient.client")
	}
	c, ok := reflect.NewAt(inner.Type(), unsafe.Pointer(inner.UnsafeAddr())).Elem().Interface().(*sls.Client)
	if !ok || c == nil {
		return errors.New("consumer library: ConsumerClient.client is not an *sls.Client")
	}
	c.RequestTimeOut, c.RetryTimeOut = request, retry
	return nil
}

func TestExporterAndSDKWorkerShareAGroupAndHandOverExactly(t *testing.T) {
	const group = "mixed-cg"
	emu := startEmulator(t, mixedWorldYAML)
	w := newSeqWriter(t, sdkClient(emu, "cn-hangzhou.log.aliyuncs.com"), "mixed", "four")
	sc := newPromScraper(t, shareScrape)
	cfg := writeFile(t, "exporter.yml", mixedConfig(emu, group, "exporter"))
	w.run(60*time.Millisecond, 300, mixedBatch(4))

	// The exporter alone takes every shard; the SDK worker joins and is handed two.
	e := startExporterRun(t, sc, "exporter", cfg)
	waitFor(t, 15*time.Second, "the exporter to hold 4 shards and count", func() bool {
		return e.peek(t, "sls_consumer_shards_held") == 4 && e.peek(t, "sls_consumer_logs_total") > 0
	})
	got := &sdkDeliveries{ids: map[string]int{}}
	joined := time.Now()
	stopWorker := startSDKWorker(t, emu, "mixed", "four", group, "sdk-worker", got)
	var heldE, heldW []int
	waitFor(t, 20*time.Second, "the shards to split 2/2", func() bool {
		state, _ := emulatorGroup(t, emu, "mixed", "four", group)
		heldE, heldW = state.granted("exporter"), state.granted("sdk-worker")
		return len(heldE) == 2 && len(heldW) == 2 && e.peek(t, "sls_consumer_shards_held") == 2
	})
	waitFor(t, 10*time.Second, "the SDK worker to get logs from its shards", func() bool {
		return slices.Equal(got.shardsBefore(time.Now()), heldW)
	})
	t.Logf("exporter → SDK worker: shards %v moved within %s; the exporter keeps %v", heldW, time.Since(joined).Round(time.Millisecond), heldE)
	e.target.waitScrapes(t, 1, 3*shareScrape)

	// Stop the exporter while it holds counts no scrape has seen.
	waitFor(t, 15*time.Second, "the exporter to count past its last scrape", func() bool {
		return e.peek(t, "sls_consumer_logs_total") > e.target.total("sls_consumer_logs_total")
	})
	e.terminate(t, shutdownTimeout)
	exited := time.Now()
	if overlap := intersect(got.shardsBefore(exited), heldE); len(overlap) > 0 {
		t.Errorf("the SDK worker got logs of shards %v while the exporter held them", overlap)
	}
	cpLogs, _ := w.checkpoints(t, group)
	waitFor(t, 20*time.Second, "the SDK worker to take the exporter's shards", func() bool {
		state, _ := emulatorGroup(t, emu, "mixed", "four", group)
		return len(state.granted("sdk-worker")) == 4
	})
	t.Logf("exporter → SDK worker: all 4 shards %s after the exporter exited (group timeout 3s)", time.Since(exited).Round(time.Millisecond))

	w.wait(t)
	logs, matches := w.written()
	countedLogs, countedMatches := make([]int, len(logs)), make([]int, len(logs))
	for shard := range logs {
		label := "shard=" + strconv.Itoa(shard)
		countedLogs[shard] = int(e.target.total("sls_consumer_logs_total", label))
		countedMatches[shard] = int(e.target.total("sls_keyword_matches_total", label))
	}
	// Wait for the SDK worker to get the rest of every shard (or time out,
	// and let the checks below say what is missing).
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		seqs, _ := got.seqs(len(logs))
		rest := 0
		for shard := range logs {
			rest += max(logs[shard]-countedLogs[shard]-len(seqs[shard]), 0)
		}
		if rest == 0 {
			break
		}
	}
	time.Sleep(time.Second) // a duplicate would arrive with the next pulls
	seqs, duplicates := got.seqs(len(logs))
	if len(duplicates) > 0 {
		t.Errorf("the SDK worker got %d logs more than once: %v", len(duplicates), duplicates[:min(len(duplicates), 20)])
	}
	for shard := range logs {
		t.Logf("shard %d: written %d logs (%d matches); exporter counted %d (%d matches), SDK worker got %d; checkpoint after the exporter's stop at %d",
			shard, logs[shard], matches[shard], countedLogs[shard], countedMatches[shard], len(seqs[shard]), cpLogs[shard])
		if countedLogs[shard]+len(seqs[shard]) != logs[shard] {
			t.Errorf("shard %d: exporter %d + SDK worker %d logs, want exactly the %d written", shard, countedLogs[shard], len(seqs[shard]), logs[shard])
		}
		// The exporter counted a prefix of the shard, the SDK worker got exactly the rest.
		if want := seqRange(countedLogs[shard], logs[shard]); !slices.Equal(sorted(seqs[shard]), want) {
			t.Errorf("shard %d: the SDK worker got seqs %s, want exactly %d..%d (after the %d the exporter counted)",
				shard, describeSeqs(seqs[shard]), countedLogs[shard], logs[shard]-1, countedLogs[shard])
		}
		if want := w.matchesBefore(shard, countedLogs[shard]); countedMatches[shard] != want {
			t.Errorf("shard %d: the exporter counted %d matches, its %d logs hold %d", shard, countedMatches[shard], countedLogs[shard], want)
		}
		if slices.Contains(heldE, shard) && cpLogs[shard] != countedLogs[shard] {
			t.Errorf("shard %d: the exporter stopped with its checkpoint at %d, its last scrape showed %d", shard, cpLogs[shard], countedLogs[shard])
		}
	}

	// The other way: the SDK worker's checkpoints (forced on its stop) are
	// where an exporter started after it resumes, recounting nothing.
	stopWorker()
	if cp, _ := w.checkpoints(t, group); !slices.Equal(cp, logs) {
		t.Fatalf("the SDK worker stopped with checkpoints at %s, want the end of every shard %s", perShard(cp), perShard(logs))
	}
	for shard := range logs {
		for i := range 5 {
			_, statuses := mixedBatch(4)(i)
			if err := w.write(shard, statuses...); err != nil {
				t.Fatal(err)
			}
		}
	}
	after, _ := w.written()
	e2 := startExporterRun(t, sc, "exporter-again", cfg)
	w.committedToEnd(t, group, 30*time.Second)
	e2.target.waitScrapes(t, 1, 3*shareScrape)
	t.Logf("SDK worker → exporter: the exporter started after it counted %v logs; %d were written since the SDK worker stopped",
		e2.target.total("sls_consumer_logs_total"), sumOf(after)-sumOf(logs))
	for shard := range logs {
		if got, want := e2.target.total("sls_consumer_logs_total", "shard="+strconv.Itoa(shard)), after[shard]-logs[shard]; got != float64(want) {
			t.Errorf("shard %d: the exporter started after the SDK worker counted %v logs, want the %d written since", shard, got, want)
		}
	}
	if _, violations := emulatorGroup(t, emu, "mixed", "four", group); len(violations) > 0 {
		t.Errorf("a shard was held twice: %v", violations)
	}
}

func intersect(a, b []int) []int {
	var out []int
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func seqRange(from, to int) []int {
	out := []int{}
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func sorted(s []int) []int {
	out := append([]int{}, s...)
	sort.Ints(out)
	return out
}

func sumOf(s []int) int {
	n := 0
	for _, x := range s {
		n += x
	}
	return n
}

// describeSeqs summarises delivered seqs as ranges: "0..41 45 47..80".
func describeSeqs(s []int) string {
	s = sorted(s)
	out := ""
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if out != "" {
			out += " "
		}
		if i == j {
			out += strconv.Itoa(s[i])
		} else {
			out += fmt.Sprintf("%d..%d", s[i], s[j])
		}
		i = j + 1
	}
	return "[" + out + "]"
}

// TestShardBackWithinAScrapeIntervalStaysVisible hands a shard from A to B
// and back before A's next scrape (A is scraped every 10 s, as many
// Prometheus setups do, B stops at once), then writes a burst to it. Had A's
// counter of the shard restarted at 0, by A's next scrape its new counts
// would exceed the old ones and increase() would lose the old: A must
// continue from its old counts.
func TestShardBackWithinAScrapeIntervalStaysVisible(t *testing.T) {
	const group = "flap-cg"
	emu := startEmulator(t, seedWorldYAML)
	w := newSeqWriter(t, sdkClient(emu, "cn-hangzhou.log.aliyuncs.com"), "project1", "logstore1")
	slow, fast := newPromScraper(t, 10*time.Second), newPromScraper(t, time.Second)
	w.run(100*time.Millisecond, 60, mixedBatch(2))

	a := startExporterRun(t, slow, "replica-a", writeFile(t, "a.yml", restartConfig(emu, group, "replica-a")))
	waitFor(t, 15*time.Second, "A to hold both shards and count", func() bool {
		return a.peek(t, "sls_consumer_shards_held") == 2 && a.peek(t, "sls_consumer_logs_total") > 0
	})
	b := startExporterRun(t, fast, "replica-b", writeFile(t, "b.yml", restartConfig(emu, group, "replica-b")))
	waitFor(t, 30*time.Second, "B to take a shard", func() bool { return b.peek(t, "sls_consumer_shards_held") == 1 })
	released := time.Now()
	state, _ := emulatorGroup(t, emu, "project1", "logstore1", group)
	moved := state.granted("replica-b")
	if len(moved) != 1 {
		t.Fatalf("the server grants B %v, want one shard", moved)
	}
	b.terminate(t, shutdownTimeout)
	waitFor(t, 20*time.Second, "A to take the shard back", func() bool { return a.peek(t, "sls_consumer_shards_held") == 2 })
	back := time.Now()
	if s, ok := a.target.firstScrapeSentAfter(released); ok && s.sent.Before(back) {
		t.Logf("A was scraped %s after B took the shard, before it came back: the flap was not within one of A's scrape intervals", s.sent.Sub(released).Round(time.Millisecond))
	}
	for range 4 {
		if err := w.write(moved[0], repeat("500", 50)...); err != nil {
			t.Fatal(err)
		}
	}
	w.wait(t)
	w.committedToEnd(t, group, 30*time.Second)
	a.target.waitScrapes(t, 1, 25*time.Second)
	logs, matches := w.totals()
	label := "shard=" + strconv.Itoa(moved[0])
	segs, resets, _ := a.target.segments("sls_consumer_logs_total", label)
	t.Logf("shard %d back at A %s after B took it; A's series of it: %d segments (%d seen as resets); written %d logs, %d matches; A counted %v, B %v",
		moved[0], back.Sub(released).Round(time.Millisecond), segs, resets, logs, matches, a.target.total("sls_consumer_logs_total"), b.target.total("sls_consumer_logs_total"))
	if got := slow.total("sls_keyword_matches_total") + fast.total("sls_keyword_matches_total"); got != float64(matches) {
		t.Errorf("sum over both replicas of the last scraped sls_keyword_matches_total of every segment = %v, want exactly the %d matches written", got, matches)
	}
	if got := slow.total("sls_consumer_logs_total") + fast.total("sls_consumer_logs_total"); got != float64(logs) {
		t.Errorf("sum over both replicas of the last scraped sls_consumer_logs_total of every segment = %v, want exactly the %d logs written", got, logs)
	}
}
