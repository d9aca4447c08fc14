// Shards split and merged while logs arrive: the exporter counts exactly across parents and children, as the SDK's consumer library reads them.
package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	dto "github.com/prometheus/client_model/go"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/testkit"
)

// keyedWriter writes batches under random hash keys, so they land in
// whichever readwrite shard covers the key at the time, split or not.
type keyedWriter struct {
	c       sls.ClientInterface
	rng     *rand.Rand
	mu      sync.Mutex
	logs    int
	matches int
	next    int
}

func (w *keyedWriter) write(t testing.TB, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := fmt.Sprintf("%032x", w.rng.Uint64())
	now := time.Now()
	lg := &sls.LogGroup{}
	matches := 0
	for range n {
		status := "200"
		if w.next%3 == 0 {
			status, matches = "500", matches+1
		}
		lg.Logs = append(lg.Logs, testkit.Log(now, "id", strconv.Itoa(w.next), "seq", strconv.Itoa(w.next), "status", status))
		w.next++
	}
	if err := w.c.PostLogStoreLogs("project1", "logstore1", lg, &key); err != nil {
		t.Errorf("write: %v", err)
		return
	}
	w.logs += n
	w.matches += matches
}

func (w *keyedWriter) totals() (int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logs, w.matches
}

func TestSplitAndMergeWhileLogsArriveCountExactly(t *testing.T) {
	const group = "split-cg"
	emu := startEmulator(t, seedWorldYAML)
	client := sdkClient(emu, "cn-hangzhou.log.aliyuncs.com")
	sc := newPromScraper(t, time.Second)
	// Default cursor_start (end): a child read from cursor_start would lose
	// what was written into it before the exporter took it.
	cfg := logstore1Config(emu, "consumer_group: "+group+"\nconsumer_name: splitter\ncommit_interval: 1s\n", http5xxRule)
	r := startExporterRun(t, sc, "splitter", writeFile(t, "split.yml", cfg))
	waitFor(t, 10*time.Second, "the exporter to hold both shards", func() bool { return r.peek(t, "sls_consumer_shards_held") == 2 })

	// A client no one here wrote reads the same logstore in its own group.
	sdk := &sdkDeliveries{ids: map[string]int{}}
	startSDKWorker(t, emu, "project1", "logstore1", "sdk-split", "sdk-reader", sdk)

	w := &keyedWriter{c: client, rng: rand.New(rand.NewPCG(1, 2))}
	stop := make(chan struct{})
	var writing sync.WaitGroup
	writing.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				w.write(t, 5)
			}
		}
	})
	time.Sleep(2 * time.Second)
	// Shard 0, busy, splits into 2 and 3; later 2 and 3 merge into 4.
	if _, err := client.SplitShard("project1", "logstore1", 0, "40000000000000000000000000000000"); err != nil {
		t.Fatalf("split: %v", err)
	}
	time.Sleep(3 * time.Second)
	if _, err := client.MergeShards("project1", "logstore1", 2); err != nil {
		t.Fatalf("merge: %v", err)
	}
	time.Sleep(3 * time.Second)
	close(stop)
	writing.Wait()
	logs, matches := w.totals()
	shards, err := client.ListShards("project1", "logstore1")
	if err != nil {
		t.Fatal(err)
	}
	var layout []string
	for _, s := range shards {
		layout = append(layout, fmt.Sprintf("%d:%s", s.ShardID, s.Status))
	}
	t.Logf("wrote %d logs (%d matches); shards now %v", logs, matches, layout)

	waitFor(t, 30*time.Second, "the exporter to count every log", func() bool {
		return sc.total("sls_consumer_logs_total") == float64(logs)
	})
	waitFor(t, 30*time.Second, "the SDK worker to read every log", func() bool {
		sdk.mu.Lock()
		defer sdk.mu.Unlock()
		return len(sdk.ids) == logs
	})
	time.Sleep(2 * time.Second) // a recount would show now
	if got := sc.total("sls_keyword_matches_total"); got != float64(matches) {
		t.Errorf("matches counted across parents and children = %v, want exactly %d", got, matches)
	}
	if got := sc.total("sls_consumer_logs_total"); got != float64(logs) {
		t.Errorf("logs counted across parents and children = %v, want exactly %d", got, logs)
	}
	if _, dups := sdk.seqs(8); len(dups) > 0 || len(sdk.ids) != logs {
		t.Errorf("the SDK's consumer library read %d distinct logs of %d, duplicates %v", len(sdk.ids), logs, dups)
	}
	// Held shards compare with readwrite shards; finished parents are let go
	// and their series leave the page.
	waitFor(t, 15*time.Second, "held readwrite shards equal to the logstore's, parents released", func() bool {
		m, _ := scrape(t, r.base+"/metrics")
		return sum(m, "sls_consumer_shards_held") == 2 && sum(m, "sls_logstore_shards") == 2 &&
			sum(m, "sls_consumer_readonly_shards_held") == 0 &&
			len(seriesWithShard(m, "sls_consumer_logs_total", "0", "2", "3")) == 0
	})
	if _, violations := emulatorGroup(t, emu, "project1", "logstore1", group); len(violations) > 0 {
		t.Errorf("a shard was held twice: %v", violations)
	}
}

// seriesWithShard lists the samples of name whose shard label is one of shards.
func seriesWithShard(families map[string]*dto.MetricFamily, name string, shards ...string) []string {
	var out []string
	f, ok := families[name]
	if !ok {
		return nil
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == "shard" && slices.Contains(shards, l.GetValue()) {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}
