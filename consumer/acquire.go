// Taking a shard: its start position (checkpoint, configured start, a split's or a recreated group's resume point), retried with backoff when the calls fail.
package consumer

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// acquire reads the start cursor of newly granted shards: the group's
// checkpoint, or where cursor_start says for shards without one.
func (m *member) acquire(now time.Time) {
	m.mu.Lock()
	var due []*shardState
	unknown := false
	for _, sh := range m.shards {
		if sh.status == shardAcquiring && !now.Before(sh.retryAt) {
			due = append(due, sh)
			if _, ok := m.meta[sh.id]; !ok {
				unknown = true
			}
		}
	}
	m.mu.Unlock()
	if len(due) == 0 {
		return
	}
	if unknown {
		// A shard we have not seen: a split's or merge's child.
		if err := m.listShards(); err != nil {
			m.retryAcquire(due, err)
			return
		}
	}
	checkpoints, err := m.client.GetCheckpoint(m.cfg.Project, m.cfg.Logstore, m.settings.ConsumerGroup)
	if err != nil {
		m.countError("GetCheckpoint", err)
		m.retryAcquire(due, err)
		return
	}
	saved := make(map[int]string, len(checkpoints))
	for _, cp := range checkpoints {
		saved[cp.ShardID] = cp.CheckPoint
	}
	for _, sh := range due {
		m.acquireShard(sh, saved, now)
	}
}

func (m *member) retryAcquire(shards []*shardState, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	warn := false
	for _, sh := range shards {
		sh.acquireTries++
		sh.retryAt = time.Now().Add(backoff(sh.acquireTries, 200*time.Millisecond))
		warn = warn || sh.acquireTries == upFailureThreshold
	}
	switch {
	case stopped(m.ctx, err):
	case warn:
		m.logger.Warn("Reading start cursors keeps failing; the shards are held but not consumed", "err", err)
	default:
		m.logger.Debug("Reading start cursors failed; retrying", "err", err)
	}
}

func (m *member) acquireShard(sh *shardState, saved map[int]string, now time.Time) {
	m.mu.Lock()
	reset := sh.resetToBegin
	checkpoint := saved[sh.id]
	if old := m.resume[sh.id]; old != nil && checkpoint == "" && !reset {
		if old.inFlight {
			m.mu.Unlock()
			m.retryAcquire([]*shardState{sh}, errors.New("the shard's last pull before the group vanished is still running"))
			return
		}
		m.resumeLocked(sh, old)
		m.mu.Unlock()
		return
	}
	from := ""
	if reset || checkpoint == "" {
		from = m.startPositionLocked(sh.id, saved)
		if reset {
			from = "begin"
		}
	}
	m.mu.Unlock()

	cursor, startEntry := checkpoint, false
	if from != "" {
		c, err := m.client.GetCursor(m.cfg.Project, m.cfg.Logstore, sh.id, from)
		if err != nil {
			m.countError("GetCursor", err)
			m.retryAcquire([]*shardState{sh}, err)
			return
		}
		cursor, startEntry = c, true
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shards[sh.id] != sh || sh.status != shardAcquiring {
		return // released meanwhile
	}
	if sh.work == nil {
		sh.work = m.eng.newShardWork(m, sh.id)
	}
	sh.cursor = cursor
	if startEntry {
		// Nothing is counted before the start position: it may be
		// committed at once, so the group records where it started. After
		// an expired cursor, batches counted before it still wait for
		// their scrape: the entry goes no earlier than theirs.
		var epoch uint64
		if n := len(sh.pending); n > 0 {
			epoch = sh.pending[n-1].epoch
		}
		sh.pending = append(sh.pending, ackEntry{epoch: epoch, cursor: cursor})
	} else {
		sh.committed = cursor
	}
	sh.resetToBegin = false
	sh.acquireTries = 0
	sh.readonly = m.meta[sh.id].readonly
	sh.status = shardActive
	m.eng.activeShards.Add(1)
	m.sched.schedule(sh, now.Add(m.eng.firstPollDelay(m.settings)), false)
	m.logger.Debug("Shard acquired", "shard", sh.id, "from", fmt.Sprintf("%s%s", map[bool]string{true: "start position ", false: "checkpoint"}[startEntry], from), "readonly", sh.readonly)
}

// resumeLocked takes a shard of a recreated group at the position it had
// when the group vanished: its counted batches keep their scrape epochs and
// are committed as the scrapes acknowledge them.
func (m *member) resumeLocked(sh, old *shardState) {
	delete(m.resume, sh.id)
	if m.shards[sh.id] != sh || sh.status != shardAcquiring {
		return
	}
	if sh.work == nil {
		sh.work = m.eng.newShardWork(m, sh.id)
	}
	sh.cursor = old.cursor
	sh.pending = append(sh.pending[:0], old.pending...)
	if len(sh.pending) == 0 {
		sh.pending = append(sh.pending, ackEntry{epoch: 0, cursor: old.cursor})
	}
	sh.acquireTries = 0
	sh.readonly = m.meta[sh.id].readonly
	sh.status = shardActive
	m.eng.activeShards.Add(1)
	m.sched.schedule(sh, time.Now(), false)
	m.logger.Debug("Shard acquired", "shard", sh.id, "from", "its position before the group vanished", "readonly", sh.readonly)
}

// startPositionLocked is where a shard without a checkpoint starts. A
// split's or merge's child is read from its beginning whatever cursor_start
// says, or the logs written before it was taken would be lost: it is one
// that appeared while this member ran, or one whose key range overlaps a
// readonly parent the group has consumed (a checkpoint) and that is no
// older than it. A younger shard alone proves nothing: a group taken over
// from an SDK consumer has no checkpoint for its quiet shards.
func (m *member) startPositionLocked(id int, saved map[int]string) string {
	if m.fromBegin || m.settings.CursorStart == "begin" {
		return "begin"
	}
	if m.knownAtStart != nil && !m.knownAtStart[id] {
		return "begin"
	}
	me := m.meta[id]
	for other, cp := range saved {
		if parent := m.meta[other]; cp != "" && other != id && parent.readonly && parent.overlaps(me) && parent.createdAt <= me.createdAt {
			return "begin"
		}
	}
	if m.settings.CursorStart == "end" {
		return "end"
	}
	return strconv.FormatInt(m.settings.CursorStartTime.Unix(), 10)
}
