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
