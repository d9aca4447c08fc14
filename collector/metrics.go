// Package collector turns matches and consumer state into Prometheus metrics; it knows nothing of the SDK.
package collector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
)

const namespace = "sls"

// Target names one logstore by its metric labels.
type Target struct {
	Region   string
	Project  string
	Logstore string
}

// RuleLabels are a rule's labels on match metrics.
type RuleLabels struct {
	Name  string
	Field string
}

// Metrics holds every metric family the exporter exposes.
type Metrics struct {
	errors *prometheus.CounterVec

	lastMatch *lastMatchCollector

	canaryLatency *prometheus.GaugeVec

	reloadSuccess   prometheus.Gauge
	reloadTimestamp prometheus.Gauge

	unscrapedCommits *prometheus.CounterVec

	discovered      *prometheus.GaugeVec
	discoveryErrors *prometheus.CounterVec

	// The per-shard and per-logstore families (exposition.go): written
	// directly by Handler, and served by hotRegistry for everything else.
	shards      *shardStore
	state       *stateSlot
	labelCache  labelCache
	hotRegistry *prometheus.Registry
	scrapeBuf   scrapeBuffer

	// Acks tells the consumers which counts a Prometheus scrape has served.
	Acks *ScrapeAcks
}

// New creates the metric families and registers them, a consumer-state
// collector (fed once SetStateSource is called) and build info on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "consumer_errors_total",
			Help: "Failed SLS calls and processing errors by operation and SLS error code.",
		}, []string{"region", "project", "logstore", "operation", "code"}),
		lastMatch: newLastMatchCollector(),
		canaryLatency: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "canary_latency_seconds",
			Help: "Delay from writing the last canary log to counting it.",
		}, targetLabels),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "sls_keyword_exporter", Name: "config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded.",
		}),
		reloadTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "sls_keyword_exporter", Name: "config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
		unscrapedCommits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "consumer_unscraped_commits_total",
			Help: "Checkpoint commits made past counts no Prometheus scrape had acknowledged, because nothing scraped for unscraped_commit_after.",
		}, targetLabels),
		discovered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "discovery_logstores",
			Help: "Logstores of the project matching its logstore patterns at the last successful listing.",
		}, []string{"region", "project"}),
		discoveryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "discovery_errors_total",
			Help: "Failed listings of a project's logstores, by SLS error code (ClientError: no answer).",
		}, []string{"region", "project", "code"}),
		shards:      newShardStore(),
		state:       &stateSlot{},
		hotRegistry: prometheus.NewRegistry(),
		Acks:        NewScrapeAcks(),
	}
	m.hotRegistry.MustRegister(hotCollector{m})
	scrapesAcked := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "sls_keyword_exporter", Name: "scrapes_acknowledged_total",
		Help: "Scrapes carrying Prometheus's X-Prometheus-Scrape-Timeout-Seconds header that were served whole; only these let checkpoints advance.",
	}, func() float64 { return float64(m.Acks.Served()) })
	lastAck := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "sls_keyword_exporter", Name: "last_scrape_acknowledged_timestamp_seconds",
		Help: "When a Prometheus scrape last acknowledged the counts (0: never).",
	}, func() float64 {
		if t := m.Acks.LastAck(); !t.IsZero() {
			return float64(t.UnixNano()) / 1e9
		}
		return 0
	})
	reg.MustRegister(m.errors, m.lastMatch, m.canaryLatency,
		m.reloadSuccess, m.reloadTimestamp, m.unscrapedCommits, m.discovered, m.discoveryErrors, scrapesAcked, lastAck,
		versioncollector.NewCollector("sls_keyword_exporter"))
	return m
}

// SetStateSource sets where consumer health is read at scrape time.
func (m *Metrics) SetStateSource(source StateSource) { m.state.source.Store(&source) }

// ShardCounters returns a shard's counters for rules, creating every series
// at 0 so that the first match is visible to rate() and increase().
func (m *Metrics) ShardCounters(t Target, shard int, rules []RuleLabels) *ShardCounters {
	return m.shards.counters(t, shard, rules)
}

// ForgetRules drops every series of rules no longer configured.
func (m *Metrics) ForgetRules(keep []RuleLabels) {
	kept := map[RuleLabels]bool{}
	for _, r := range keep {
		kept[r] = true
	}
	m.lastMatch.retain(func(k lastMatchKey) bool { return kept[RuleLabels{k.rule, k.field}] })
	m.shards.forgetRules(kept)
}

// ForgetSamples drops the last-match samples of rules whose sampling
// changed (sample_fields, redaction, length): a sample shown under the old
// settings, perhaps with a secret a new redaction masks, must not stay.
func (m *Metrics) ForgetSamples(rules []RuleLabels) {
	if len(rules) == 0 {
		return
	}
	drop := map[RuleLabels]bool{}
	for _, r := range rules {
		drop[r] = true
	}
	m.lastMatch.retain(func(k lastMatchKey) bool { return !drop[RuleLabels{k.rule, k.field}] })
}

// KeepRules drops one logstore's series of rules no longer applied to it
// (a rule's logstores: scope changed).
func (m *Metrics) KeepRules(t Target, keep []RuleLabels) {
	kept := map[RuleLabels]bool{}
	for _, r := range keep {
		kept[r] = true
	}
	m.lastMatch.retain(func(k lastMatchKey) bool { return k.target != t || kept[RuleLabels{k.rule, k.field}] })
	m.shards.forgetTargetRules(t, kept)
}

// RetireShard takes a released shard's series off the page; call it once its
// last counts have been scraped. Taken again, the shard continues from its
// counts: a series that came back from 0 would hide them from increase().
func (m *Metrics) RetireShard(t Target, shard int) { m.shards.retireShard(t, shard) }

// DeleteShard forgets a shard that will not come back (a split's or
// merge's readonly parent, read to its end): auto-split keeps making new
// shard IDs.
func (m *Metrics) DeleteShard(t Target, shard int) { m.shards.deleteShard(t, shard) }

// DeleteTarget drops every series of a logstore no longer consumed.
func (m *Metrics) DeleteTarget(t Target) {
	l := prometheus.Labels{"region": t.Region, "project": t.Project, "logstore": t.Logstore}
	m.shards.deleteTarget(t)
	m.errors.DeletePartialMatch(l)
	m.canaryLatency.DeletePartialMatch(l)
	m.unscrapedCommits.DeletePartialMatch(l)
	m.lastMatch.retain(func(k lastMatchKey) bool { return k.target != t })
}

// SetDiscovered records how many logstores a project's patterns matched.
func (m *Metrics) SetDiscovered(region, project string, n int) {
	m.discovered.WithLabelValues(region, project).Set(float64(n))
}

// DeleteDiscovery drops a project's discovery series: its patterns are no
// longer configured.
func (m *Metrics) DeleteDiscovery(region, project string) {
	l := prometheus.Labels{"region": region, "project": project}
	m.discovered.DeletePartialMatch(l)
	m.discoveryErrors.DeletePartialMatch(l)
}

// CountDiscoveryError counts a failed listing of a project's logstores.
func (m *Metrics) CountDiscoveryError(region, project, code string) {
	m.discoveryErrors.WithLabelValues(region, project, code).Inc()
}

// CountUnscrapedCommit counts a checkpoint committed without a scrape's acknowledgement.
func (m *Metrics) CountUnscrapedCommit(t Target) {
	m.unscrapedCommits.WithLabelValues(t.Region, t.Project, t.Logstore).Inc()
}

// CountError counts a failed operation on a target.
func (m *Metrics) CountError(t Target, operation, code string) {
	m.errors.WithLabelValues(t.Region, t.Project, t.Logstore, operation, code).Inc()
}

// RecordLastMatch keeps sample as the last match of (target, field, rule)
// unless a newer one (by log time) is already held. The timestamp follows
// every newer match; with minInterval > 0 the sample label changes at most
// once per minInterval (each label value is a series of its own), showing
// the newest sample held back once the interval has passed.
func (m *Metrics) RecordLastMatch(t Target, r RuleLabels, sample string, logTime float64, minInterval time.Duration) {
	m.lastMatch.record(lastMatchKey{t, r.Field, r.Name}, sample, logTime, minInterval)
}

// SetCanaryLatency records a canary's write-to-count delay.
func (m *Metrics) SetCanaryLatency(t Target, seconds float64) {
	m.canaryLatency.WithLabelValues(t.Region, t.Project, t.Logstore).Set(seconds)
}

// SetReloadResult records the outcome of loading the configuration.
func (m *Metrics) SetReloadResult(ok bool, at float64) {
	if ok {
		m.reloadSuccess.Set(1)
		m.reloadTimestamp.Set(at)
		return
	}
	m.reloadSuccess.Set(0)
}
