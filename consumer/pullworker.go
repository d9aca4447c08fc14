// The pull workers: a batch of due shards polled together, answers read in order with late ones left to goroutines, counts added and the next poll scheduled.
package consumer

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// The automatic idle interval aims at idlePollsPerSecond polls of quiet
// shards: up to about 2,000 shards a quiet shard is polled more often than
// every maxIdleInterval, above that every maxIdleInterval. A log then shows
// within that plus a round trip whatever the number of shards (the bar is
// 1.5 s), for a bounded number of small requests a second.
const (
	idlePollsPerSecond = 1700
	maxIdleInterval    = 1200 * time.Millisecond
)

// idleInterval is how long a quiet shard waits before its next poll.
func (e *Manager) idleInterval(s Settings) time.Duration {
	if s.IdlePollInterval > 0 {
		return s.IdlePollInterval
	}
	n := e.activeShards.Load()
	return min(max(time.Duration(n)*time.Second/idlePollsPerSecond, s.FetchInterval), maxIdleInterval)
}

// busyPullBytes: a pull this large means more is waiting; pull again at once.
const busyPullBytes = 1 << 20

// pullSlack: quiet shards due within this of each other are polled in one
// batch (one wake-up of a worker), a few milliseconds early.
const pullSlack = 50 * time.Millisecond

// newPullWorker gives each worker of the pool its own walker and buffers.
// A worker sends the polls of its whole batch before reading any answer:
// a batch of quiet shards then costs one wake-up instead of one each.
func (e *Manager) newPullWorker() func([]*shardState) {
	raw := newRawBatch()
	var inflight []inflightPull
	return func(batch []*shardState) {
		inflight = inflight[:0]
		for _, sh := range batch {
			if p, ok := e.beginPull(sh); ok {
				inflight = append(inflight, p)
			}
		}
		sendPulls(inflight)
		readAnswers(inflight, e.takeLateSlot, func(p *inflightPull) { e.endPull(p, raw) }, func(late inflightPull) {
			e.latePulls.Go(func() {
				raw := lateRawBatches.Get().(*rawBatch)
				e.endPull(&late, raw)
				lateRawBatches.Put(raw)
				<-e.lateSlots
			})
		})
	}
}

// readAnswers ends a batch's pulls in order, as a pull worker does: end
// reads an answer in time; one late (its logstore's calls may hang) goes
// to endLate, which waits for it on a goroutine of its own, when
// takeLateSlot allows, and the polls pipelined behind it are sent again,
// so the rest of the batch is not held up. Polls left on a connection an
// earlier answer broke are sent again together too, rather than each
// alone while the worker waits. pulls are cleared as they end.
func readAnswers(pulls []inflightPull, takeLateSlot func() bool, end func(*inflightPull), endLate func(inflightPull)) {
	for i := range pulls {
		p := &pulls[i]
		if p.err == nil && p.sent != nil && p.sent.onBrokenPipeline() {
			resendFrom(p.sent, pulls[i:])
		}
		if p.err == nil && p.sent != nil && !p.sent.answeredInTime() && takeLateSlot() {
			resendBehind(p.sent, pulls[i+1:])
			endLate(*p)
		} else {
			end(p)
		}
		pulls[i] = inflightPull{}
	}
}

// maxLatePulls bounds the pulls waiting on goroutines of their own for
// late answers (and the connections they hold); beyond it a worker waits
// for a late answer itself, as it does for one in time.
const maxLatePulls = 256

// takeLateSlot reserves a place for a late pull, if one is free.
func (e *Manager) takeLateSlot() bool {
	select {
	case e.lateSlots <- struct{}{}:
		return true
	default:
		return false
	}
}

// resendBehind takes the polls pipelined behind a late one off its
// connection and sends them again, pipelined on a fresh connection: one
// dial whatever their number. Those already cancelled are not sent. When a
// host stalls as a whole, each round finds the next one late and resends
// the rest: a pipeline of n costs n rounds and n²/2 requests, once per
// request_timeout, as the late polls wait that long before their next.
func resendBehind(late *sentRequest, pulls []inflightPull) {
	resend(pulls, late.windowStart(), late.takeOff)
}

// resendFrom sends again, pipelined on a fresh connection, first and the
// polls after it on its connection, which an earlier answer broke.
func resendFrom(first *sentRequest, pulls []inflightPull) {
	broken := first.conn
	resend(pulls, first.windowStart(), func(f *sentRequest) bool { return f.leaveBroken(broken) })
}

// resend sends again, pipelined, the polls that take takes off their
// connection (those already cancelled get their cancellation as error);
// their answer window runs from windowFrom.
func resend(pulls []inflightPull, windowFrom time.Time, take func(*sentRequest) bool) {
	var ctxs []context.Context
	var reqs []*leanRequest
	var idx []int
	for j := range pulls {
		f := pulls[j].sent
		if f == nil || !take(f) {
			continue
		}
		if err := f.ctx.Err(); err != nil {
			pulls[j].sent, pulls[j].err = nil, err
			continue
		}
		ctxs, reqs, idx = append(ctxs, f.ctx), append(reqs, f.req), append(idx, j)
	}
	if len(reqs) == 0 {
		return
	}
	sent, errs := pulls[idx[0]].sent.t.sendPipelined(ctxs, reqs)
	for k, j := range idx {
		pulls[j].sent, pulls[j].err = sent[k], errs[k]
		if sent[k] != nil {
			// Their window runs from the first sending: when a host stalls
			// as a whole, each poll resent is found late within a short
			// grace rather than a whole window each.
			sent[k].windowFrom = windowFrom
		}
	}
}

// lateRawBatches are the buffers of pulls left to goroutines of their own.
var lateRawBatches = sync.Pool{New: func() any { return newRawBatch() }}

// inflightPull is a pull whose request is on its way.
type inflightPull struct {
	sh      *shardState
	cursor  string
	started time.Time
	req     *leanRequest // signed, not yet sent
	sent    *sentRequest
	err     error // the request could not be signed or sent
}

// beginPull sends one poll of a shard, unless it no longer wants one.
func (e *Manager) beginPull(sh *shardState) (inflightPull, bool) {
	m := sh.member
	m.mu.Lock()
	if m.shards[sh.id] != sh || sh.status != shardActive || sh.finished {
		m.mu.Unlock()
		return inflightPull{}, false
	}
	sh.inFlight = true
	m.pullsInFlight++
	p := inflightPull{sh: sh, cursor: sh.cursor, started: time.Now()}
	m.mu.Unlock()
	p.req, p.err = m.puller.prepare(sh.id, p.cursor, m.settings.MaxFetchGroups, &sh.signed)
	return p, true
}

// sendPulls sends a batch's prepared polls, those to one host pipelined on
// shared connections: a batch of quiet shards then costs a few system calls
// rather than several per poll. Answers are read in the batch's order.
func sendPulls(pulls []inflightPull) {
	var ctxs []context.Context
	var reqs []*leanRequest
	var idx []int
	for i := range pulls {
		first := &pulls[i]
		if first.err != nil || first.req == nil || first.sent != nil {
			continue
		}
		t := first.sh.member.puller.transport
		ctxs, reqs, idx = ctxs[:0], reqs[:0], idx[:0]
		for j := i; j < len(pulls); j++ {
			p := &pulls[j]
			if p.err != nil || p.req == nil || p.sent != nil || p.sh.member.puller.transport != t ||
				p.req.host != first.req.host || p.req.scheme != first.req.scheme {
				continue
			}
			ctxs = append(ctxs, p.sh.member.pullCtx)
			reqs = append(reqs, p.req)
			idx = append(idx, j)
		}
		sent, errs := t.sendPipelined(ctxs, reqs)
		for k, j := range idx {
			pulls[j].sent, pulls[j].err, pulls[j].req = sent[k], errs[k], nil
		}
	}
}

// endPull reads a poll's answer, counts what arrived and schedules the
// shard's next pull.
func (e *Manager) endPull(p *inflightPull, raw *rawBatch) {
	sh, cursor, started := p.sh, p.cursor, p.started
	m := sh.member
	var res *pulled
	err := p.err
	if err == nil {
		res, err = m.puller.finish(p.sent, raw.header)
	}
	if current := m.rules.Load(); sh.work != nil && sh.work.rules != current {
		sh.work.use(current) // a reload's new rules get their series at 0 on idle shards too
	}
	groups, next, rawSize := 0, "", 0
	if err == nil {
		groups, next, rawSize = res.groups, res.nextCursor, len(res.raw)
		if res.raw != nil {
			err = sh.work.count(raw.reset(res.raw))
			raw.reset(nil)
		}
		res.release()
	}
	// Read after the counts were added: a scrape that moves past this
	// epoch has gathered them.
	epoch := e.acks.Epoch()
	now := time.Now()

	m.mu.Lock()
	defer m.mu.Unlock()
	sh.inFlight = false
	m.pullsInFlight--
	if m.gone {
		return // its series are deleted: count no error that would bring them back
	}
	current := m.shards[sh.id] == sh
	var due time.Time
	switch {
	case err != nil && stopped(m.pullCtx, err):
		// Draining: nothing was counted.
	case err != nil:
		code := errorCode(err)
		e.metrics.CountError(m.labels, "PullLogs", code)
		sh.pullFailures++
		if code == codeLogStoreNotExist && m.onGone != nil {
			m.onGone()
		}
		if sh.pullFailures == upFailureThreshold {
			m.logger.Warn("Pulls keep failing", "shard", sh.id, "err", err)
		}
		if isInvalidCursor(err) && current && sh.status == shardActive {
			m.logger.Warn("Cursor expired (SLS retention); restarting at the oldest retained data", "shard", sh.id, "cursor", cursor)
			sh.status, sh.resetToBegin, sh.retryAt = shardAcquiring, true, now
			e.activeShards.Add(-1)
			m.wake()
			return
		}
		base := 100 * time.Millisecond
		if httpStatus(err) == 403 { // read quota: give the shard's quota time to refill
			base = 500 * time.Millisecond
		}
		due = now.Add(backoff(sh.pullFailures, base))
	case groups > 0:
		sh.pullFailures = 0
		sh.lastPull = now
		sh.cursor = next
		sh.pending = append(sh.pending, ackEntry{epoch: epoch, cursor: next})
		if len(sh.pending) == 1 {
			m.wake() // a quiet member sleeps long: its commits and lag probes start now
		}
		sh.caughtUp = false
		due = started.Add(m.settings.FetchInterval)
		if groups >= m.settings.MaxFetchGroups || rawSize >= busyPullBytes {
			due = now
		}
	default:
		sh.pullFailures = 0
		sh.lastPull = now
		sh.caughtUp, sh.lagSeconds = true, 0
		if sh.readonly {
			sh.finished = true
			m.logger.Debug("Readonly shard read to its end", "shard", sh.id)
			m.wake()
			return
		}
		// From the poll's start: its batch's other answers may have taken a while.
		idle := e.idleInterval(m.settings)
		due = started.Add(idle)
		if earliest := now.Add(idle / 4); due.Before(earliest) {
			due = earliest
		}
	}
	switch {
	case current && sh.status == shardActive:
		m.sched.schedule(sh, due, groups > 0) // a shard with data gets a worker of its own
	case sh.status == shardDraining:
		m.wake()
	}
}

// firstPollDelay spreads the first polls of many shards over an idle
// interval, so they do not all come due together forever after.
func (e *Manager) firstPollDelay(s Settings) time.Duration {
	return time.Duration(rand.Int64N(int64(e.idleInterval(s)) + 1))
}
