// The match loop: apply the rules to every log of a batch, keep each rule's newest sample, add the counts once per batch.
package consumer

import (
	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// compiledRules pairs a rule set with its metric labels; swapped whole on reload.
type compiledRules struct {
	set    *match.RuleSet
	labels []collector.RuleLabels
}

// shardWork is the per-shard state of the match loop. Only the puller that
// holds the shard touches it, so it needs no lock.
type shardWork struct {
	member   *member
	id       int
	rules    *compiledRules
	counters *collector.ShardCounters
	counts   []uint64
	matched  []bool
	best     []bestMatch
	sample   []match.Field
}

type bestMatch struct {
	found   bool
	ref     logRef
	logTime float64
}

// newShardWork creates a shard's counters at 0 for the current rules, so the
// first match is visible to rate() and increase().
func (e *Manager) newShardWork(m *member, id int) *shardWork {
	w := &shardWork{member: m, id: id}
	w.use(m.rules.Load())
	return w
}

// use (re)builds the work for a rule set.
func (w *shardWork) use(rules *compiledRules) {
	m := w.member
	w.rules = rules
	w.counters = m.eng.metrics.ShardCounters(m.labels, w.id, rules.labels)
	w.counts = make([]uint64, len(rules.labels))
	w.matched = make([]bool, len(rules.labels))
	w.best = make([]bestMatch, len(rules.labels))
}

// count applies the current rules to every log of b and adds the results to
// the shard's counters once per batch. A malformed batch adds nothing.
func (w *shardWork) count(b batch) error {
	if current := w.member.rules.Load(); current != w.rules {
		w.use(current)
	}
	m := w.member
	rules := w.rules
	clear(w.counts)
	clear(w.best)
	err := b.eachLog(func(ref logRef, fields []match.Field, logTime float64) {
		if writtenAt, ok := canaryWrittenAt(fields); ok {
			m.observeCanary(writtenAt)
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
	if err != nil {
		clear(w.matched)
		return err
	}
	// Render each rule's sample once per batch, for its newest match only,
	// before the counters move, so a scrape never sees a count without its sample.
	for i, best := range w.best {
		if best.found {
			w.sample = b.contents(best.ref, w.sample[:0])
			sample := match.RenderSample(w.sample, m.settings.SampleMaxLength)
			m.eng.metrics.RecordLastMatch(m.labels, rules.labels[i], sample, best.logTime)
		}
	}
	for i, n := range w.counts {
		if n > 0 {
			w.counters.Matches[i].Add(n)
		}
	}
	if logs := b.logCount(); logs > 0 {
		w.counters.Logs.Add(uint64(logs))
		w.counters.Bytes.Add(uint64(b.rawBytes()))
	}
	return nil
}
