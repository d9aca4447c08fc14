// HTTP clients per target: optional proxy, direct dialing of IP-literal endpoints, bounded timeouts.
package consumer

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
)

// newHTTPClient builds the client every SDK call of a target goes through.
//
// The SDK addresses <project>.<endpoint>. For an IP-literal endpoint that
// name cannot resolve, so the client dials the IP itself (the Python SDK's
// behaviour; SLS reads the project from the Host header). Otherwise requests
// go through proxy_url when set, or the environment's proxy.
func newHTTPClient(t config.Target, timeout time.Duration) *http.Client {
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       50 * time.Second, // SLS closes idle connections after about a minute
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	transport.DialContext = dialer.DialContext
	if t.ProxyURL != "" {
		if u, err := url.Parse(t.ProxyURL); err == nil {
			transport.Proxy = http.ProxyURL(u)
		}
	}
	if config.IsIPEndpoint(t.Endpoint) {
		addr := endpointAddress(t.Endpoint)
		transport.Proxy = nil
		transport.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Transport: transport, Timeout: timeout}
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

// newSLSClient builds an SDK client for a target with explicit timeouts.
func newSLSClient(t config.Target, httpClient *http.Client, requestTimeout, retryTimeout time.Duration) *sls.Client {
	c := &sls.Client{
		Endpoint:        t.Endpoint,
		AccessKeyID:     t.Credentials.AccessKeyID,
		AccessKeySecret: t.Credentials.AccessKeySecret.Reveal(),
		SecurityToken:   t.Credentials.SecurityToken.Reveal(),
		UserAgent:       "sls_keyword_exporter",
		RequestTimeOut:  requestTimeout,
		RetryTimeOut:    retryTimeout,
		HTTPClient:      httpClient,
	}
	return c
}
