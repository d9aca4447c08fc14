// Per-shard counters (matches by rule, logs, bytes): plain atomics with their label text prepared once, for thousands of shards.
package collector

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Counter is a count that only goes up.
type Counter struct{ n atomic.Uint64 }

// Add adds n.
func (c *Counter) Add(n uint64) { c.n.Add(n) }

// Value is the count so far.
func (c *Counter) Value() uint64 { return c.n.Load() }

// ShardCounters are one shard's counters, resolved once so the match loop
// does no label lookups.
type ShardCounters struct {
	Matches []*Counter // indexed like the rules given to ShardCounters
	Logs    *Counter
	Bytes   *Counter
}

type shardKey struct {
	target Target
	shard  int
}

// shardSeries holds a shard's series; labels are its rendered label pairs.
type shardSeries struct {
	key    shardKey
	labels string // logstore="…",project="…",region="…",shard="…"
	logs   Counter
	bytes  Counter
	rules  map[RuleLabels]*ruleSeries
	order  []*ruleSeries // rules sorted by field, then name
}

type ruleSeries struct {
	rule   RuleLabels
	labels string // field="…",logstore="…",project="…",region="…",rule="…",shard="…"
	count  Counter
}

// shardStore holds every shard's series. Scrapes read the counters without
// a lock; the lock guards which series exist.
type shardStore struct {
	mu     sync.Mutex
	shards map[shardKey]*shardSeries
	sorted []*shardSeries // by target then shard; nil when stale
	// retired holds the counters of released shards that may come back:
	// off the page, but a shard taken again continues from its old values.
	// A series that vanished and came back from 0 would, once it passed its
	// old value, look to increase() like growth: those counts would be lost.
	retired map[shardKey]*shardSeries
}

func newShardStore() *shardStore {
	return &shardStore{shards: map[shardKey]*shardSeries{}, retired: map[shardKey]*shardSeries{}}
}

// counters returns a shard's counters for rules, creating every series at
// 0 so that the first match is visible to rate() and increase().
func (s *shardStore) counters(t Target, shard int, rules []RuleLabels) *ShardCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := shardKey{t, shard}
	ss := s.shards[key]
	if ss == nil {
		if ss = s.retired[key]; ss != nil {
			delete(s.retired, key)
			s.shards[key] = ss
			s.sorted = nil
		}
	}
	if ss == nil {
		ss = &shardSeries{
			key:    key,
			labels: targetLabelText(t) + `,shard="` + strconv.Itoa(shard) + `"`,
			rules:  map[RuleLabels]*ruleSeries{},
		}
		s.shards[key] = ss
		s.sorted = nil
	}
	out := &ShardCounters{Matches: make([]*Counter, len(rules)), Logs: &ss.logs, Bytes: &ss.bytes}
	added := false
	for i, r := range rules {
		rs := ss.rules[r]
		if rs == nil {
			rs = &ruleSeries{rule: r, labels: `field="` + escapeLabelValue(r.Field) + `",` + targetLabelText(t) +
				`,rule="` + escapeLabelValue(r.Name) + `",shard="` + strconv.Itoa(shard) + `"`}
			ss.rules[r] = rs
			added = true
		}
		out.Matches[i] = &rs.count
	}
	if added {
		ss.reorder()
	}
	return out
}

// reorder builds a new order slice: a scrape may still read the old one.
func (ss *shardSeries) reorder() {
	order := make([]*ruleSeries, 0, len(ss.rules))
	for _, rs := range ss.rules {
		order = append(order, rs)
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i].rule, order[j].rule
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Name < b.Name
	})
	ss.order = order
}

// snapshot lists the shards in a stable order; their rule lists must be
// read through ruleSnapshot.
func (s *shardStore) snapshot() []*shardSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sorted == nil {
		s.sorted = make([]*shardSeries, 0, len(s.shards))
		for _, ss := range s.shards {
			s.sorted = append(s.sorted, ss)
		}
		sort.Slice(s.sorted, func(i, j int) bool { return lessShard(s.sorted[i].key, s.sorted[j].key) })
	}
	return s.sorted
}

// ruleSnapshot returns each shard's rule series, copied under the lock.
func (s *shardStore) ruleSnapshot(shards []*shardSeries, buf [][]*ruleSeries) [][]*ruleSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf = buf[:0]
	for _, ss := range shards {
		buf = append(buf, ss.order)
	}
	return buf
}

func lessShard(a, b shardKey) bool {
	if a.target != b.target {
		return lessTarget(a.target, b.target)
	}
	return a.shard < b.shard
}

func lessTarget(a, b Target) bool {
	if a.Region != b.Region {
		return a.Region < b.Region
	}
	if a.Project != b.Project {
		return a.Project < b.Project
	}
	return a.Logstore < b.Logstore
}

// retireShard takes a released shard's series off the page, keeping its
// counts in case the shard comes back.
func (s *shardStore) retireShard(t Target, shard int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := shardKey{t, shard}
	if ss, ok := s.shards[key]; ok {
		delete(s.shards, key)
		s.retired[key] = ss
		s.sorted = nil
	}
}

// deleteShard forgets a shard that will not come back (a readonly shard
// read to its end).
func (s *shardStore) deleteShard(t Target, shard int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := shardKey{t, shard}
	delete(s.retired, key)
	if _, ok := s.shards[key]; ok {
		delete(s.shards, key)
		s.sorted = nil
	}
}

// deleteTarget drops every shard series of a logstore.
func (s *shardStore) deleteTarget(t Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.shards {
		if key.target == t {
			delete(s.shards, key)
			s.sorted = nil
		}
	}
	for key := range s.retired {
		if key.target == t {
			delete(s.retired, key)
		}
	}
}

// forgetTargetRules drops one logstore's match series of rules not in keep.
func (s *shardStore) forgetTargetRules(t Target, keep map[RuleLabels]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, group := range []map[shardKey]*shardSeries{s.shards, s.retired} {
		for key, ss := range group {
			if key.target != t {
				continue
			}
			changed := false
			for r := range ss.rules {
				if !keep[r] {
					delete(ss.rules, r)
					changed = true
				}
			}
			if changed {
				ss.reorder()
			}
		}
	}
}

// forgetRules drops the match series of rules not in keep. Rule order
// slices are rebuilt, never edited in place, so a scrape holding the old
// slice is unaffected.
func (s *shardStore) forgetRules(keep map[RuleLabels]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.retired {
		for r := range ss.rules {
			if !keep[r] {
				delete(ss.rules, r)
			}
		}
		ss.reorder()
	}
	for _, ss := range s.shards {
		changed := false
		for r := range ss.rules {
			if !keep[r] {
				delete(ss.rules, r)
				changed = true
			}
		}
		if changed {
			ss.reorder()
		}
	}
}

// targetLabelText renders a logstore's labels in label-name order.
func targetLabelText(t Target) string {
	return `logstore="` + escapeLabelValue(t.Logstore) + `",project="` + escapeLabelValue(t.Project) +
		`",region="` + escapeLabelValue(t.Region) + `"`
}

// escapeLabelValue escapes a label value as the text exposition format does.
func escapeLabelValue(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(v)
}
