// A writer of numbered logs through the SDK that remembers what it wrote per shard and turns checkpoints into positions.
package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/testkit"
)

// http5xx is the rule every test exporter of these files runs (rule http_5xx).
var http5xx = regexp.MustCompile(`^5\d{2}$`)

const http5xxRule = "  - name: http_5xx\n    field: status\n    regex: '^5\\d{2}$'\n"

// seqWriter writes log groups into the shards of one logstore. Every log
// carries seq (its index in its shard), id ("<shard>-<seq>") and status.
type seqWriter struct {
	c                 sls.ClientInterface
	project, logstore string
	keys              []string // hash key of each shard, by shard ID

	// mu is held across each write, so that position sees a shard at rest.
	mu      sync.Mutex
	matches [][]bool // per shard, per seq: whether the log matches http_5xx
	failed  error

	done chan struct{} // closed when the background writes end
}

func newSeqWriter(t testing.TB, c sls.ClientInterface, project, logstore string) *seqWriter {
	t.Helper()
	shards, err := c.ListShards(project, logstore)
	if err != nil {
		t.Fatal(err)
	}
	w := &seqWriter{c: c, project: project, logstore: logstore, done: make(chan struct{})}
	w.keys = make([]string, len(shards))
	for _, s := range shards {
		w.keys[s.ShardID] = s.InclusiveBeginKey
	}
	w.matches = make([][]bool, len(shards))
	close(w.done) // no background run yet
	return w
}

// write stores one log group with the given statuses in shard.
func (w *seqWriter) write(shard int, statuses ...string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	base := len(w.matches[shard])
	now := time.Now()
	lg := &sls.LogGroup{}
	for i, s := range statuses {
		seq := strconv.Itoa(base + i)
		lg.Logs = append(lg.Logs, testkit.Log(now, "seq", seq, "id", strconv.Itoa(shard)+"-"+seq, "status", s, "path", "/e2e"))
	}
	key := w.keys[shard]
	if err := w.c.PostLogStoreLogs(w.project, w.logstore, lg, &key); err != nil {
		return err
	}
	for _, s := range statuses {
		w.matches[shard] = append(w.matches[shard], http5xx.MatchString(s))
	}
	return nil
}

// run writes n batches in the background, one every interval: batch(i)
// says where batch i goes and what it holds.
func (w *seqWriter) run(interval time.Duration, n int, batch func(i int) (shard int, statuses []string)) {
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for i := range n {
			shard, statuses := batch(i)
			if err := w.write(shard, statuses...); err != nil {
				w.mu.Lock()
				w.failed = fmt.Errorf("batch %d: %w", i, err)
				w.mu.Unlock()
				return
			}
			<-ticker.C
		}
	}()
}

// wait waits for the background writes to end and fails the test if one failed.
func (w *seqWriter) wait(t testing.TB) {
	t.Helper()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		t.Fatal("writing logs:", w.failed)
	}
}

// written reports, per shard, the logs and matching logs written so far.
func (w *seqWriter) written() (logs, matches []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	logs, matches = make([]int, len(w.matches)), make([]int, len(w.matches))
	for shard, ms := range w.matches {
		logs[shard] = len(ms)
		matches[shard] = countTrue(ms)
	}
	return logs, matches
}

// totals is written summed over the shards.
func (w *seqWriter) totals() (logs, matches int) {
	l, m := w.written()
	for i := range l {
		logs += l[i]
		matches += m[i]
	}
	return logs, matches
}

// position is how many of shard's logs (and matching logs) lie before
// cursor: the seq of the first log a pull from cursor returns, or all logs
// written when there is none yet. An empty cursor is the beginning.
func (w *seqWriter) position(t testing.TB, shard int, cursor string) (logs, matches int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	logs = len(w.matches[shard])
	if cursor != "" {
		gl, _, err := w.c.PullLogs(w.project, w.logstore, shard, cursor, "", 1)
		if err != nil {
			t.Fatalf("pulling shard %d at %q: %v", shard, cursor, err)
		}
		if gl != nil && len(gl.LogGroups) > 0 && len(gl.LogGroups[0].Logs) > 0 {
			seq, err := strconv.Atoi(contentOf(gl.LogGroups[0].Logs[0], "seq"))
			if err != nil {
				t.Fatalf("shard %d: a log without seq: %v", shard, err)
			}
			logs = seq
		}
	} else {
		logs = 0
	}
	return logs, countTrue(w.matches[shard][:logs])
}

// checkpoints maps each shard's checkpoint in group to its position (the
// beginning while the group does not exist).
func (w *seqWriter) checkpoints(t testing.TB, group string) (logs, matches []int) {
	t.Helper()
	cps, err := w.c.GetCheckpoint(w.project, w.logstore, group)
	if slsErr, ok := err.(*sls.Error); ok && slsErr.Code == "ConsumerGroupNotExist" {
		cps, err = nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	saved := map[int]string{}
	for _, cp := range cps {
		saved[cp.ShardID] = cp.CheckPoint
	}
	logs, matches = make([]int, len(w.keys)), make([]int, len(w.keys))
	for shard := range w.keys {
		logs[shard], matches[shard] = w.position(t, shard, saved[shard])
	}
	return logs, matches
}

// committedToEnd waits until group's checkpoint of every shard is at its
// end (so a scrape has acknowledged every log) and reports whether it came.
func (w *seqWriter) committedToEnd(t testing.TB, group string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cp, _ := w.checkpoints(t, group)
		written, _ := w.written()
		if fmt.Sprint(cp) == fmt.Sprint(written) {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("checkpoints at %s, not at the end of the shards %s", perShard(cp), perShard(written))
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// matchesBefore counts the matching logs among shard's first n.
func (w *seqWriter) matchesBefore(shard, n int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return countTrue(w.matches[shard][:min(n, len(w.matches[shard]))])
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func contentOf(l *sls.Log, key string) string {
	for _, c := range l.Contents {
		if c.GetKey() == key {
			return c.GetValue()
		}
	}
	return ""
}

// mixedBatch is batch i of a steady stream over shards: 1 to 3 matching
// logs and 2 others, the shards taken in turn.
func mixedBatch(shards int) func(i int) (int, []string) {
	matching := []string{"500", "503", "504"}
	return func(i int) (int, []string) {
		statuses := append([]string{}, matching[:1+i%3]...)
		return i % shards, append(statuses, "200", "404")
	}
}
