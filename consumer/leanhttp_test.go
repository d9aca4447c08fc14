// The lean HTTP client against real servers: direct, TLS, a plain proxy, a CONNECT tunnel, chunked and closed answers, stale connections, cancellation.
package consumer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoHandler answers with the request line and Host it saw.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Seen-Host", r.Host)
	w.Header().Set("X-Seen-Uri", r.RequestURI)
	switch r.URL.Query().Get("mode") {
	case "chunked":
		flusher := w.(http.Flusher)
		_, _ = io.WriteString(w, "chunk-1;")
		flusher.Flush()
		_, _ = io.WriteString(w, "chunk-2")
		return
	case "close":
		w.Header().Set("Connection", "close")
	}
	_, _ = io.WriteString(w, r.Method+" "+string(body))
}

func leanGet(t *testing.T, tr *leanTransport, scheme, host, uri string) (*leanResponse, string) {
	t.Helper()
	resp, err := tr.do(context.Background(), &leanRequest{method: http.MethodGet, scheme: scheme, host: host, uri: uri,
		header: func(yield func(string, string)) { yield("X-Test", "1") }}, nil, nil)
	if err != nil {
		t.Fatalf("GET %s://%s%s: %v", scheme, host, uri, err)
	}
	body, err := io.ReadAll(resp.body)
	resp.done(err == nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestLeanTransportDirectReusesConnectionsAndReadsEveryBodyKind(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echoHandler))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", 5*time.Second)
	defer tr.close()

	for i := range 5 {
		resp, body := leanGet(t, tr, "http", host, "/a?i="+string(rune('0'+i)))
		if resp.status != 200 || body != "GET " || resp.header["x-seen-uri"] != "/a?i="+string(rune('0'+i)) || resp.header["x-seen-host"] != host {
			t.Fatalf("answer %d: %d %q %v", i, resp.status, body, resp.header)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests, want 1", n)
	}
	if _, body := leanGet(t, tr, "http", host, "/?mode=chunked"); body != "chunk-1;chunk-2" {
		t.Fatalf("chunked body %q", body)
	}
	if _, body := leanGet(t, tr, "http", host, "/?mode=close"); body != "GET " {
		t.Fatalf("closed body %q", body)
	}
	before := conns.Load()
	leanGet(t, tr, "http", host, "/after-close")
	if conns.Load() != before+1 {
		t.Fatal("a connection the server closed was reused")
	}

	// Through RoundTrip, as the SDK's calls go: a POST with a body.
	client := &http.Client{Transport: tr}
	resp, err := client.Post(srv.URL+"/post", "application/json", strings.NewReader(`[1,2]`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "POST [1,2]" || resp.Header.Get("X-Seen-Uri") != "/post" {
		t.Fatalf("RoundTrip: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestLeanTransportTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(echoHandler))
	defer srv.Close()
	tr := newLeanTransport(nil, "", 5*time.Second)
	defer tr.close()
	tr.tlsConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	// The certificate is for example.com; dial the server's address for it.
	addr := strings.TrimPrefix(srv.URL, "https://")
	tr.directAddr = addr
	resp, body := leanGet(t, tr, "https", "example.com", "/secure")
	if resp.status != 200 || body != "GET " || resp.header["x-seen-host"] != "example.com" {
		t.Fatalf("TLS answer: %d %q %v", resp.status, body, resp.header)
	}
}

// proxyServer is an HTTP proxy that serves absolute-form requests itself
// (as the emulator does) and tunnels CONNECT to the target.
func proxyServer(t *testing.T, target string) (addr string, seen *[]string) {
	return proxyServerTLS(t, target, nil)
}

// proxyServerTLS is proxyServer spoken to over TLS when cfg is set. The
// lines it records end in " auth=<Proxy-Authorization>" when one was sent.
func proxyServerTLS(t *testing.T, target string, cfg *tls.Config) (addr string, seen *[]string) {
	var mu sync.Mutex
	lines := []string{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					mu.Lock()
					line := req.Method + " " + req.RequestURI
					if auth := req.Header.Get("Proxy-Authorization"); auth != "" {
						line += " auth=" + auth
					}
					lines = append(lines, line)
					mu.Unlock()
					if req.Method == http.MethodConnect {
						up, err := net.Dial("tcp", target)
						if err != nil {
							return
						}
						_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
						go func() { _, _ = io.Copy(up, br) }()
						_, _ = io.Copy(c, up)
						up.Close()
						return
					}
					body := "proxied " + req.URL.Host + req.URL.RequestURI()
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
				}
			}()
		}
	}()
	return ln.Addr().String(), &lines
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestLeanTransportThroughAProxy(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(echoHandler))
	defer tlsSrv.Close()
	addr, seen := proxyServer(t, strings.TrimPrefix(tlsSrv.URL, "https://"))
	proxy, _ := url.Parse("http://" + addr)
	tr := newLeanTransport(proxy, "", 5*time.Second)
	defer tr.close()

	// Plain HTTP: absolute-form request lines, one connection for every host.
	for _, host := range []string{"p1.cn-hangzhou.log.aliyuncs.com", "p2.cn-hangzhou.log.aliyuncs.com"} {
		if _, body := leanGet(t, tr, "http", host, "/logstores"); body != "proxied "+host+"/logstores" {
			t.Fatalf("proxied body %q", body)
		}
	}
	// HTTPS: a CONNECT tunnel, then TLS to the target.
	tr.tlsConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	resp, body := leanGet(t, tr, "https", "example.com", "/tunnelled")
	if resp.status != 200 || body != "GET " || resp.header["x-seen-uri"] != "/tunnelled" {
		t.Fatalf("tunnelled answer: %d %q %v", resp.status, body, resp.header)
	}
	want := "GET http://p1.cn-hangzhou.log.aliyuncs.com/logstores|GET http://p2.cn-hangzhou.log.aliyuncs.com/logstores|CONNECT example.com:443"
	if got := strings.Join(*seen, "|"); got != want {
		t.Fatalf("the proxy saw %s\nwant %s", got, want)
	}
}

// flakyServer closes every connection after its first answer without saying
// so, like a server dropping idle keep-alive connections.
func flakyServer(t *testing.T) (addr string, requests *atomic.Int32) {
	var n atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				n.Add(1)
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	return ln.Addr().String(), &n
}

func TestLeanTransportResendsOnlyGETsOnAStaleConnection(t *testing.T) {
	addr, requests := flakyServer(t)
	tr := newLeanTransport(nil, "", 5*time.Second)
	defer tr.close()
	leanGet(t, tr, "http", addr, "/first")
	time.Sleep(50 * time.Millisecond) // the server has closed the kept connection
	if _, body := leanGet(t, tr, "http", addr, "/second"); body != "ok" {
		t.Fatalf("body %q", body)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("server saw %d requests, want 2", n)
	}
	// A POST on a stale connection fails instead of being sent twice.
	leanGet(t, tr, "http", addr, "/third")
	time.Sleep(50 * time.Millisecond)
	_, err := tr.do(context.Background(), &leanRequest{method: http.MethodPost, scheme: "http", host: addr, uri: "/post",
		header: func(func(string, string)) {}, body: []byte("x")}, nil, nil)
	if err == nil {
		t.Fatal("a POST on a connection the server closed succeeded; it must fail rather than be resent")
	}
	// A consumer-group call (heartbeat, checkpoint) is idempotent: resent.
	leanGet(t, tr, "http", addr, "/fourth")
	time.Sleep(50 * time.Millisecond)
	before := requests.Load()
	resp, err := (&http.Client{Transport: tr}).Post("http://"+addr+"/logstores/l/consumergroups/g?type=heartbeat", "application/json", strings.NewReader("[]"))
	if err != nil {
		t.Fatalf("a heartbeat on a connection the server closed: %v; it is idempotent and must be resent", err)
	}
	resp.Body.Close()
	if n := requests.Load() - before; n != 1 {
		t.Fatalf("server saw %d heartbeats, want 1", n)
	}
}

func TestLeanTransportCancelsAndTimesOut(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	host := strings.TrimPrefix(srv.URL, "http://")

	tr := newLeanTransport(nil, "", 300*time.Millisecond)
	defer tr.close()
	start := time.Now()
	if _, err := tr.do(context.Background(), &leanRequest{method: http.MethodGet, scheme: "http", host: host, uri: "/",
		header: func(func(string, string)) {}}, nil, nil); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("a hanging answer: %v after %s, want a timeout after about 300ms", err, time.Since(start))
	}

	long := newLeanTransport(nil, "", time.Minute)
	defer long.close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err := long.do(ctx, &leanRequest{method: http.MethodGet, scheme: "http", host: host, uri: "/",
		header: func(func(string, string)) {}}, nil, nil)
	if err != context.Canceled || time.Since(start) > 2*time.Second {
		t.Fatalf("a cancelled request: %v after %s, want context.Canceled after about 200ms", err, time.Since(start))
	}
}

// TestLeanTransportRefusesAfterClose: a member's transport, once closed,
// dials nothing more.
func TestLeanTransportRefusesAfterClose(t *testing.T) {
	tr := newLeanTransport(nil, "127.0.0.1:1", time.Second)
	tr.close()
	if _, err := tr.do(context.Background(), &leanRequest{method: http.MethodGet, scheme: "http", host: "x", uri: "/",
		header: func(func(string, string)) {}}, nil, nil); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("after close: %v", err)
	}
}

// pipelineAll sends requests pipelined and reads their answers in order,
// as the pull worker does; it returns each body (or error text).
func pipelineAll(t *testing.T, tr *leanTransport, ctxs []context.Context, reqs []*leanRequest) []string {
	t.Helper()
	sent, errs := tr.sendPipelined(ctxs, reqs)
	out := make([]string, len(sent))
	for i, s := range sent {
		if errs[i] != nil {
			out[i] = "send error: " + errs[i].Error()
			continue
		}
		out[i] = readAnswer(s)
	}
	return out
}

// readAnswer receives a sent request's answer: its body, or error text.
func readAnswer(s *sentRequest) string {
	resp, err := s.receive(nil, map[string]string{})
	if err != nil {
		return "error: " + err.Error()
	}
	body, err := io.ReadAll(resp.body)
	resp.done(err == nil)
	if err != nil {
		return "body error: " + err.Error()
	}
	return string(body)
}

func pipelineRequests(host string, uris ...string) ([]context.Context, []*leanRequest) {
	ctxs := make([]context.Context, len(uris))
	reqs := make([]*leanRequest, len(uris))
	for i, uri := range uris {
		ctxs[i] = context.Background()
		reqs[i] = &leanRequest{method: http.MethodGet, scheme: "http", host: host, uri: uri, header: func(func(string, string)) {}}
	}
	return ctxs, reqs
}

// TestLeanTransportPipelinesIdlePolls: a batch of GETs shares a few
// connections, every answer reaches its own request, a connection the
// server closes in the middle sends the rest again, and the connections
// serve the next batch.
func TestLeanTransportPipelinesIdlePolls(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("mode") == "close" {
			w.Header().Set("Connection", "close")
		}
		if r.URL.Query().Get("mode") == "chunked" {
			_, _ = io.WriteString(w, "chunked:")
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", 5*time.Second)
	defer tr.close()

	uris := make([]string, 70)
	for i := range uris {
		uris[i] = "/p" + strconv.Itoa(i)
	}
	uris[5] += "?mode=chunked"
	ctxs, reqs := pipelineRequests(host, uris...)
	got := pipelineAll(t, tr, ctxs, reqs)
	for i, body := range got {
		want := "/p" + strconv.Itoa(i)
		if i == 5 {
			want = "chunked:" + want
		}
		if body != want {
			t.Fatalf("answer %d: %q, want %q", i, body, want)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("70 pipelined requests took %d connections, want 3 (32 a connection)", n)
	}

	// The server closes the first connection after its 10th answer: the
	// 22 requests behind it are sent again, each on a connection of its own.
	uris = uris[:32]
	uris[5] = "/p5"
	uris[9] += "?mode=close"
	ctxs, reqs = pipelineRequests(host, uris...)
	got = pipelineAll(t, tr, ctxs, reqs)
	for i, body := range got {
		if want := "/p" + strconv.Itoa(i); body != want {
			t.Fatalf("after a close in the pipeline, answer %d: %q, want %q", i, body, want)
		}
	}
	if !tr.pipelining() {
		t.Fatal("a server's announced close turned pipelining off; only an unannounced one should")
	}
}

// TestLeanTransportStopsPipeliningWhenTheServerDropsThem: a server that
// answers one request a connection and closes it without saying so still
// gets every request answered, and pipelining is turned off for it.
func TestLeanTransportStopsPipeliningWhenTheServerDropsThem(t *testing.T) {
	addr, requests := flakyServer(t)
	tr := newLeanTransport(nil, "", 5*time.Second)
	defer tr.close()
	ctxs, reqs := pipelineRequests(addr, "/a", "/b", "/c", "/d")
	for i, body := range pipelineAll(t, tr, ctxs, reqs) {
		if body != "ok" {
			t.Fatalf("answer %d: %q", i, body)
		}
	}
	if n := requests.Load(); n != 4 {
		t.Fatalf("server answered %d requests, want 4", n)
	}
	if tr.pipelining() {
		t.Fatal("pipelining still on for a server that drops pipelined requests")
	}
}

// TestLeanTransportPipelineCancellation: cancelling a request queued behind
// a slow answer does not cut that answer; cancelling the request being read
// cuts it, and the requests behind it are sent again.
func TestLeanTransportPipelineCancellation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/hang":
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", time.Minute)
	defer tr.close()

	ctxs, reqs := pipelineRequests(host, "/slow", "/b", "/cancelled", "/d")
	ctx, cancel := context.WithCancel(context.Background())
	ctxs[2] = ctx
	time.AfterFunc(100*time.Millisecond, cancel)
	got := pipelineAll(t, tr, ctxs, reqs)
	want := []string{"/slow", "/b", "error: context canceled", "/d"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("answers %q, want %q", got, want)
		}
	}

	ctxs, reqs = pipelineRequests(host, "/hang", "/b", "/c")
	ctx, cancel = context.WithCancel(context.Background())
	ctxs[0] = ctx
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	got = pipelineAll(t, tr, ctxs, reqs)
	want = []string{"error: context canceled", "/b", "/c"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("answers %q, want %q", got, want)
		}
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("a cancelled answer took %s to cut", time.Since(start))
	}
	if !tr.pipelining() {
		t.Fatal("a cancellation turned pipelining off")
	}
}

// TestLeanTransportThroughAnHTTPSProxyWithAPassword: an https:// proxy is
// spoken to over TLS, and its URL's user and password are sent as
// Proxy-Authorization, on absolute-form requests and on CONNECT alike.
func TestLeanTransportThroughAnHTTPSProxyWithAPassword(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(echoHandler))
	defer tlsSrv.Close()
	addr, seen := proxyServerTLS(t, strings.TrimPrefix(tlsSrv.URL, "https://"), tlsSrv.TLS)
	proxy, _ := url.Parse("https://alice:s3cret@" + addr)
	tr := newLeanTransport(proxy, "", 5*time.Second)
	defer tr.close()
	tr.tlsConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()

	if _, body := leanGet(t, tr, "http", "p1.cn-hangzhou.log.aliyuncs.com", "/logstores"); body != "proxied p1.cn-hangzhou.log.aliyuncs.com/logstores" {
		t.Fatalf("proxied body %q", body)
	}
	resp, body := leanGet(t, tr, "https", "example.com", "/tunnelled")
	if resp.status != 200 || body != "GET " || resp.header["x-seen-uri"] != "/tunnelled" {
		t.Fatalf("tunnelled answer: %d %q %v", resp.status, body, resp.header)
	}
	auth := "Basic YWxpY2U6czNjcmV0" // alice:s3cret
	want := "GET http://p1.cn-hangzhou.log.aliyuncs.com/logstores auth=" + auth + "|CONNECT example.com:443 auth=" + auth
	if got := strings.Join(*seen, "|"); got != want {
		t.Fatalf("the proxy saw %s\nwant %s", got, want)
	}
}

// TestLeanTransportLeavesALateAnswerBehind: a pull worker waits for an
// answer only answerWindow after sending it; the requests pipelined behind
// a late one are sent again at once, pipelined on one fresh connection,
// and answered, except one already cancelled; the late answer is still
// read when it comes, and its connection is closed after it rather than
// reused.
func TestLeanTransportLeavesALateAnswerBehind(t *testing.T) {
	const slowAnswer = minAnswerWindow + 300*time.Millisecond
	release := make(chan struct{})
	var opened, closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			<-release
		case "/stuck":
			<-r.Context().Done()
			return
		case "/slow":
			time.Sleep(slowAnswer)
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", 10*time.Second)
	defer tr.close()

	ctxs, reqs := pipelineRequests(host, "/a", "/hang", "/b", "/cancelled", "/c")
	cancelled, cancel := context.WithCancel(context.Background())
	ctxs[3] = cancelled
	sent, errs := tr.sendPipelined(ctxs, reqs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if !sent[0].answeredInTime() || readAnswer(sent[0]) != "/a" {
		t.Fatal("the first answer was not read in time")
	}
	began := time.Now()
	if sent[1].answeredInTime() {
		t.Fatal("an answer that never came was reported in time")
	}
	if waited := time.Since(began); waited > 2*time.Second {
		t.Fatalf("waited %s for a late answer, want about answerWindow (%s)", waited, tr.answerWindow())
	}
	cancel() // its member stops as the worker moves on
	behind := []inflightPull{{sent: sent[2]}, {sent: sent[3]}, {sent: sent[4]}}
	resendBehind(sent[1], behind)
	if behind[1].sent != nil || !errors.Is(behind[1].err, context.Canceled) {
		t.Fatalf("the cancelled request behind the late one: sent %v, err %v; want not sent, context.Canceled", behind[1].sent != nil, behind[1].err)
	}
	for _, b := range []struct {
		p    inflightPull
		want string
	}{{behind[0], "/b"}, {behind[2], "/c"}} {
		if b.p.err != nil {
			t.Fatalf("%s could not be sent again: %v", b.want, b.p.err)
		}
		if b.p.sent.conn == sent[1].conn {
			t.Fatalf("%s is still on the late answer's connection", b.want)
		}
		if !b.p.sent.answeredInTime() {
			t.Fatalf("%s, sent again, was not answered in time", b.want)
		}
		if got := readAnswer(b.p.sent); got != b.want {
			t.Fatalf("answer of %s: %q", b.want, got)
		}
	}
	if n := opened.Load(); n != 2 {
		t.Fatalf("%d connections opened, want 2: the pipeline's and one for the requests sent again", n)
	}
	close(release)
	if got := readAnswer(sent[1]); got != "/hang" {
		t.Fatalf("the late answer: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for closed.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := closed.Load(); n != 1 {
		t.Fatalf("%d connections closed after the late answer, want its own (1)", n)
	}
	if w := tr.answerWindow(); w != minAnswerWindow {
		t.Fatalf("answerWindow = %s after answers on a local server, want the minimum %s", w, minAnswerWindow)
	}

	// A request sent alone and late gets its own deadline back: its answer,
	// coming after the window, is read.
	ctxs, reqs = pipelineRequests(host, "/slow")
	alone, err := tr.send(ctxs[0], reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	if alone.answeredInTime() {
		t.Fatalf("an answer taking %s was in time (window %s)", slowAnswer, tr.answerWindow())
	}
	if got := readAnswer(alone); got != "/slow" {
		t.Fatalf("the late answer of a request sent alone: %q", got)
	}

	// A request cancelled while its worker waits is reported at once, as
	// receive returns its cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, stuck := pipelineRequests(host, "/stuck")
	s, err := tr.send(ctx, stuck[0])
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	began = time.Now()
	if !s.answeredInTime() {
		t.Fatal("a cancelled request was reported late rather than cancelled")
	}
	if waited := time.Since(began); waited >= minAnswerWindow {
		t.Fatalf("a cancellation took %s to end the wait", waited)
	}
	if got := readAnswer(s); got != "error: context canceled" {
		t.Fatalf("the cancelled request: %q", got)
	}
}

// workerReads reads pulls with readAnswers as a pull worker does, late
// answers on goroutines of their own, and returns each answer (or error
// text) once all have come, and how long the worker itself was held.
func workerReads(pulls []inflightPull) (answers []string, held time.Duration, waitLate func()) {
	answers = make([]string, len(pulls))
	index := map[*shardState]int{}
	for i := range pulls {
		pulls[i].sh = &shardState{id: i}
		index[pulls[i].sh] = i
	}
	read := func(p *inflightPull) string {
		if p.err != nil {
			return "error: " + p.err.Error()
		}
		return readAnswer(p.sent)
	}
	var late sync.WaitGroup
	began := time.Now()
	readAnswers(pulls, func() bool { return true }, func(p *inflightPull) {
		answers[index[p.sh]] = read(p)
	}, func(p inflightPull) {
		late.Go(func() { answers[index[p.sh]] = read(&p) })
	})
	return answers, time.Since(began), late.Wait
}

// TestLeanTransportAStalledHostHoldsAWorkerAboutOneWindow: when every poll
// of a pipeline hangs, a worker reading it (late answers to goroutines,
// the rest resent) is held about one answer window plus a short grace for
// each poll, not a whole window for each (32 × 400 ms); every answer still
// arrives once the host answers.
func TestLeanTransportAStalledHostHoldsAWorkerAboutOneWindow(t *testing.T) {
	stalled := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(stalled) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-stalled
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	defer srv.Close()
	defer release() // before srv.Close: handlers must return
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", 10*time.Second)
	defer tr.close()

	uris := make([]string, pipelineDepth)
	for i := range uris {
		uris[i] = "/p" + strconv.Itoa(i)
	}
	answers, held, waitLate := workerReads(pipelinePulls(t, tr, host, uris...))
	bound := minAnswerWindow + time.Duration(pipelineDepth)*100*time.Millisecond
	t.Logf("a stalled host held the worker %s for %d polls (bound %s)", held.Round(time.Millisecond), pipelineDepth, bound)
	if held > bound {
		t.Errorf("a stalled host held the worker %s, want about one window plus a grace a poll (under %s)", held.Round(time.Millisecond), bound)
	}
	release()
	waitLate()
	for i, got := range answers {
		if want := "/p" + strconv.Itoa(i); got != want {
			t.Errorf("answer %d: %q, want %q", i, got, want)
		}
	}
}

// TestLeanTransportABrokenPipelineIsResentTogether: the server ends a
// connection after its second answer (Connection: close); the polls behind
// are sent again together, and one of them that hangs is left late like
// any other, not waited for by the worker.
func TestLeanTransportABrokenPipelineIsResentTogether(t *testing.T) {
	stalled := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(stalled) }) }
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
		case "/hang":
			<-stalled
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	defer release()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", 10*time.Second)
	defer tr.close()

	answers, held, waitLate := workerReads(pipelinePulls(t, tr, host, "/a", "/close", "/hang", "/b", "/c"))
	if bound := minAnswerWindow + time.Second; held > bound {
		t.Errorf("a hanging poll behind a broken pipeline held the worker %s (bound %s)", held.Round(time.Millisecond), bound)
	}
	release()
	waitLate()
	if got, want := strings.Join(answers, " "), "/a /close /hang /b /c"; got != want {
		t.Errorf("answers %q, want %q", got, want)
	}
	// The pipeline's connection, one for the three sent again together, one
	// for the two behind the hanging one.
	if n := opened.Load(); n != 3 {
		t.Errorf("%d connections opened, want 3", n)
	}
	if !tr.pipelining() {
		t.Error("an announced close turned pipelining off")
	}
}

// pipelinePulls sends GETs of uris pipelined, as pulls.
func pipelinePulls(t *testing.T, tr *leanTransport, host string, uris ...string) []inflightPull {
	t.Helper()
	ctxs, reqs := pipelineRequests(host, uris...)
	sent, errs := tr.sendPipelined(ctxs, reqs)
	pulls := make([]inflightPull, len(sent))
	for i := range sent {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		pulls[i].sent = sent[i]
	}
	return pulls
}
