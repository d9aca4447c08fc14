// The consumer library's Processor: count matches per batch, keep the newest sample, then checkpoint.
package consumer

import (
	"sync"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	consumerLibrary "github.com/aliyun/aliyun-log-go-sdk/consumer"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// compiledRules pairs a rule set with its metric labels; swapped whole on reload.
type compiledRules struct {
	set    *match.RuleSet
	labels []collector.RuleLabels
}

// shardWork is the per-shard state of the match loop. Only the shard's
// library goroutine touches it, so it needs no lock.
type shardWork struct {
	id       int
	rules    *compiledRules
	counters *collector.ShardCounters
	counts   []float64
	matched  []bool
	best     []bestMatch
	sample   []match.Field
	batch    sdkBatch
}

type bestMatch struct {
	found   bool
	ref     logRef
	logTime float64
}

// processor implements consumerLibrary.Processor for one target.
type processor struct {
	target *target

	mu     sync.Mutex
	shards map[int]*shardWork
}

var _ consumerLibrary.Processor = (*processor)(nil)

func newProcessor(t *target) *processor {
	return &processor{target: t, shards: map[int]*shardWork{}}
}

// Process counts a batch, then marks it for the next checkpoint commit: a
// batch is committed only after its matches are counted (at least once).
func (p *processor) Process(shardID int, list *sls.LogGroupList, tracker consumerLibrary.CheckPointTracker) (string, error) {
	work := p.work(shardID)
	p.count(work, work.batch.reset(list))
	work.batch.list = nil // do not keep the batch alive until the next one
	p.target.recordPosition(shardID, tracker.GetCurrentCursor(), tracker.GetNextCursor())
	return "", tracker.SaveCheckPoint(false)
}

// Shutdown is called when the shard is released or the worker stops; the
// library then flushes the shard's checkpoint.
func (p *processor) Shutdown(tracker consumerLibrary.CheckPointTracker) error {
	p.mu.Lock()
	delete(p.shards, tracker.GetShardId())
	p.mu.Unlock()
	p.target.releaseShard(tracker.GetShardId())
	return nil
}

// work returns the shard's state, (re)building it for the current rules; the
// first call for a shard creates its counters at 0.
func (p *processor) work(shardID int) *shardWork {
	rules := p.target.rules.Load()
	p.mu.Lock()
	w := p.shards[shardID]
	if w == nil || w.rules != rules {
		w = &shardWork{
			id:       shardID,
			rules:    rules,
			counters: p.target.metrics.ShardCounters(p.target.labels, shardID, rules.labels),
			counts:   make([]float64, len(rules.labels)),
			matched:  make([]bool, len(rules.labels)),
			best:     make([]bestMatch, len(rules.labels)),
		}
		p.shards[shardID] = w
	}
	p.mu.Unlock()
	p.target.holdShard(shardID)
	return w
}

// count applies the rules to every log of b and adds the results to the
// shard's counters once per batch.
func (p *processor) count(w *shardWork, b batch) {
	rules := w.rules
	clear(w.counts)
	clear(w.best)
	b.eachLog(func(ref logRef, fields []match.Field, logTime float64) {
		if writtenAt, ok := canaryWrittenAt(fields); ok {
			p.target.observeCanary(writtenAt)
			return
		}
		if !rules.set.Match(fields, w.matched) {
			return
		}
		for i, hit := range w.matched {
			if !hit {
				continue
			}
			w.matched[i] = false
			w.counts[i]++
			if best := &w.best[i]; !best.found || logTime >= best.logTime {
				*best = bestMatch{true, ref, logTime}
			}
		}
	})
	// Render each rule's sample once per batch, for its newest match only,
	// before the counters move, so a scrape never sees a count without its sample.
	for i, best := range w.best {
		if best.found {
			w.sample = b.contents(best.ref, w.sample[:0])
			sample := match.RenderSample(w.sample, p.target.settings.SampleMaxLength)
			p.target.metrics.RecordLastMatch(p.target.labels, rules.labels[i], sample, best.logTime)
		}
	}
	for i, n := range w.counts {
		if n > 0 {
			w.counters.Matches[i].Add(n)
		}
	}
	if logs := b.logCount(); logs > 0 {
		w.counters.Logs.Add(float64(logs))
		w.counters.Bytes.Add(float64(b.rawBytes()))
	}
}
