// A held shard: where it is in its life, the next cursor to pull, and the counted batches waiting for a scrape.
package consumer

import (
	"time"
)

// shardStatus is where a held shard is in its life.
type shardStatus int

const (
	// shardAcquiring: granted by a heartbeat; its start cursor is being read.
	shardAcquiring shardStatus = iota
	// shardActive: pulled by the scheduler.
	shardActive
	// shardDraining: no longer granted, or the member stops. No more pulls;
	// still reported in heartbeats until its counts are scraped and committed.
	shardDraining
)

func (s shardStatus) String() string {
	switch s {
	case shardAcquiring:
		return "acquiring"
	case shardActive:
		return "active"
	}
	return "draining"
}

// ackEntry is a counted batch: the cursor after it, and the scrape epoch at
// which its counts were added. Its cursor may be committed once a served
// scrape has acknowledged that epoch.
type ackEntry struct {
	epoch  uint64
	cursor string
}

// shardState is one shard this member holds. Fields below the scheduler's
// are guarded by the member's mutex; work belongs to the puller that holds
// the shard (a shard is never pulled twice at once).
type shardState struct {
	id     int
	member *member

	// Scheduler bookkeeping, under scheduler.mu.
	sched schedSlot

	status   shardStatus
	readonly bool // a split or merge made it readonly: read it to its end
	finished bool // readonly and read to its end: nothing left to pull
	// endCommitted: a finished shard's checkpoint at its end is written.
	endCommitted bool
	inFlight     bool // a puller has it
	// resetToBegin: the cursor expired (InvalidCursor); restart at the
	// oldest retained data, which loses the least.
	resetToBegin bool

	cursor    string     // next position to pull
	committed string     // last checkpoint written (or read) for the group
	pending   []ackEntry // counted batches newer than committed, oldest first

	drainDeadline time.Time // when a draining shard is released anyway
	retryAt       time.Time // acquiring: when to try reading the cursor again
	acquireTries  int
	// A draining shard's failed commit is tried again after a backoff,
	// not at every step of the drain.
	commitRetryAt  time.Time
	commitFailures int

	lastPull     time.Time
	pullFailures int // consecutive failed pulls
	caughtUp     bool
	lagSeconds   float64

	// Owned by the puller that holds the shard.
	work   *shardWork
	signed signedPull
}

func newShardState(id int, m *member) *shardState {
	return &shardState{id: id, member: m, sched: schedSlot{index: -1}, status: shardAcquiring}
}

func (sh *shardState) slot() *schedSlot { return &sh.sched }

// ackable is the newest pending cursor whose counts a served scrape has
// acknowledged (all pending when unconditional), and how many entries that covers.
func (sh *shardState) ackable(acked uint64, unconditional bool) (cursor string, n int) {
	for i, e := range sh.pending {
		if !unconditional && e.epoch > acked {
			break
		}
		cursor, n = e.cursor, i+1
	}
	return cursor, n
}

// allAcked reports whether no counted batch waits for a scrape.
func (sh *shardState) allAcked(acked uint64) bool {
	return len(sh.pending) == 0 || sh.pending[len(sh.pending)-1].epoch <= acked
}

// newestEpoch is the epoch of the newest counted batch (0 if none).
func (sh *shardState) newestEpoch() uint64 {
	if len(sh.pending) == 0 {
		return 0
	}
	return sh.pending[len(sh.pending)-1].epoch
}

// backoff is the wait after n consecutive failures: doubling from base, capped
// so that a shard recovers within a few seconds after a fault ends.
func backoff(n int, base time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < maxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, maxRetryBackoff)
}

// maxRetryBackoff caps every retry: after a fault of any length ends, work
// resumes within this (plus one request).
const maxRetryBackoff = 3 * time.Second
