// The per-shard and per-logstore families written straight into the text exposition: thousands of shards scraped every second for little CPU.
package collector

import (
	"compress/gzip"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// family is one metric family of the hot path.
type family struct {
	name   string
	help   string
	typ    string // counter or gauge
	labels []string
	desc   *prometheus.Desc // for the registry path
}

func newFamily(name, help, typ string, labels []string) *family {
	return &family{name: name, help: help, typ: typ, labels: labels, desc: prometheus.NewDesc(name, help, labels, nil)}
}

var (
	targetLabels = []string{"region", "project", "logstore"}
	shardLabels  = []string{"region", "project", "logstore", "shard"}
)

// The families whose series grow with the number of shards and logstores.
// They are not in the registry's hot path: client_golang's Gather checks,
// sorts and converts every series on every scrape, which at 2,000 shards
// scraped every second cost more than all the consuming.
var (
	matchesFamily = newFamily("sls_keyword_matches_total",
		`Logs whose field matched the rule's regex (field "*": any field).`, "counter",
		[]string{"region", "project", "logstore", "shard", "field", "rule"})
	logsFamily  = newFamily("sls_consumer_logs_total", "Logs read from the shard.", "counter", shardLabels)
	bytesFamily = newFamily("sls_consumer_bytes_total", "Raw (uncompressed protobuf) bytes read from the shard.", "counter", shardLabels)
	upFamily    = newFamily("sls_up",
		"Whether the logstore's consumer can reach SLS: 0 while the logstore or AccessKey is refused, or after 3 consecutive failed heartbeats or pulls.",
		"gauge", targetLabels)
	shardsHeldFamily = newFamily("sls_consumer_shards_held",
		"Readwrite shards of the logstore this replica consumes; sum over replicas below sls_logstore_shards means unowned shards.",
		"gauge", targetLabels)
	readonlyHeldFamily = newFamily("sls_consumer_readonly_shards_held",
		"Readonly shards (parents of a split or merge) this replica still reads to their end; absent when none.",
		"gauge", targetLabels)
	logstoreShardsFamily = newFamily("sls_logstore_shards", "Readwrite shards of the logstore.", "gauge", targetLabels)
	groupTimeoutFamily   = newFamily("sls_consumer_group_timeout_seconds",
		"The consumer group's timeout: a member silent this long loses its shards to the others.", "gauge", targetLabels)
	lagFamily = newFamily("sls_consumer_lag_seconds",
		"Receive time of the shard's newest log group minus that of the first group not yet consumed; 0 when caught up.",
		"gauge", shardLabels)
	lastPullFamily = newFamily("sls_consumer_last_pull_timestamp_seconds",
		"When a pull of the shard last succeeded; a shard whose pulls fail stops advancing it.", "gauge", shardLabels)

	hotFamilies = []*family{matchesFamily, logsFamily, bytesFamily, upFamily, shardsHeldFamily, readonlyHeldFamily,
		logstoreShardsFamily, groupTimeoutFamily, lagFamily, lastPullFamily}
)

// hotWriter appends one family's lines, its HELP and TYPE before the first.
type hotWriter struct {
	buf     []byte
	fam     *family
	started bool
}

func (w *hotWriter) begin(f *family) { w.fam, w.started = f, false }

func (w *hotWriter) header() {
	if w.started {
		return
	}
	w.started = true
	w.buf = append(w.buf, "# HELP "...)
	w.buf = append(w.buf, w.fam.name...)
	w.buf = append(w.buf, ' ')
	w.buf = appendEscapedHelp(w.buf, w.fam.help)
	w.buf = append(w.buf, "\n# TYPE "...)
	w.buf = append(w.buf, w.fam.name...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, w.fam.typ...)
	w.buf = append(w.buf, '\n')
}

// line starts a sample line up to its value.
func (w *hotWriter) line(labels ...string) {
	w.header()
	w.buf = append(w.buf, w.fam.name...)
	w.buf = append(w.buf, '{')
	for _, l := range labels {
		w.buf = append(w.buf, l...)
	}
	w.buf = append(w.buf, "} "...)
}

func (w *hotWriter) uint(v uint64, labels ...string) {
	w.line(labels...)
	w.buf = strconv.AppendUint(w.buf, v, 10)
	w.buf = append(w.buf, '\n')
}

func (w *hotWriter) float(v float64, labels ...string) {
	w.line(labels...)
	w.buf = appendFloat(w.buf, v)
	w.buf = append(w.buf, '\n')
}

// appendFloat formats a value as the text exposition format does.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case v == -1:
		return append(b, "-1"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func appendEscapedHelp(b []byte, help string) []byte {
	if !strings.ContainsAny(help, "\\\n") {
		return append(b, help...)
	}
	return append(b, strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help)...)
}

// hotState is what a scrape reads of the consumers, once.
type hotState struct {
	shards []*shardSeries
	rules  [][]*ruleSeries
	states []LogstoreState
	labels []string // targetLabelText of each state
}

func (m *Metrics) readHotState() *hotState {
	st := &hotState{shards: m.shards.snapshot()}
	st.rules = m.shards.ruleSnapshot(st.shards, nil)
	if source := m.state.source.Load(); source != nil {
		st.states = (*source).LogstoreStates()
	}
	st.labels = make([]string, len(st.states))
	for i, s := range st.states {
		st.labels[i] = m.labelCache.text(s.Target)
	}
	return st
}

// appendHot appends the text exposition of the hot families that want allows.
func (m *Metrics) appendHot(buf []byte, want func(name string) bool) []byte {
	st := m.readHotState()
	w := &hotWriter{buf: buf}
	if want(matchesFamily.name) {
		w.begin(matchesFamily)
		for i := range st.shards {
			for _, rs := range st.rules[i] {
				w.uint(rs.count.Value(), rs.labels)
			}
		}
	}
	if want(logsFamily.name) {
		w.begin(logsFamily)
		for _, ss := range st.shards {
			w.uint(ss.logs.Value(), ss.labels)
		}
	}
	if want(bytesFamily.name) {
		w.begin(bytesFamily)
		for _, ss := range st.shards {
			w.uint(ss.bytes.Value(), ss.labels)
		}
	}
	for _, f := range []*family{upFamily, shardsHeldFamily, readonlyHeldFamily, logstoreShardsFamily, groupTimeoutFamily} {
		if !want(f.name) {
			continue
		}
		w.begin(f)
		for i, s := range st.states {
			if v, ok := targetValue(f, &s); ok {
				w.float(v, st.labels[i])
			}
		}
	}
	var shardLabel []byte
	for _, f := range []*family{lagFamily, lastPullFamily} {
		if !want(f.name) {
			continue
		}
		w.begin(f)
		for i, s := range st.states {
			for _, sh := range s.Held {
				v, ok := shardValue(f, &sh)
				if !ok {
					continue
				}
				shardLabel = append(append(shardLabel[:0], `,shard="`...), strconv.Itoa(sh.ID)...)
				shardLabel = append(shardLabel, '"')
				w.float(v, st.labels[i], string(shardLabel))
			}
		}
	}
	return w.buf
}

// targetValue is a per-logstore family's value for one state; ok is false
// when the series is absent.
func targetValue(f *family, s *LogstoreState) (float64, bool) {
	switch f {
	case upFamily:
		if s.Up {
			return 1, true
		}
		return 0, true
	case shardsHeldFamily, readonlyHeldFamily:
		readwrite, readonly := 0, 0
		for _, sh := range s.Held {
			if sh.Readonly {
				readonly++
			} else {
				readwrite++
			}
		}
		if f == shardsHeldFamily {
			return float64(readwrite), true
		}
		return float64(readonly), readonly > 0
	case logstoreShardsFamily:
		return float64(s.ReadwriteShards), s.ReadwriteShards >= 0
	case groupTimeoutFamily:
		return s.GroupTimeout.Seconds(), s.GroupTimeout > 0
	}
	return 0, false
}

// shardValue is a per-shard family's value; ok is false when absent.
func shardValue(f *family, sh *ShardState) (float64, bool) {
	switch f {
	case lagFamily:
		return sh.LagSeconds, true
	case lastPullFamily:
		return float64(sh.LastPull.UnixMilli()) / 1e3, !sh.LastPull.IsZero()
	}
	return 0, false
}

// labelCache keeps each logstore's rendered labels between scrapes.
type labelCache struct{ m sync.Map }

func (c *labelCache) text(t Target) string {
	if v, ok := c.m.Load(t); ok {
		return v.(string)
	}
	s := targetLabelText(t)
	c.m.Store(t, s)
	return s
}

// hotCollector serves the same families through the registry, for the
// exposition formats the direct writer does not produce and for tests.
type hotCollector struct{ m *Metrics }

func (c hotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range hotFamilies {
		ch <- f.desc
	}
}

func (c hotCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.readHotState()
	for i, ss := range st.shards {
		t, shard := ss.key.target, strconv.Itoa(ss.key.shard)
		for _, rs := range st.rules[i] {
			ch <- prometheus.MustNewConstMetric(matchesFamily.desc, prometheus.CounterValue, float64(rs.count.Value()),
				t.Region, t.Project, t.Logstore, shard, rs.rule.Field, rs.rule.Name)
		}
		ch <- prometheus.MustNewConstMetric(logsFamily.desc, prometheus.CounterValue, float64(ss.logs.Value()), t.Region, t.Project, t.Logstore, shard)
		ch <- prometheus.MustNewConstMetric(bytesFamily.desc, prometheus.CounterValue, float64(ss.bytes.Value()), t.Region, t.Project, t.Logstore, shard)
	}
	for _, s := range st.states {
		t := s.Target
		for _, f := range []*family{upFamily, shardsHeldFamily, readonlyHeldFamily, logstoreShardsFamily, groupTimeoutFamily} {
			if v, ok := targetValue(f, &s); ok {
				ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, v, t.Region, t.Project, t.Logstore)
			}
		}
		for _, sh := range s.Held {
			for _, f := range []*family{lagFamily, lastPullFamily} {
				if v, ok := shardValue(f, &sh); ok {
					ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, v, t.Region, t.Project, t.Logstore, strconv.Itoa(sh.ID))
				}
			}
		}
	}
}

// gzipWriters are reused between scrapes; BestSpeed: a scrape every second
// must not cost more to compress than to produce.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}
