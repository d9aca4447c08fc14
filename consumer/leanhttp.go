// A lean HTTP/1.1 client for SLS: persistent connections used in turn by the caller's goroutine, without net/http's two goroutines and channel hand-offs per connection.
package consumer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Idle polls of thousands of shards are small requests on a few keep-alive
// connections: with net/http most of their cost is its per-connection read
// and write goroutines. leanTransport writes a request and reads its answer
// on the calling goroutine. It serves the raw pulls directly and the SDK's
// calls as an http.RoundTripper.
type leanTransport struct {
	dialer     *net.Dialer
	proxyURL   *url.URL // from proxy_url; nil: the environment's proxy, if any
	directAddr string   // IP-literal endpoint: dial it whatever the host
	tlsConfig  *tls.Config
	timeout    time.Duration // per request, unless the context ends sooner

	mu           sync.Mutex
	idle         map[connKey][]*leanConn
	routes       map[string]route // host -> how to reach it
	closed       bool
	noPipelining bool // a server closed a connection in the middle of a pipeline

	// answerTime is the usual time from sending a request to its answer
	// (nanoseconds, a moving average): see answeredInTime.
	answerTime atomic.Int64
}

const (
	maxIdlePerKey   = 256              // a worker may have a whole batch of polls in flight
	idleConnTimeout = 50 * time.Second // SLS closes idle connections after about a minute
)

// connKey groups interchangeable connections: through a plain HTTP proxy
// every host shares the proxy's connections.
type connKey struct {
	addr   string // what is dialled
	tunnel string // host:port tunnelled through a proxy with CONNECT, or ""
	tls    string // server name when the connection is TLS, or ""
	// An https:// proxy is spoken to over TLS (its server name); a proxy
	// URL's user and password become Proxy-Authorization.
	proxyTLS  string
	proxyAuth string
}

// route is how requests to one host travel.
type route struct {
	key          connKey
	absoluteForm bool // request line carries the full URL (plain HTTP proxy)
}

type leanConn struct {
	net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	key      connKey
	lastUsed time.Time
	reused   bool
	// Pipelined connections carry several requests; they are used by one
	// goroutine, which reads the answers in order.
	inflight int  // requests whose answers are not read yet
	broken   bool // an answer failed: the rest cannot be read; close it
	// closeAfter: the requests pipelined after the one being answered were
	// sent again elsewhere (see leaveBehind); close it after that answer.
	closeAfter bool
	// reading is the pipelined request whose answer is being read: only its
	// cancellation cuts the connection, so one member's stop does not cut
	// the answers of others queued before it.
	reading atomic.Pointer[sentRequest]
}

func newLeanTransport(proxyURL *url.URL, directAddr string, timeout time.Duration) *leanTransport {
	return &leanTransport{
		dialer:     &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		proxyURL:   proxyURL,
		directAddr: directAddr,
		tlsConfig:  &tls.Config{MinVersion: tls.VersionTLS12},
		timeout:    timeout,
		idle:       map[connKey][]*leanConn{},
		routes:     map[string]route{},
	}
}

// routeFor works out, once per host, whether it is reached directly,
// through a plain proxy or through a CONNECT tunnel.
func (t *leanTransport) routeFor(scheme, host string) (route, error) {
	t.mu.Lock()
	r, ok := t.routes[scheme+"://"+host]
	t.mu.Unlock()
	if ok {
		return r, nil
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	hostPort := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		hostPort = net.JoinHostPort(host, port)
	}
	var proxy *url.URL
	switch {
	case t.directAddr != "":
	case t.proxyURL != nil:
		proxy = t.proxyURL
	default:
		var err error
		proxy, err = http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: scheme, Host: host}})
		if err != nil {
			return route{}, err
		}
	}
	switch {
	case t.directAddr != "":
		r.key.addr = t.directAddr
	case proxy == nil:
		r.key.addr = hostPort
	case scheme == "http":
		r.key.addr, r.absoluteForm = proxyAddr(proxy), true
	default:
		r.key.addr, r.key.tunnel = proxyAddr(proxy), hostPort
	}
	if proxy != nil && t.directAddr == "" {
		if proxy.Scheme == "https" {
			r.key.proxyTLS = proxy.Hostname()
		}
		if u := proxy.User; u != nil {
			password, _ := u.Password()
			r.key.proxyAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+password))
		}
	}
	if scheme == "https" {
		r.key.tls, _, _ = strings.Cut(host, ":")
	}
	t.mu.Lock()
	t.routes[scheme+"://"+host] = r
	t.mu.Unlock()
	return r, nil
}

func proxyAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// getConn returns an idle connection for key, or dials one.
func (t *leanTransport) getConn(ctx context.Context, key connKey) (*leanConn, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errors.New("transport closed")
	}
	for conns := t.idle[key]; len(conns) > 0; conns = t.idle[key] {
		c := conns[len(conns)-1]
		t.idle[key] = conns[:len(conns)-1]
		if time.Since(c.lastUsed) < idleConnTimeout {
			t.mu.Unlock()
			c.reused = true
			return c, nil
		}
		_ = c.Close()
	}
	t.mu.Unlock()
	return t.dial(ctx, key)
}

func (t *leanTransport) dial(ctx context.Context, key connKey) (*leanConn, error) {
	raw, err := t.dialer.DialContext(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if key.proxyTLS != "" {
		if conn, err = t.handshake(ctx, conn, key.proxyTLS); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("TLS to the proxy: %w", err)
		}
	}
	if key.tunnel != "" {
		if err := connectTunnel(ctx, conn, key.tunnel, key.proxyAuth, t.timeout); err != nil {
			_ = raw.Close()
			return nil, err
		}
	}
	if key.tls != "" {
		if conn, err = t.handshake(ctx, conn, key.tls); err != nil {
			_ = raw.Close()
			return nil, err
		}
	}
	return &leanConn{Conn: conn, br: bufio.NewReaderSize(conn, 8<<10), bw: bufio.NewWriterSize(conn, 4<<10), key: key}, nil
}

// handshake starts TLS with serverName on conn, HTTP/1.1 only.
func (t *leanTransport) handshake(ctx context.Context, conn net.Conn, serverName string) (net.Conn, error) {
	cfg := t.tlsConfig.Clone()
	cfg.ServerName = serverName
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// connectTunnel asks an HTTP proxy for a tunnel to hostPort.
func connectTunnel(ctx context.Context, conn net.Conn, hostPort, auth string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	authLine := ""
	if auth != "" {
		authLine = "Proxy-Authorization: " + auth + "\r\n"
	}
	if _, err := fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", hostPort, hostPort, authLine); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("proxy refused CONNECT %s: %s", hostPort, resp.Status)
	}
	return nil
}

// putConn keeps a connection whose answer was read in full for the next request.
func (t *leanTransport) putConn(c *leanConn) {
	c.lastUsed, c.inflight, c.broken, c.closeAfter = time.Now(), 0, false, false
	c.reading.Store(nil)
	_ = c.SetDeadline(time.Time{})
	t.mu.Lock()
	if !t.closed && len(t.idle[c.key]) < maxIdlePerKey {
		t.idle[c.key] = append(t.idle[c.key], c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	_ = c.Close()
}

// close closes the idle connections and refuses new requests.
func (t *leanTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for key, conns := range t.idle {
		for _, c := range conns {
			_ = c.Close()
		}
		delete(t.idle, key)
	}
}

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

// leanResponse is an answer whose body is still on the connection: the caller
// reads it from body and then calls done.
type leanResponse struct {
	status        int
	contentLength int64 // -1 when chunked or unknown
	header        map[string]string
	body          io.Reader
	conn          *leanConn
	t             *leanTransport
	keepAlive     bool
	chunked       bool
	stopWatch     func() bool
}

// wantedHeaders are the response headers a caller looks at; others are
// skipped without allocating. Keys are lower case; each maps to itself, so a
// kept header's key costs no allocation.
type wantedHeaders map[string]string

func newWantedHeaders(names ...string) wantedHeaders {
	w := wantedHeaders{}
	for _, n := range names {
		w[n] = n
	}
	return w
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
	pipelined := s.pipelined // read here: leaving a pipeline changes s.pipelined while the hook may run
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

// readHead reads the status line and headers of the answer.
func (s *sentRequest) readHead(want wantedHeaders, into map[string]string) (*leanResponse, error) {
	c := s.conn
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		// Nothing came back: the server closed a connection it kept idle
		// (may be sent again), unless we gave up waiting (a timeout).
		var ne net.Error
		if len(line) == 0 && !(errors.As(err, &ne) && ne.Timeout()) {
			err = errNoAnswer{err}
		}
		return nil, err
	}
	status, ok := parseStatusLine(line)
	if !ok {
		return nil, fmt.Errorf("malformed HTTP status line %q", bytes.TrimSpace(line))
	}
	resp := &leanResponse{status: status, contentLength: -1, conn: c, t: s.t, keepAlive: true, stopWatch: s.stopWatch, header: into}
	clear(into)
	chunked := false
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			return nil, fmt.Errorf("malformed HTTP header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("malformed Content-Length %q", value)
			}
			resp.contentLength = n
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(value, "close") {
				resp.keepAlive = false
			}
		}
		var key string
		keep := want == nil
		if keep {
			key = strings.ToLower(string(name))
		} else {
			key, keep = wantHeader(want, name)
		}
		if keep {
			if resp.header == nil {
				resp.header = make(map[string]string, 8)
			}
			resp.header[key] = string(value)
		}
	}
	switch {
	case chunked:
		resp.contentLength, resp.chunked = -1, true
		resp.body = httputil.NewChunkedReader(c.br)
	case resp.contentLength >= 0:
		resp.body = io.LimitReader(c.br, resp.contentLength)
	default:
		resp.keepAlive = false // the body ends when the server closes
		resp.body = c.br
	}
	return resp, nil
}

// wantHeader looks a header name up without allocating, returning its key.
func wantHeader(want wantedHeaders, name []byte) (string, bool) {
	var lower [64]byte
	if len(name) > len(lower) {
		return "", false
	}
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		lower[i] = ch
	}
	key, ok := want[string(lower[:len(name)])]
	return key, ok
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

func parseStatusLine(line []byte) (int, bool) {
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false
	}
	code, err := strconv.Atoi(string(line[9:12]))
	return code, err == nil
}

// done ends the exchange: a fully read body leaves the connection for the
// next request; anything else closes it.
func (r *leanResponse) done(bodyRead bool) {
	if r.conn == nil {
		return
	}
	clean := r.stopWatch() // false: the context already ended and poisoned the deadline
	c := r.conn
	r.conn = nil
	if bodyRead && r.chunked {
		bodyRead = skipTrailer(c.br)
	}
	c.inflight--
	if !bodyRead || !r.keepAlive || !clean || c.closeAfter {
		c.broken = true
	}
	switch {
	case c.broken:
		_ = c.Close()
	case c.inflight == 0:
		r.t.putConn(c)
	}
}

// skipTrailer reads the trailer section after a chunked body's last chunk,
// which the chunked reader leaves unread.
func skipTrailer(br *bufio.Reader) bool {
	for range 64 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return true
		}
	}
	return false
}

// drain reads and discards what is left of a small body, so the connection
// can be reused; a large remainder closes it instead.
func (r *leanResponse) drain() bool {
	n, err := io.CopyN(io.Discard, r.body, 64<<10)
	return err == io.EOF || (err == nil && n < 64<<10 && r.contentLength >= 0)
}

// RoundTrip serves the SDK's calls, which are small: the answer is read in
// full and the connection freed before returning.
func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	lr := &leanRequest{
		method: req.Method,
		scheme: req.URL.Scheme,
		host:   req.URL.Host,
		uri:    req.URL.RequestURI(),
		header: func(yield func(name, value string)) {
			for name, values := range req.Header {
				for _, v := range values {
					yield(name, v)
				}
			}
		},
		body: body,
	}
	if req.Host != "" {
		lr.host = req.Host
	}
	// Consumer-group calls (heartbeat, checkpoint, create) are safe to send
	// again; PutLogs (the canary) is not.
	lr.idempotent = strings.Contains(req.URL.Path, "/consumergroups")
	resp, err := t.do(req.Context(), lr, nil, nil)
	if err != nil {
		return nil, err
	}
	var data []byte
	if resp.contentLength >= 0 && resp.contentLength <= 1<<20 {
		data = make([]byte, resp.contentLength)
		_, err = io.ReadFull(resp.body, data)
	} else {
		data, err = io.ReadAll(resp.body)
	}
	resp.done(err == nil)
	if err != nil {
		return nil, err
	}
	header := make(http.Header, len(resp.header))
	for k, v := range resp.header {
		header[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
	}
	return &http.Response{
		Status:        strconv.Itoa(resp.status) + " " + http.StatusText(resp.status),
		StatusCode:    resp.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(data)),
		ContentLength: int64(len(data)),
		Request:       req,
	}, nil
}
