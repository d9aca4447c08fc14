// The refresh machinery on a scripted source: cached answers while a refresh runs or hangs, failures that keep the previous credentials, backoff, events, sharing.
package credentials

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
)

// scripted is a source whose answers a test sets; it notices concurrent calls.
type scripted struct {
	mu      sync.Mutex
	v       value
	err     error
	block   chan struct{} // when set, fetch waits on it
	panics  bool
	calls   atomic.Int32
	running atomic.Int32
	overlap atomic.Bool
}

func (s *scripted) set(v value, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v, s.err = v, err
}

func (s *scripted) fetch() (value, error) {
	if s.running.Add(1) > 1 {
		s.overlap.Store(true)
	}
	defer s.running.Add(-1)
	s.calls.Add(1)
	s.mu.Lock()
	block, panics := s.block, s.panics
	s.mu.Unlock()
	if block != nil {
		<-block
	}
	if panics {
		panic("boom with secret-in-panic")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, s.err
}

func (s *scripted) secrets() []string { return []string{"source-secret"} }

func creds(id string) value {
	return value{creds: sls.Credentials{AccessKeyID: id, AccessKeySecret: id + "-secret", SecurityToken: id + "-token"}}
}

// events records what a provider tells.
type events struct {
	mu  sync.Mutex
	all []Event
}

func captureEvents(t *testing.T) *events {
	e := &events{}
	SetEventHook(func(ev Event) {
		e.mu.Lock()
		e.all = append(e.all, ev)
		e.mu.Unlock()
	})
	t.Cleanup(func() { SetEventHook(nil) })
	return e
}

func (e *events) list() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.all...)
}

// timing is a provider's check interval and backoff bounds.
type timing struct{ check, min, max time.Duration }

func newScripted(src *scripted, timeout time.Duration, tm timing) *Provider {
	return &Provider{kind: "test", desc: "test source", src: src, timeout: timeout, check: tm.check, minBackoff: tm.min, maxBackoff: tm.max}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRefreshInBackgroundNeverWaits(t *testing.T) {
	tm := timing{50 * time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond}
	ev := captureEvents(t)
	src := &scripted{}
	src.set(creds("A"), nil)
	p := newScripted(src, time.Second, tm)

	got, err := p.GetCredentials()
	if err != nil || got.AccessKeyID != "A" {
		t.Fatalf("first: %+v %v", got, err)
	}
	// The source hangs: calls keep getting A at once.
	src.mu.Lock()
	src.block = make(chan struct{})
	src.mu.Unlock()
	src.set(creds("B"), nil)
	time.Sleep(60 * time.Millisecond)
	for range 50 {
		start := time.Now()
		got, err := p.GetCredentials()
		if err != nil || got.AccessKeyID != "A" || time.Since(start) > 20*time.Millisecond {
			t.Fatalf("while a refresh hangs: %+v %v after %s", got, err, time.Since(start))
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(src.block)
	src.mu.Lock()
	src.block = nil
	src.mu.Unlock()
	waitUntil(t, 2*time.Second, "B", func() bool { c, _ := p.GetCredentials(); return c.AccessKeyID == "B" })
	if src.overlap.Load() {
		t.Error("two fetches ran at once")
	}
	var refreshed bool
	for _, e := range ev.list() {
		if e.Err == nil && !e.First {
			refreshed = true
		}
	}
	if !refreshed {
		t.Errorf("no refresh event: %+v", ev.list())
	}
}

func TestFailuresKeepPreviousCredentials(t *testing.T) {
	tm := timing{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}
	ev := captureEvents(t)
	src := &scripted{}
	src.set(creds("A"), nil)
	p := newScripted(src, time.Second, tm)
	if _, err := p.GetCredentials(); err != nil {
		t.Fatal(err)
	}
	src.set(value{}, errors.New(`get session token failed: {"Code":"Throttling","RequestId":"1A2B","Message":"AccessKeySecret=source-secret"}`))
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		got, err := p.GetCredentials()
		if err != nil || got.AccessKeyID != "A" {
			t.Fatalf("during failures: %+v %v", got, err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	// Backoff: 40, 80, 80... ms between attempts, not one per 3 ms call.
	if n := src.calls.Load(); n < 4 || n > 14 {
		t.Errorf("%d attempts in 600 ms, want the backoff's pace", n)
	}
	var failures []Event
	for _, e := range ev.list() {
		if e.Err != nil {
			failures = append(failures, e)
		}
	}
	if len(failures) == 0 || !failures[0].Serving || failures[len(failures)-1].Failures != len(failures) {
		t.Fatalf("failure events: %+v", failures)
	}
	msg := failures[0].Err.Error()
	if msg != "test source: get session token failed: Code=Throttling RequestId=1A2B (response body withheld)" {
		t.Errorf("failure: %s", msg)
	}
	src.set(creds("B"), nil)
	waitUntil(t, time.Second, "B after the failures", func() bool { c, _ := p.GetCredentials(); return c.AccessKeyID == "B" })
	last := ev.list()[len(ev.list())-1]
	if last.Err != nil || last.Failures != len(failures) {
		t.Errorf("recovery event: %+v", last)
	}
}

func TestFirstFetchWaitsOnceThenFailsFast(t *testing.T) {
	tm := timing{time.Second, 200 * time.Millisecond, time.Second}
	captureEvents(t)
	src := &scripted{}
	src.set(value{}, errors.New("dial tcp 127.0.0.1:1: connect: connection refused"))
	p := newScripted(src, time.Second, tm)
	if _, err := p.GetCredentials(); err == nil || err.Error() != "test source: dial tcp 127.0.0.1:1: connect: connection refused" {
		t.Fatalf("first: %v", err)
	}
	// Within the backoff, calls fail at once without asking again.
	start := time.Now()
	if _, err := p.GetCredentials(); err == nil || time.Since(start) > 20*time.Millisecond || src.calls.Load() != 1 {
		t.Fatalf("second: %v after %s, %d calls", err, time.Since(start), src.calls.Load())
	}
	src.set(creds("A"), nil)
	waitUntil(t, 2*time.Second, "A", func() bool { c, _ := p.GetCredentials(); return c.AccessKeyID == "A" })
}

func TestHangingSourceIsBounded(t *testing.T) {
	tm := timing{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	captureEvents(t)
	src := &scripted{block: make(chan struct{})}
	src.set(creds("A"), nil)
	p := newScripted(src, 100*time.Millisecond, tm)
	start := time.Now()
	_, err := p.GetCredentials()
	if err == nil || !strings.Contains(err.Error(), "no answer within 100ms") || time.Since(start) > time.Second+500*time.Millisecond {
		t.Fatalf("hanging first fetch: %v after %s", err, time.Since(start))
	}
	time.Sleep(50 * time.Millisecond)
	p.GetCredentials()
	if n := src.calls.Load(); n != 1 {
		t.Errorf("%d fetches while one hangs, want 1", n)
	}
	close(src.block)
	src.mu.Lock()
	src.block = nil
	src.mu.Unlock()
	waitUntil(t, 2*time.Second, "A once the hang ends", func() bool { c, _ := p.GetCredentials(); return c.AccessKeyID == "A" })
}

func TestPanickingSource(t *testing.T) {
	captureEvents(t)
	src := &scripted{panics: true}
	p := newScripted(src, time.Second, timing{time.Second, time.Second, time.Second})
	_, err := p.GetCredentials()
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panic: %v", err)
	}
}

func TestKnownExpiry(t *testing.T) {
	tm := timing{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	ev := captureEvents(t)
	src := &scripted{}
	v := creds("A")
	v.expires = time.Now().Add(300 * time.Millisecond)
	src.set(v, nil)
	p := newScripted(src, time.Second, tm)
	if c, err := p.GetCredentials(); err != nil || c.AccessKeyID != "A" {
		t.Fatal(c, err)
	}
	// Within 5 minutes of expiry from the start: a warning, once.
	waitUntil(t, time.Second, "the near-expiry warning", func() bool {
		for _, e := range ev.list() {
			if e.Err != nil && strings.Contains(e.Err.Error(), "have not been renewed") {
				return true
			}
		}
		return false
	})
	time.Sleep(time.Until(v.expires) + 20*time.Millisecond)
	if _, err := p.GetCredentials(); err == nil || !strings.Contains(err.Error(), "credentials expired at") {
		t.Fatalf("after expiry: %v", err)
	}
	warnings := 0
	for _, e := range ev.list() {
		if e.Err != nil {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d warnings, want 1", warnings)
	}
}

func TestForSharesProviders(t *testing.T) {
	static := For(config.Resolved{AccessKeyID: "id", AccessKeySecret: "s"})
	if _, ok := static.(*sls.StaticCredentialsProvider); !ok {
		t.Fatalf("an AccessKey gives %T", static)
	}
	a := config.Resolved{Type: config.TypeECSRAMRole, RoleName: "r", ProxyURL: "http://127.0.0.1:1"}
	b := a
	b.RoleName = "other"
	pa, pa2, pb := For(a), For(a), For(b)
	if pa != pa2 || pa == pb {
		t.Errorf("sharing: same settings %v, different settings %v", pa == pa2, pa == pb)
	}
}

// TestSameKeyWithALaterExpiry: a lease renewed for the same key (a token
// file rewritten with a later Expiration) is served past the old expiry.
func TestSameKeyWithALaterExpiry(t *testing.T) {
	tm := timing{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	src := &scripted{}
	v := creds("A")
	v.expires = time.Now().Add(200 * time.Millisecond)
	src.set(v, nil)
	p := newScripted(src, time.Second, tm)
	if c, err := p.GetCredentials(); err != nil || c.AccessKeyID != "A" {
		t.Fatal(c, err)
	}
	renewed := creds("A")
	renewed.expires = time.Now().Add(time.Hour)
	src.set(renewed, nil)
	waitUntil(t, time.Second, "the renewed expiry", func() bool {
		_, _ = p.GetCredentials() // a call starts a refresh when one is due
		cur := p.cur.Load()
		return cur != nil && cur.expires.Equal(renewed.expires)
	})
	time.Sleep(time.Until(v.expires) + 20*time.Millisecond)
	if c, err := p.GetCredentials(); err != nil || c.AccessKeyID != "A" {
		t.Fatalf("after the old expiry, with the same key renewed for an hour: %v %v", c.AccessKeyID, err)
	}
}
