// The last matching sample per (logstore, field, rule): an info metric and its log timestamp.
package collector

import (
	"sync"

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
}

// lastMatchCollector exposes exactly one series per key: a newer sample
// replaces the old one instead of adding a series.
type lastMatchCollector struct {
	mu    sync.Mutex
	items map[lastMatchKey]lastMatch
}

func newLastMatchCollector() *lastMatchCollector {
	return &lastMatchCollector{items: map[lastMatchKey]lastMatch{}}
}

func (c *lastMatchCollector) record(k lastMatchKey, sample string, logTime float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.items[k]; ok && old.logTime > logTime {
		return
	}
	c.items[k] = lastMatch{sample, logTime}
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
	for k, v := range c.items {
		t := k.target
		ch <- prometheus.MustNewConstMetric(lastMatchInfoDesc, prometheus.GaugeValue, 1, t.Region, t.Project, t.Logstore, k.field, k.rule, v.sample)
		ch <- prometheus.MustNewConstMetric(lastMatchTimestampDesc, prometheus.GaugeValue, v.logTime, t.Region, t.Project, t.Logstore, k.field, k.rule)
	}
}
