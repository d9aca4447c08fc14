// Consumer health as const metrics at scrape time: up, shards held, readwrite shards, lag per shard.
package collector

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// LogstoreState is what a consumer knows of one logstore right now.
type LogstoreState struct {
	Target
	// Up is true while the consumer can talk to SLS: the logstore exists, the
	// AccessKey is accepted and the last heartbeat succeeded.
	Up bool
	// ReadwriteShards is the logstore's readwrite shard count, -1 before it is known.
	ReadwriteShards int
	// Held are the shards this replica consumes, with their lag.
	Held []ShardState
}

// ShardState is one held shard.
type ShardState struct {
	ID int
	// LagSeconds is how far this shard's consumption trails its newest data:
	// the receive time of the newest log group minus that of the first group
	// not yet consumed, 0 when nothing is left to read.
	LagSeconds float64
}

// StateSource reports consumer state at scrape time.
type StateSource interface {
	LogstoreStates() []LogstoreState
}

var (
	upDesc = prometheus.NewDesc("sls_up",
		"Whether the logstore's consumer can reach SLS: logstore found, AccessKey accepted, last heartbeat succeeded.",
		targetLabels, nil)
	shardsHeldDesc = prometheus.NewDesc("sls_consumer_shards_held",
		"Shards of the logstore this replica consumes; sum over replicas below sls_logstore_shards means unowned shards.",
		targetLabels, nil)
	logstoreShardsDesc = prometheus.NewDesc("sls_logstore_shards",
		"Readwrite shards of the logstore.", targetLabels, nil)
	lagDesc = prometheus.NewDesc("sls_consumer_lag_seconds",
		"Receive time of the shard's newest log group minus that of the first group not yet consumed; 0 when caught up.",
		shardLabels, nil)
)

type stateCollector struct{ source atomic.Pointer[StateSource] }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upDesc
	ch <- shardsHeldDesc
	ch <- logstoreShardsDesc
	ch <- lagDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	source := c.source.Load()
	if source == nil {
		return
	}
	for _, s := range (*source).LogstoreStates() {
		t := s.Target
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, t.Region, t.Project, t.Logstore)
		ch <- prometheus.MustNewConstMetric(shardsHeldDesc, prometheus.GaugeValue, float64(len(s.Held)), t.Region, t.Project, t.Logstore)
		if s.ReadwriteShards >= 0 {
			ch <- prometheus.MustNewConstMetric(logstoreShardsDesc, prometheus.GaugeValue, float64(s.ReadwriteShards), t.Region, t.Project, t.Logstore)
		}
		for _, sh := range s.Held {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, sh.LagSeconds, t.Region, t.Project, t.Logstore, strconv.Itoa(sh.ID))
		}
	}
}
