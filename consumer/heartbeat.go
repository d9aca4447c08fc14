// Consumer-group heartbeats: every member's, batched on one scheduler, and the shards the server grants in return.
package consumer

import (
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

func (m *member) slot() *schedSlot { return &m.hbSlot }

// heartbeatJob tells SLS which shards the member holds, then comes again
// after an interval, until the member stops heartbeating.
func (e *Manager) heartbeatJob(m *member) {
	m.heartbeat()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hbStopped {
		m.hbDoneOnce.Do(func() { close(m.hbDone) })
		return
	}
	// ±10% jitter keeps a thousand members from heartbeating in step.
	interval := m.settings.HeartbeatInterval
	m.heartbeats.schedule(m, time.Now().Add(interval-interval/10+time.Duration(rand.Int64N(int64(interval/5)+1))), false)
}

// heartbeatWorkers run every member's heartbeats; when all are busy (a
// region answering slowly), a batch runs on a goroutine of its own.
const (
	heartbeatWorkers = 4
	heartbeatSlack   = 100 * time.Millisecond
)

// heartbeatBatch runs the heartbeats of a batch at once: their answers
// arrive together, so the batch costs one wake-up rather than one each.
func (e *Manager) heartbeatBatch(batch []*member) {
	if len(batch) == 1 {
		e.heartbeatJob(batch[0])
		return
	}
	var wg sync.WaitGroup
	for _, m := range batch {
		wg.Go(func() { e.heartbeatJob(m) })
	}
	wg.Wait()
}

// stopHeartbeats ends the member's heartbeats, waiting for one in flight.
func (m *member) stopHeartbeats() {
	m.mu.Lock()
	m.hbStopped = true
	idle := !m.hbStarted || m.heartbeats.unschedule(m)
	m.mu.Unlock()
	if idle {
		m.hbDoneOnce.Do(func() { close(m.hbDone) })
	}
	<-m.hbDone
}

func (m *member) heartbeat() {
	m.mu.Lock()
	if !m.groupReady {
		m.mu.Unlock()
		return
	}
	reported := make([]int, 0, len(m.shards))
	for id := range m.shards {
		reported = append(reported, id)
	}
	m.mu.Unlock()
	sort.Ints(reported)

	granted, err := m.client.HeartBeat(m.cfg.Project, m.cfg.Logstore, m.settings.ConsumerGroup, m.settings.ConsumerName, reported)
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if stopped(m.ctx, err) {
			return
		}
		code := errorCode(err)
		m.eng.metrics.CountError(m.labels, "HeartBeat", code)
		m.hbFailures++
		if m.hbFailures == upFailureThreshold {
			m.logger.Warn("Heartbeats keep failing", "err", err)
		}
		if code == codeLogStoreNotExist && m.onGone != nil {
			m.onGone()
		}
		switch {
		case code == codeGroupNotExist:
			// Someone deleted the group: create it again.
			m.groupReady, m.needGroup = false, true
			m.resume = make(map[int]*shardState, len(m.shards))
			for id, sh := range m.shards {
				if sh.status == shardActive {
					m.resume[id] = sh
				}
			}
			m.dropAllLocked("the consumer group no longer exists")
			m.wake()
		case code == codeNotExistConsumerWithBo:
			// The server expired this consumer: our shards may be someone
			// else's now. Rejoin with an empty heartbeat.
			m.dropAllLocked("the group expired this consumer")
		case !m.lastHeartbeatOK.IsZero() && now.Sub(m.lastHeartbeatOK) > m.groupTimeout:
			m.dropAllLocked("heartbeats failed for longer than the group's timeout")
		}
		return
	}
	m.hbFailures = 0
	m.lastHeartbeatOK = now
	m.applyGrantLocked(granted, now)
}

// applyGrantLocked takes newly granted shards and drains those no longer granted.
func (m *member) applyGrantLocked(granted []int, now time.Time) {
	isGranted := make(map[int]bool, len(granted))
	changed := false
	for _, id := range granted {
		isGranted[id] = true
		sh, held := m.shards[id]
		switch {
		case m.stopping:
		case !held:
			m.shards[id] = newShardState(id, m)
			m.unretireLocked(id)
			changed = true
		case sh.status == shardDraining:
			// The handover was called off: keep reading.
			sh.status = shardActive
			m.eng.activeShards.Add(1)
			if !sh.inFlight { // else its puller schedules it when done
				m.sched.schedule(sh, now, false)
			}
		}
	}
	for id, sh := range m.shards {
		if !isGranted[id] && sh.status != shardDraining {
			m.beginDrainLocked(sh, now.Add(m.eng.stopTimeout))
			changed = true
		}
	}
	if changed {
		m.wake()
	}
}
