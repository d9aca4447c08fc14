// Sending a request on the lean client: written on a connection of its own or pipelined, cut by its context, sent once more when a kept-alive connection turns out stale.
package consumer

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// leanRequest is one request; header yields the already signed headers,
// or headerBlock holds them rendered ("Name: value\r\n" lines).
type leanRequest struct {
	method      string
	scheme      string // http or https
	host        string // <project>.<endpoint>, also the Host header
	uri         string // path and query, escaped
	header      func(yield func(name, value string))
	headerBlock []byte
	body        []byte
	// idempotent: sending it twice does what sending it once does, so a
	// stale keep-alive connection may be retried (GETs always are).
	idempotent bool
}

// do sends req and reads the status and headers. Only the headers named in
// want are kept (all of them when want is nil), in into when given (it is
// cleared first). The caller must call done.
func (t *leanTransport) do(ctx context.Context, req *leanRequest, want wantedHeaders, into map[string]string) (*leanResponse, error) {
	sent, err := t.send(ctx, req)
	if err != nil {
		return nil, err
	}
	return sent.receive(want, into)
}

// sentRequest is a request written on its connection whose answer has not
// been read: a worker sends a whole batch of polls before reading any
// answer, so one wake-up serves them all.
type sentRequest struct {
	t         *leanTransport
	ctx       context.Context
	req       *leanRequest
	route     route
	conn      *leanConn
	stopWatch func() bool
	retried   bool
	// pipelined: sent on a connection carrying other requests; if an earlier
	// answer on it failed (or another request's cancellation cut it), this
	// one is sent again on a connection of its own.
	pipelined bool
	position  int  // in its pipeline: 0 for the first request
	late      bool // not answered within answerWindow (see answeredInTime)
	// windowFrom, when set, starts its answer window instead of sentAt: it
	// was sent again after a late answer held it up.
	windowFrom time.Time
	sentAt     time.Time
	deadline   time.Time // the connection's deadline for this request
}

// send writes req on a connection of its own (idle or new).
func (t *leanTransport) send(ctx context.Context, req *leanRequest) (*sentRequest, error) {
	r, err := t.routeFor(req.scheme, req.host)
	if err != nil {
		return nil, err
	}
	s := &sentRequest{t: t, ctx: ctx, req: req, route: r}
	if err := s.writeRetrying(); err != nil {
		return nil, err
	}
	return s, nil
}

// writeRetrying writes the request alone, once more on a fresh connection
// when a reused one turns out stale.
func (s *sentRequest) writeRetrying() error {
	for {
		err := s.write()
		if err == nil || !s.retryable(err) {
			return err
		}
	}
}

// write sends the request on a connection of its own, closing it on failure.
func (s *sentRequest) write() error {
	s.conn, s.pipelined = nil, false
	conn, err := s.t.getConn(s.ctx, s.route.key)
	if err != nil {
		return err
	}
	s.attach(conn)
	s.setDeadline()
	s.recheckCancel()
	s.sentAt = time.Now()
	renderRequest(conn.bw, s.route, s.req)
	if err := conn.bw.Flush(); err != nil {
		s.fail()
		return errNoAnswer{err}
	}
	return nil
}

// attach puts the request on conn; the request's context cuts the
// connection if it ends first.
func (s *sentRequest) attach(conn *leanConn) {
	s.conn = conn
	conn.inflight++
	s.stopWatch = func() bool { return true }
	if s.ctx.Done() == nil {
		return
	}
	pipelined := s.pipelined // read once: write clears s.pipelined on a resend while an old hook may still run
	s.stopWatch = context.AfterFunc(s.ctx, func() {
		if !pipelined || conn.reading.Load() == s {
			_ = conn.SetDeadline(time.Unix(1, 0))
		}
	})
}

// recheckCancel cuts the connection when the context ended after the
// cancellation hook ran and before setDeadline overwrote its cut.
func (s *sentRequest) recheckCancel() {
	if s.ctx.Err() != nil {
		_ = s.conn.SetDeadline(time.Unix(1, 0))
	}
}

func (s *sentRequest) setDeadline() {
	deadline := time.Now().Add(s.t.timeout)
	if d, ok := s.ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.deadline = deadline
	_ = s.conn.SetDeadline(deadline)
}

// fail closes the connection of a request that cannot complete.
func (s *sentRequest) fail() {
	s.stopWatch()
	s.conn.inflight--
	s.conn.broken = true
	_ = s.conn.Close()
}

// retryable reports whether a failure before any answer on a reused
// keep-alive connection may be sent once more on a fresh one: the server
// closed it while idle and cannot have served the request. Only GETs are
// resent, as net/http does, and the consumer-group calls, which are
// idempotent; a write call's failure is left to its caller. A pipelined GET
// whose answer never began is sent again alone.
func (s *sentRequest) retryable(err error) bool {
	if s.retried || s.conn == nil || s.ctx.Err() != nil || (s.req.method != http.MethodGet && !s.req.idempotent) {
		return false
	}
	switch {
	case s.pipelined && !isStaleConn(err):
		return false // a timeout or a broken answer: the server has it
	case s.pipelined:
		// An earlier answer on the connection failed, another request's
		// cancellation cut it, or the server closed the connection after
		// answering the first requests: it does not take pipelines.
		if s.position > 0 && isStaleConn(err) && !errors.Is(err, errPipelineBroken) {
			s.t.mu.Lock()
			s.t.noPipelining = true
			s.t.mu.Unlock()
		}
		// Sent again alone (write clears pipelined), and still allowed
		// the one resend after a stale connection.
		return true
	case !s.conn.reused || !isStaleConn(err):
		return false
	}
	s.retried = true
	return true
}

// receive reads the answer's status and headers; see do.
func (s *sentRequest) receive(want wantedHeaders, into map[string]string) (*leanResponse, error) {
	for {
		var resp *leanResponse
		var err error = errBrokenPipeline
		if s.pipelined && !s.conn.broken {
			// Its turn on the connection: from now on its cancellation cuts
			// the read (checked after the store: a cancellation just before
			// it saw another request reading).
			s.conn.reading.Store(s)
			if s.ctx.Err() == nil {
				s.setDeadline()
				s.recheckCancel()
				resp, err = s.readHead(want, into)
			} else {
				err = s.ctx.Err()
			}
		} else if !s.conn.broken {
			resp, err = s.readHead(want, into)
		}
		if err == nil {
			if s.late { // what the window missed widens it, by a window at most
				s.t.noteAnswerTime(min(time.Since(s.sentAt), s.t.answerWindow()))
			}
			return resp, nil
		}
		s.fail()
		if ctxErr := s.ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if !s.retryable(err) {
			return nil, err
		}
		if err := s.write(); err != nil {
			if ctxErr := s.ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, err
		}
	}
}

// errBrokenPipeline: an earlier answer on the connection failed.
var (
	errPipelineBroken = errors.New("an earlier answer on the connection failed")
	errBrokenPipeline = errNoAnswer{errPipelineBroken}
)

// errNoAnswer marks a failure before the first byte of the answer.
type errNoAnswer struct{ err error }

func (e errNoAnswer) Error() string { return e.err.Error() }

func (e errNoAnswer) Unwrap() error { return e.err }

func isStaleConn(err error) bool {
	var na errNoAnswer
	return errors.As(err, &na)
}

// renderRequest writes one request into bw, without flushing it.
func renderRequest(bw *bufio.Writer, r route, req *leanRequest) {
	bw.WriteString(req.method)
	bw.WriteByte(' ')
	if r.absoluteForm {
		bw.WriteString(req.scheme)
		bw.WriteString("://")
		bw.WriteString(req.host)
	}
	bw.WriteString(req.uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.host)
	bw.WriteString("\r\n")
	if r.absoluteForm && r.key.proxyAuth != "" {
		bw.WriteString("Proxy-Authorization: ")
		bw.WriteString(r.key.proxyAuth)
		bw.WriteString("\r\n")
	}
	if req.headerBlock != nil {
		bw.Write(req.headerBlock)
	} else {
		req.header(func(name, value string) {
			if strings.EqualFold(name, "Host") || strings.EqualFold(name, "Content-Length") {
				return
			}
			bw.WriteString(name)
			bw.WriteString(": ")
			bw.WriteString(value)
			bw.WriteString("\r\n")
		})
	}
	if req.body != nil || req.method == http.MethodPost || req.method == http.MethodPut {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(len(req.body)))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	bw.Write(req.body)
}
