// RuleEvaluator applies rules to raw log groups exactly as the match loop does, for the rules tools (rules test, tail).
package consumer

import (
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer/logwire"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// RuleEvaluator applies the rules of one logstore exactly as the exporter's
// match loop does: compiled by the same path (scopedRules, so a rule's
// logstores: globs decide whether it applies), logs walked from the raw
// LogGroupList by the same walker, the exporter's canary logs skipped, and
// each match's sample rendered by the rule's sampler from the same fields
// (its contents, plus the group metadata its sample_fields name), so a
// sample reads exactly as the sample label on /metrics. It is not safe for
// concurrent use.
type RuleEvaluator struct {
	rules   *compiledRules
	raw     rawBatch
	matched []bool
	found   []Match
	scratch []match.Field
	meta    match.MetadataCopy
}

// RuleInfo names a rule an evaluator applies.
type RuleInfo struct {
	Name, Field string
}

// Match is one log matching one rule.
type Match struct {
	Rule, Field string
	// Log is the log's index in its LogGroupList, counting from 0 across groups.
	Log int
	// LogTime is the log's time in seconds since the epoch (with TimeNs).
	LogTime float64
	// Sample is the rule's sample label for this log.
	Sample string
}

// NewRuleEvaluator compiles the rules (of a validated configuration) that
// apply to the logstore key, "region/project/logstore", as the exporter
// does for that logstore. An empty key applies every rule, whatever its
// logstores: globs.
func NewRuleEvaluator(rules []config.Rule, key string) (*RuleEvaluator, error) {
	if key == "" {
		unscoped := make([]config.Rule, len(rules))
		for i := range rules {
			unscoped[i] = rules[i]
			unscoped[i].Logstores = nil
		}
		rules = unscoped
	}
	compiled, err := (&scopedRules{rules: rules, sets: map[string]*compiledRules{}}).forTarget(key)
	if err != nil {
		return nil, err
	}
	return newRuleEvaluator(compiled), nil
}

func newRuleEvaluator(rules *compiledRules) *RuleEvaluator {
	return &RuleEvaluator{
		rules:   rules,
		raw:     rawBatch{walker: &logwire.Walker{}},
		matched: make([]bool, len(rules.labels)),
	}
}

// Rules lists the rules applied, in configuration order.
func (e *RuleEvaluator) Rules() []RuleInfo {
	out := make([]RuleInfo, len(e.rules.labels))
	for i, l := range e.rules.labels {
		out[i] = RuleInfo{Name: l.Name, Field: l.Field}
	}
	return out
}

// Eval walks raw, a decompressed PullLogs body (a protobuf LogGroupList),
// and calls fn for every log and rule it matches, in log order and then
// rule order. It returns the number of logs walked. A malformed body
// reports no match at all, as the exporter counts nothing of it.
func (e *RuleEvaluator) Eval(raw []byte, fn func(Match)) (int, error) {
	e.found = e.found[:0]
	rules := e.rules
	index := -1
	err := e.raw.reset(raw).eachLog(func(ref logRef, fields []match.Field, logTime float64) {
		index++
		if _, ok := canaryWrittenAt(fields); ok {
			return
		}
		if !rules.set.Match(fields, e.matched) {
			return
		}
		for i, hit := range e.matched {
			if !hit {
				continue
			}
			e.matched[i] = false
			// As shardWork.count renders the sample label: the log's
			// contents, then the group metadata the sampler shows.
			sampler := e.sampler(i)
			e.scratch = e.raw.contents(ref, e.scratch[:0])
			if sampler.NeedsMetadata() {
				sampler.KeepMetadata(&e.meta, fields)
				e.scratch = append(e.scratch, e.meta.Fields()...)
			}
			e.found = append(e.found, Match{
				Rule: rules.labels[i].Name, Field: rules.labels[i].Field,
				Log: index, LogTime: logTime, Sample: sampler.Render(e.scratch),
			})
		}
	})
	n := e.raw.logCount()
	e.raw.reset(nil)
	if err != nil {
		clear(e.matched)
		return n, err
	}
	for _, m := range e.found {
		fn(m)
	}
	return n, nil
}

// sampler is rule i's sampler, or the exporter's fallback for rules built
// without one.
func (e *RuleEvaluator) sampler(i int) *match.Sampler {
	if i < len(e.rules.samples) && e.rules.samples[i].sampler != nil {
		return e.rules.samples[i].sampler
	}
	return match.NewSampler(match.SamplerOptions{MaxLength: config.Defaults.SampleMaxLength})
}
