// Consumer health as const metrics at scrape time: up, shards held, the group's timeout, lag and last pull per shard.
package collector

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LogstoreState is what a consumer knows of one logstore right now.
type LogstoreState struct {
	Target
	// Up is false after several consecutive failed heartbeats or pulls, or
	// while the logstore cannot be reached at all (not found, AccessKey refused).
	Up bool
	// ReadwriteShards is the logstore's readwrite shard count, -1 before it is known.
	ReadwriteShards int
	// GroupTimeout is the consumer group's timeout, 0 before it is known.
	GroupTimeout time.Duration
	// Held are the shards this replica consumes, readonly ones included.
	Held []ShardState
}

// ShardState is one held shard.
type ShardState struct {
	ID int
	// Readonly shards (split or merged parents) are read to their end but
	// not counted in sls_consumer_shards_held, which compares with the
	// logstore's readwrite shards.
	Readonly bool
	// LagSeconds is how far this shard's consumption trails its newest data:
	// the receive time of the newest log group minus that of the first group
	// not yet consumed, 0 when nothing is left to read.
	LagSeconds float64
	// LastPull is when a pull of the shard last succeeded (zero: not yet).
	LastPull time.Time
}

// StateSource reports consumer state at scrape time.
type StateSource interface {
	LogstoreStates() []LogstoreState
}

var (
	upDesc = prometheus.NewDesc("sls_up",
		"Whether the logstore's consumer can reach SLS: 0 while the logstore or AccessKey is refused, or after 3 consecutive failed heartbeats or pulls.",
		targetLabels, nil)
	shardsHeldDesc = prometheus.NewDesc("sls_consumer_shards_held",
		"Readwrite shards of the logstore this replica consumes; sum over replicas below sls_logstore_shards means unowned shards.",
		targetLabels, nil)
	readonlyHeldDesc = prometheus.NewDesc("sls_consumer_readonly_shards_held",
		"Readonly shards (parents of a split or merge) this replica still reads to their end.",
		targetLabels, nil)
	logstoreShardsDesc = prometheus.NewDesc("sls_logstore_shards",
		"Readwrite shards of the logstore.", targetLabels, nil)
	groupTimeoutDesc = prometheus.NewDesc("sls_consumer_group_timeout_seconds",
		"The consumer group's timeout: a member silent this long loses its shards to the others.",
		targetLabels, nil)
	lagDesc = prometheus.NewDesc("sls_consumer_lag_seconds",
		"Receive time of the shard's newest log group minus that of the first group not yet consumed; 0 when caught up.",
		shardLabels, nil)
	lastPullDesc = prometheus.NewDesc("sls_consumer_last_pull_timestamp_seconds",
		"When a pull of the shard last succeeded; a shard whose pulls fail stops advancing it.",
		shardLabels, nil)
)

type stateCollector struct{ source atomic.Pointer[StateSource] }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upDesc
	ch <- shardsHeldDesc
	ch <- readonlyHeldDesc
	ch <- logstoreShardsDesc
	ch <- groupTimeoutDesc
	ch <- lagDesc
	ch <- lastPullDesc
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
		readwrite, readonly := 0, 0
		for _, sh := range s.Held {
			if sh.Readonly {
				readonly++
			} else {
				readwrite++
			}
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, t.Region, t.Project, t.Logstore)
		ch <- prometheus.MustNewConstMetric(shardsHeldDesc, prometheus.GaugeValue, float64(readwrite), t.Region, t.Project, t.Logstore)
		ch <- prometheus.MustNewConstMetric(readonlyHeldDesc, prometheus.GaugeValue, float64(readonly), t.Region, t.Project, t.Logstore)
		if s.ReadwriteShards >= 0 {
			ch <- prometheus.MustNewConstMetric(logstoreShardsDesc, prometheus.GaugeValue, float64(s.ReadwriteShards), t.Region, t.Project, t.Logstore)
		}
		if s.GroupTimeout > 0 {
			ch <- prometheus.MustNewConstMetric(groupTimeoutDesc, prometheus.GaugeValue, s.GroupTimeout.Seconds(), t.Region, t.Project, t.Logstore)
		}
		for _, sh := range s.Held {
			id := strconv.Itoa(sh.ID)
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, sh.LagSeconds, t.Region, t.Project, t.Logstore, id)
			if !sh.LastPull.IsZero() {
				ch <- prometheus.MustNewConstMetric(lastPullDesc, prometheus.GaugeValue, float64(sh.LastPull.UnixMilli())/1e3, t.Region, t.Project, t.Logstore, id)
			}
		}
	}
}
