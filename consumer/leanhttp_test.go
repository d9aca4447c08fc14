// The lean HTTP client against real servers: direct, TLS, a plain proxy, a CONNECT tunnel, chunked and closed answers, stale connections, cancellation.
package consumer

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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
