// The last matching sample per (logstore, field, rule): an info metric and its log timestamp.
package collector

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	lastMatchInfoDesc = prometheus.NewDesc("sls_keyword_last_match_info",
		"The newest log (by log time) that matched the rule, rendered as sorted key=value pairs in the sample label.",
		[]string{"region", "project", "logstore", "field", "rule", "sample"}, nil)
	lastMatchTimestampDesc = prometheus.NewDesc("sls_keyword_last_match_timestamp_seconds",
		"Log time of the newest log that matched the rule.",
		[]string{"region", "project", "logstore", "field", "rule"}, nil)
)

type lastMatchKey struct {
	target Target
	field  string
	rule   string
}

type lastMatch struct {
	sample  string
	logTime float64
	// With a minimum interval, the sample label changes at most once per
	// interval: changedAt is when it last did, and a newer sample waits in
	// pending until the interval has passed (then a scrape shows it).
	changedAt   time.Time
	minInterval time.Duration
	pending     string
	hasPending  bool
}

// lastMatchCollector exposes exactly one series per key: a newer sample
// replaces the old one instead of adding a series.
type lastMatchCollector struct {
	mu    sync.Mutex
	items map[lastMatchKey]lastMatch
	now   func() time.Time // the clock of minimum intervals; tests set it
}

func newLastMatchCollector() *lastMatchCollector {
	return &lastMatchCollector{items: map[lastMatchKey]lastMatch{}, now: time.Now}
}

// record keeps the newest match by log time. Its log time always becomes
// the timestamp; its sample becomes the label unless the label changed
// less than minInterval ago, in which case it waits as pending (a newer
// one replacing it) until the interval has passed.
func (c *lastMatchCollector) record(k lastMatchKey, sample string, logTime float64, minInterval time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.items[k]
	if ok && old.logTime > logTime {
		return
	}
	now := c.now()
	switch {
	case !ok:
		c.items[k] = lastMatch{sample: sample, logTime: logTime, changedAt: now, minInterval: minInterval}
		return
	case sample == old.sample: // the label stays; nothing newer waits
		old.hasPending, old.pending = false, ""
	case minInterval <= 0 || now.Sub(old.changedAt) >= minInterval:
		old.sample, old.changedAt = sample, now
		old.hasPending, old.pending = false, ""
	default:
		old.pending, old.hasPending = sample, true
	}
	old.logTime, old.minInterval = logTime, minInterval
	c.items[k] = old
}

// promote shows a pending sample once its interval has passed.
func (c *lastMatchCollector) promote(now time.Time) {
	for k, v := range c.items {
		if v.hasPending && now.Sub(v.changedAt) >= v.minInterval {
			v.sample, v.changedAt = v.pending, now
			v.pending, v.hasPending = "", false
			c.items[k] = v
		}
	}
}

func (c *lastMatchCollector) retain(keep func(lastMatchKey) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.items {
		if !keep(k) {
			delete(c.items, k)
		}
	}
}

func (c *lastMatchCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lastMatchInfoDesc
	ch <- lastMatchTimestampDesc
}

func (c *lastMatchCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.promote(c.now())
	for k, v := range c.items {
		t := k.target
		ch <- prometheus.MustNewConstMetric(lastMatchInfoDesc, prometheus.GaugeValue, 1, t.Region, t.Project, t.Logstore, k.field, k.rule, v.sample)
		ch <- prometheus.MustNewConstMetric(lastMatchTimestampDesc, prometheus.GaugeValue, v.logTime, t.Region, t.Project, t.Logstore, k.field, k.rule)
	}
}
