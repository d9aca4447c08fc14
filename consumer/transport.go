// HTTP plumbing: one connection pool per region, requests cancelled when their member stops, direct dialing of IP literals.
package consumer

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
)

// transportKey identifies the connection pool of a region: its endpoint and
// how it is reached.
type transportKey struct {
	endpoint string
	proxyURL string
}

// transports shares one connection pool per region among its members, so a
// thousand logstores of a region reuse a handful of connections.
type transports struct {
	mu    sync.Mutex
	pools map[transportKey]*sharedTransport
}

type sharedTransport struct {
	transport *leanTransport
	users     int
}

func newTransports() *transports { return &transports{pools: map[transportKey]*sharedTransport{}} }

// acquire returns the region's transport, creating it on first use.
func (ts *transports) acquire(t config.Target, requestTimeout time.Duration) *leanTransport {
	key := transportKey{t.Endpoint, t.ProxyURL}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	st := ts.pools[key]
	if st == nil {
		st = &sharedTransport{transport: newTransport(t, requestTimeout)}
		ts.pools[key] = st
	}
	st.users++
	return st.transport
}

// release drops a member's use; the last user closes the connections.
func (ts *transports) release(t config.Target) {
	key := transportKey{t.Endpoint, t.ProxyURL}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st := ts.pools[key]; st != nil {
		if st.users--; st.users <= 0 {
			st.transport.close()
			delete(ts.pools, key)
		}
	}
}

// newTransport builds a region's connection pool.
//
// Requests go to <project>.<endpoint>. For an IP-literal endpoint that name
// cannot resolve, so the transport dials the IP itself (SLS reads the project
// from the Host header). Otherwise requests go through proxy_url when set,
// or the environment's proxy.
func newTransport(t config.Target, requestTimeout time.Duration) *leanTransport {
	var proxy *url.URL
	if t.ProxyURL != "" {
		proxy, _ = url.Parse(t.ProxyURL) // validated with the config
	}
	direct := ""
	if config.IsIPEndpoint(t.Endpoint) {
		direct, proxy = endpointAddress(t.Endpoint), nil
	}
	return newLeanTransport(proxy, direct, requestTimeout)
}

// endpointAddress is host:port of an endpoint, with the scheme's default port.
func endpointAddress(endpoint string) string {
	port := "80"
	if strings.HasPrefix(endpoint, "https://") {
		port = "443"
	}
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, port)
}

// newSDKHTTPClient is the client an SDK client sends through: the region's
// transport, every request cut when ctx ends. No client timeout: the
// transport cuts each request at the request timeout itself.
func newSDKHTTPClient(transport *leanTransport, ctx context.Context) *http.Client {
	return &http.Client{Transport: &cancelOnStop{base: transport, stop: ctx}}
}

// cancelOnStop ties every request to a member's lifetime: the SDK builds
// requests without a context, so this is how a stop aborts them in flight.
// The lean transport enforces the request timeout itself, and reads answers
// in full before returning.
type cancelOnStop struct {
	base *leanTransport
	stop context.Context
}

func (c *cancelOnStop) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Context() == context.Background() {
		return c.base.RoundTrip(req.WithContext(c.stop))
	}
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	defer context.AfterFunc(c.stop, cancel)()
	return c.base.RoundTrip(req.WithContext(ctx))
}
