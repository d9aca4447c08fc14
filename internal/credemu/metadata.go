// The ECS instance metadata service stand-in: the IMDSv2 token and the instance RAM role's credentials, reached as an HTTP proxy for 100.100.100.200.
package credemu

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MetadataHost is the metadata service's address, which credentials-go
// dials. The stand-in answers requests for it when used as the HTTP proxy;
// it forwards nothing anywhere.
const MetadataHost = "100.100.100.200"

const credentialsPath = "/latest/meta-data/ram/security-credentials/"

// Metadata answers what credentials-go asks the ECS metadata service: PUT
// /latest/api/token (IMDSv2), GET /latest/meta-data/ram/security-credentials/
// (the role's name) and …/security-credentials/<role> (its credentials).
// The credentials are renewed when asked within RenewBefore of their
// expiry, as ECS does. Its methods are safe for concurrent use.
type Metadata struct {
	// URL is http://host:port: the proxy URL to give credentials-go.
	URL string

	srv *httptest.Server

	mu           sync.Mutex
	role         string
	requireToken bool
	lifetime     time.Duration
	renewBefore  time.Duration
	tokens       map[string]time.Time
	current      *Issued
	faults       []Fault
	onIssue      func(Issued)
	issued       []Issued
	calls        map[string]int
}

// StartMetadata serves a metadata stand-in for the instance role role on a
// loopback port. Credentials last an hour and are renewed in their last
// 15 minutes unless SetLifetime says otherwise. Close it when done.
func StartMetadata(role string) *Metadata {
	m := &Metadata{role: role, lifetime: time.Hour, renewBefore: 15 * time.Minute,
		tokens: map[string]time.Time{}, calls: map[string]int{}}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	m.URL = m.srv.URL
	return m
}

// Close stops the server.
func (m *Metadata) Close() { m.srv.Close() }

// RequireToken enforces IMDSv2: requests without a metadata token fail.
func (m *Metadata) RequireToken(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requireToken = on
}

// SetLifetime sets how long new credentials last and how long before their
// expiry a request gets new ones.
func (m *Metadata) SetLifetime(lifetime, renewBefore time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lifetime, m.renewBefore = lifetime, renewBefore
}

// FailNext makes the next credentials requests answer with these faults.
func (m *Metadata) FailNext(faults ...Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = append(m.faults, faults...)
}

// OnIssue calls fn with every set of credentials issued.
func (m *Metadata) OnIssue(fn func(Issued)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onIssue = fn
}

// Issued lists the credentials issued so far.
func (m *Metadata) Issued() []Issued {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Issued(nil), m.issued...)
}

// Calls counts requests by kind: "token", "role" (the name) and "credentials".
func (m *Metadata) Calls(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[kind]
}

func (m *Metadata) serve(w http.ResponseWriter, r *http.Request) {
	host := r.URL.Host // absolute-form: asked as a proxy
	if host == "" {
		host = r.Host
	}
	if r.Method == http.MethodConnect || (host != MetadataHost && host != strings.TrimPrefix(m.URL, "http://")) {
		http.Error(w, "this metadata stand-in serves "+MetadataHost+" only and forwards nothing", http.StatusForbidden)
		return
	}
	path := r.URL.Path
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if path == "/latest/api/token" {
		m.calls["token"]++
		if r.Method != http.MethodPut {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ttl, err := strconv.Atoi(r.Header.Get("X-aliyun-ecs-metadata-token-ttl-seconds"))
		if err != nil || ttl < 1 || ttl > 21600 {
			http.Error(w, "X-aliyun-ecs-metadata-token-ttl-seconds must be 1 to 21600", http.StatusBadRequest)
			return
		}
		token := randomToken(40)
		m.tokens[token] = now.Add(time.Duration(ttl) * time.Second)
		io.WriteString(w, token)
		return
	}
	if r.Method != http.MethodGet || !strings.HasPrefix(path, credentialsPath) {
		http.NotFound(w, r)
		return
	}
	if token := r.Header.Get("X-aliyun-ecs-metadata-token"); token != "" {
		if exp, ok := m.tokens[token]; !ok || now.After(exp) {
			http.Error(w, "invalid metadata token", http.StatusUnauthorized)
			return
		}
	} else if m.requireToken {
		http.Error(w, "a metadata token is required (IMDSv2)", http.StatusForbidden)
		return
	}
	name := strings.TrimPrefix(path, credentialsPath)
	if name == "" {
		m.calls["role"]++
		io.WriteString(w, m.role)
		return
	}
	m.calls["credentials"]++
	if len(m.faults) > 0 {
		f := m.faults[0]
		m.faults = m.faults[1:]
		w.WriteHeader(f.Status)
		io.WriteString(w, f.Body)
		return
	}
	if name != m.role {
		http.NotFound(w, r)
		return
	}
	if m.current == nil || !now.Before(m.current.Expiration.Add(-m.renewBefore)) {
		m.current = &Issued{
			Action: "ECSMetadata", RoleARN: m.role,
			AccessKeyID:     fmt.Sprintf("STS.ecs%04d%s", len(m.issued)+1, randomHex(6)),
			AccessKeySecret: randomToken(30),
			SecurityToken:   "CAIS" + randomToken(120),
			Expiration:      now.Add(m.lifetime).UTC().Truncate(time.Second),
		}
		m.issued = append(m.issued, *m.current)
		if m.onIssue != nil {
			m.onIssue(*m.current)
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	json.NewEncoder(w).Encode(map[string]string{
		"AccessKeyId":     m.current.AccessKeyID,
		"AccessKeySecret": m.current.AccessKeySecret,
		"SecurityToken":   m.current.SecurityToken,
		"Expiration":      m.current.Expiration.Format("2006-01-02T15:04:05Z"),
		"LastUpdated":     now.UTC().Format("2006-01-02T15:04:05Z"),
		"Code":            "Success",
	})
}
