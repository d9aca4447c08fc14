// Pipelined idle polls on the lean client, and late answers: many GETs written on one connection, answers read back in order, one that is late left to a goroutine of its own and the polls behind it sent again.
package consumer

import (
	"context"
	"errors"
	"net"
	"time"
)

// pipelineDepth is how many idle polls share one connection: written in one
// go, their answers read back in one go. A batch of polls then costs a few
// system calls rather than several each.
const pipelineDepth = 32

// sendPipelined writes GET requests that share one route, up to
// pipelineDepth on each connection, and returns their sentRequests in order
// (nil with an error where a request could not be sent). The caller must
// receive the answers of one connection in the order of reqs.
func (t *leanTransport) sendPipelined(ctxs []context.Context, reqs []*leanRequest) ([]*sentRequest, []error) {
	sent := make([]*sentRequest, len(reqs))
	errs := make([]error, len(reqs))
	if len(reqs) == 1 || !t.pipelining() {
		for i, req := range reqs {
			sent[i], errs[i] = t.send(ctxs[i], req)
		}
		return sent, errs
	}
	r, err := t.routeFor(reqs[0].scheme, reqs[0].host)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return sent, errs
	}
	for start := 0; start < len(reqs); start += pipelineDepth {
		end := min(start+pipelineDepth, len(reqs))
		conn, err := t.getConn(ctxs[start], r.key)
		if err != nil {
			for i := start; i < end; i++ {
				if ctxs[start].Err() != nil {
					// Each on its own: the error was the first one's context.
					sent[i], errs[i] = t.send(ctxs[i], reqs[i])
				} else {
					errs[i] = err // a failed dial is not tried again for each
				}
			}
			continue
		}
		now := time.Now()
		deadline := now.Add(t.timeout)
		_ = conn.SetDeadline(deadline)
		for i := start; i < end; i++ {
			s := &sentRequest{t: t, ctx: ctxs[i], req: reqs[i], route: r, pipelined: true, position: i - start, sentAt: now, deadline: deadline}
			s.attach(conn)
			renderRequest(conn.bw, r, reqs[i])
			sent[i] = s
		}
		if err := conn.bw.Flush(); err != nil {
			// Nothing answered yet: each is sent again on its own.
			for i := start; i < end; i++ {
				sent[i].stopWatch()
				sent[i] = nil
			}
			conn.broken = true
			_ = conn.Close()
			for i := start; i < end; i++ {
				sent[i], errs[i] = t.send(ctxs[i], reqs[i])
			}
		}
	}
	return sent, errs
}

// minAnswerWindow bounds answerWindow from below: above a long round
// trip (across continents about 300 ms) and what SLS takes to serve a pull.
const minAnswerWindow = 400 * time.Millisecond

// answerWindow is how long after it was sent an answer may take before
// its worker leaves it to a goroutine of its own: four times the usual
// time to an answer, at least minAnswerWindow.
func (t *leanTransport) answerWindow() time.Duration {
	return max(minAnswerWindow, 4*time.Duration(t.answerTime.Load()))
}

// noteAnswerTime folds one poll's time to its answer into the usual time
// to an answer. Concurrent updates may lose one; the average stays usable.
func (t *leanTransport) noteAnswerTime(d time.Duration) {
	old := t.answerTime.Load()
	t.answerTime.Store(old + (int64(d)-old)/8)
}

// answeredInTime waits until the answer begins to arrive, at most until
// answerWindow after the request was sent. False: the window passed and
// the answer is still due. A worker then leaves it to a goroutine of its
// own (after taking the requests pipelined behind it off the connection
// with takeOff), so that one logstore whose calls hang does not hold up
// the answers of others polled in the same batch. The times it waits
// for answers that come make the usual time to an answer.
func (s *sentRequest) answeredInTime() bool {
	c := s.conn
	if c == nil || c.broken || c.br.Buffered() > 0 || s.ctx.Err() != nil {
		return true // receive deals with it at once
	}
	until := s.windowStart().Add(s.t.answerWindow())
	if !until.Before(s.deadline) {
		return true // its own deadline comes first
	}
	// The window may have passed while earlier answers were read: then
	// only an answer already arrived is in time. (A deadline already past
	// would fail the read before looking.)
	if soon := time.Now().Add(50 * time.Millisecond); until.Before(soon) {
		until = soon
	}
	if s.pipelined {
		c.reading.Store(s) // its cancellation cuts the wait
	}
	_ = c.SetReadDeadline(until)
	s.recheckCancel()
	_, err := c.br.Peek(1)
	if !s.pipelined { // receive sets a pipelined request's deadline itself
		_ = c.SetDeadline(s.deadline)
		s.recheckCancel()
	}
	if err == nil {
		s.t.noteAnswerTime(time.Since(s.sentAt))
		return true
	}
	var ne net.Error
	s.late = errors.As(err, &ne) && ne.Timeout() && s.ctx.Err() == nil && time.Now().Before(s.deadline)
	return !s.late
}

// windowStart is when the request's answer window began.
func (s *sentRequest) windowStart() time.Time {
	if !s.windowFrom.IsZero() {
		return s.windowFrom
	}
	return s.sentAt
}

// takeOff takes f off s's connection when it was pipelined after s,
// before s is handed to another goroutine, and reports whether it did:
// the caller sends f's request again, and s's connection is closed after
// s's answer.
func (s *sentRequest) takeOff(f *sentRequest) bool {
	if !s.behind(f) {
		return false
	}
	f.stopWatch()
	f.conn.inflight--
	f.conn = nil
	s.conn.closeAfter = true
	return true
}

// onBrokenPipeline reports whether s is pipelined on a connection an
// earlier answer broke: receive would send it again alone.
func (s *sentRequest) onBrokenPipeline() bool {
	return s.pipelined && s.conn != nil && s.conn.broken
}

// leaveBroken takes s off conn, which an earlier answer broke (and closed),
// and reports whether it did; the caller sends s's request again.
func (s *sentRequest) leaveBroken(conn *leanConn) bool {
	if !s.pipelined || s.conn != conn || !conn.broken {
		return false
	}
	s.stopWatch()
	s.conn = nil
	return true
}

// behind reports whether f is pipelined after s on s's connection.
func (s *sentRequest) behind(f *sentRequest) bool {
	return f != nil && s.pipelined && f.pipelined && f.conn == s.conn && f.position > s.position
}

// pipelining reports whether requests may share a connection: until a
// server closed a connection in the middle of a pipeline.
func (t *leanTransport) pipelining() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.noPipelining
}
