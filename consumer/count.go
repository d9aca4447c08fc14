// The match loop: apply the rules to every log of a batch, keep each rule's newest sample, add the counts once per batch.
package consumer

import (
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// compiledRules pairs a rule set with its metric labels and samples; swapped whole on reload.
type compiledRules struct {
	set    *match.RuleSet
	labels []collector.RuleLabels
	// samples says how each rule's sample label is rendered and how often
	// it may change; nil (benchmarks) samples every field, redacted.
	samples []ruleSample
}

// ruleSample is a rule's sampler (sample_fields, redaction, length) and its
// sample_min_interval.
type ruleSample struct {
	sampler     *match.Sampler
	minInterval time.Duration
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
	// meta: the group metadata of each rule's newest match, kept only for
	// rules whose sample shows some (contents() re-reads contents only).
	meta []match.MetadataCopy
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
	w.meta = make([]match.MetadataCopy, len(rules.labels))
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
				if i < len(rules.samples) && rules.samples[i].sampler.NeedsMetadata() {
					rules.samples[i].sampler.KeepMetadata(&w.meta[i], fields)
				}
			}
		}
	})
	if err != nil {
		clear(w.matched)
		return err
	}
	// Render each rule's sample once per batch, for its newest match only,
	// before the counters move, so a scrape never sees a count without its sample.
	// The sampler redacts each value whole before the sample is cut.
	for i, best := range w.best {
		if best.found {
			var s ruleSample
			if i < len(rules.samples) {
				s = rules.samples[i]
			} else {
				s.sampler = match.NewSampler(match.SamplerOptions{MaxLength: m.settings.SampleMaxLength})
			}
			w.sample = append(b.contents(best.ref, w.sample[:0]), w.meta[i].Fields()...)
			m.eng.metrics.RecordLastMatch(m.labels, rules.labels[i], s.sampler.Render(w.sample), best.logTime, s.minInterval)
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
