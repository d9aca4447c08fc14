// Consumer health read at scrape time: what a consumer knows of each logstore and shard it holds.
package collector

import (
	"sync/atomic"
	"time"
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

// stateSlot holds the source, set once the consumers exist.
type stateSlot struct{ source atomic.Pointer[StateSource] }
