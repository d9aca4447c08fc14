// Checkpoints that Prometheus has seen: commit only past batches a served scrape acknowledged, then release drained shards.
package consumer

import (
	"time"
)

// commitJob is one UpdateCheckpoint to send.
type commitJob struct {
	sh        *shardState
	cursor    string
	entries   int  // pending entries the cursor covers
	unscraped bool // it covers counts no scrape acknowledged
}

// unscraped reports whether nothing has acknowledged counts for so long
// that checkpoints must advance anyway (no Prometheus scrapes this replica).
func (e *Manager) unscraped(now time.Time, after time.Duration) bool {
	last := e.acks.LastAck()
	if last.Before(e.startedAt) {
		last = e.startedAt
	}
	return now.Sub(last) > after
}

// commit writes each held shard's newest acknowledged cursor, every
// commit_interval. forceSuccess is false: if another member holds the shard
// now, SLS refuses instead of letting us overwrite its checkpoint.
func (m *member) commit(now time.Time, always bool) {
	m.mu.Lock()
	if !always && now.Sub(m.lastCommit) < m.settings.CommitInterval {
		m.mu.Unlock()
		return
	}
	m.lastCommit = now
	if m.gone {
		m.mu.Unlock()
		return
	}
	acked := m.eng.acks.Acked()
	unconditional := m.eng.unscraped(now, m.settings.UnscrapedCommitAfter)
	var jobs []commitJob
	for _, sh := range m.shards {
		if sh.status == shardAcquiring {
			continue
		}
		if job, ok := m.commitJobLocked(sh, acked, unconditional); ok {
			jobs = append(jobs, job)
		}
	}
	m.mu.Unlock()
	for _, job := range jobs {
		m.sendCommit(job)
	}
}

// commitJobLocked is the commit a shard needs, if any.
func (m *member) commitJobLocked(sh *shardState, acked uint64, unconditional bool) (commitJob, bool) {
	cursor, n := sh.ackable(acked, unconditional)
	if n > 0 && cursor == sh.committed {
		sh.pending = sh.pending[n:]
		n = 0
	}
	if n == 0 {
		// A readonly shard read to its end is done with once a checkpoint
		// at its end is written (SLS then stops granting it), even when
		// the group's checkpoint was there already.
		if sh.finished && !sh.endCommitted && len(sh.pending) == 0 {
			return commitJob{sh: sh, cursor: sh.cursor}, true
		}
		return commitJob{}, false
	}
	return commitJob{sh: sh, cursor: cursor, entries: n, unscraped: sh.pending[n-1].epoch > acked}, true
}

// sendCommit sends one checkpoint and applies the answer; it reports
// whether the shard needs no further commit (written, or no longer ours).
func (m *member) sendCommit(job commitJob) bool {
	sh := job.sh
	err := m.client.UpdateCheckpoint(m.cfg.Project, m.cfg.Logstore, m.settings.ConsumerGroup, m.settings.ConsumerName, sh.id, job.cursor, false)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if stopped(m.ctx, err) {
			return false
		}
		code := errorCode(err)
		m.eng.metrics.CountError(m.labels, "UpdateCheckpoint", code)
		if lostOwnership(code) {
			m.logger.Warn("Shard is no longer ours; dropping it without its checkpoint", "shard", sh.id, "code", code)
			if m.shards[sh.id] == sh {
				m.retireLocked(sh)
				delete(m.shards, sh.id)
			}
			return true
		}
		sh.commitFailures++
		sh.commitRetryAt = time.Now().Add(backoff(sh.commitFailures, 100*time.Millisecond))
		m.logger.Debug("Committing a checkpoint failed; retrying", "shard", sh.id, "err", err)
		return false
	}
	sh.commitFailures = 0
	if sh.finished && job.cursor == sh.cursor {
		sh.endCommitted = true
	}
	if job.unscraped {
		m.eng.metrics.CountUnscrapedCommit(m.labels)
	}
	sh.committed = job.cursor
	if job.entries <= len(sh.pending) {
		sh.pending = sh.pending[job.entries:]
	}
	return true
}

// releaseDrained commits what a scrape has acknowledged of each draining
// shard as soon as it is acknowledged, and releases the shard once every
// counted batch is (or its deadline passed): what no scrape saw is read
// again by whoever takes the shard.
func (m *member) releaseDrained(now time.Time) {
	m.mu.Lock()
	acked := m.eng.acks.Acked()
	unconditional := m.eng.unscraped(now, m.settings.UnscrapedCommitAfter)
	var draining []*shardState
	for _, sh := range m.shards {
		if sh.status == shardDraining && !sh.inFlight {
			draining = append(draining, sh)
		}
	}
	m.mu.Unlock()

	for _, sh := range draining {
		m.mu.Lock()
		job, needCommit := m.commitJobLocked(sh, acked, unconditional)
		needCommit = needCommit && !m.gone
		backingOff := needCommit && now.Before(sh.commitRetryAt)
		m.mu.Unlock()
		committed := !needCommit || (!backingOff && m.sendCommit(job))
		m.mu.Lock()
		complete := committed && (sh.allAcked(acked) || unconditional)
		if m.shards[sh.id] == sh && (complete || !now.Before(sh.drainDeadline)) {
			m.retireLocked(sh)
			delete(m.shards, sh.id)
			m.logger.Debug("Shard released", "shard", sh.id, "checkpoint", sh.committed, "unscraped_batches", len(sh.pending))
		}
		m.mu.Unlock()
	}
}

// deleteRetiredSeries takes released shards' series off the page once a
// scrape has served their last counts.
func (m *member) deleteRetiredSeries(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.retired) == 0 {
		return
	}
	acked := m.eng.acks.Acked()
	unconditional := m.eng.unscraped(now, m.settings.UnscrapedCommitAfter)
	kept := m.retired[:0]
	for _, r := range m.retired {
		if _, held := m.shards[r.id]; held {
			continue // taken again: its series live on
		}
		if r.epoch <= acked || unconditional {
			if r.forever {
				m.eng.metrics.DeleteShard(m.labels, r.id)
			} else {
				m.eng.metrics.RetireShard(m.labels, r.id)
			}
			continue
		}
		kept = append(kept, r)
	}
	m.retired = kept
}
