// Package credentials gives the SLS SDK and the raw pulls their credentials: fixed AccessKeys, or temporary credentials refreshed in the background before they expire.
package credentials

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
)

// Timing of the background refresh.
const (
	// checkInterval is how often a provider asks its source again while all
	// is well. Asking credentials-go costs no request while its credentials
	// are fresh: it fetches new ones itself in the last 3 minutes before
	// they expire, so that window holds dozens of checks.
	checkInterval = 5 * time.Second
	// The backoff after failed attempts: minBackoff doubling up to maxBackoff.
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// For returns the provider of a region's resolved credentials. An AccessKey
// is served as it is. Temporary credentials come from a Provider shared by
// every caller with equal credentials settings, so that one refresh serves
// all the logstores of a region.
func For(r config.Resolved) sls.CredentialsProvider {
	if !r.Temporary() {
		return sls.NewStaticCredentialsProvider(r.AccessKeyID, r.AccessKeySecret.Reveal(), r.SecurityToken.Reveal())
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if wp, ok := shared.providers[r]; ok {
		if p := wp.Value(); p != nil {
			return p
		}
	}
	p := New(r)
	shared.providers[r] = weak.Make(p)
	// Once no member holds the provider, its entry goes.
	runtime.AddCleanup(p, func(key config.Resolved) {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if wp, ok := shared.providers[key]; ok && wp.Value() == nil {
			delete(shared.providers, key)
		}
	}, r)
	return p
}

var shared = struct {
	mu        sync.Mutex
	providers map[config.Resolved]weak.Pointer[Provider]
}{providers: map[config.Resolved]weak.Pointer[Provider]{}}

// Provider serves temporary credentials from a cache that a background
// attempt refreshes: GetCredentials never waits for a refresh once it has
// credentials. Attempts run one at a time, each bounded by the configured
// timeout; a failed one is retried with a capped backoff while the previous
// credentials keep being served (until they expire, when their expiry is
// known), and is reported through the logger and the event hook with its
// error stripped of anything secret.
type Provider struct {
	kind    string // the config type
	desc    string // Resolved.Describe: names it without secrets
	src     source
	timeout time.Duration
	// check, minBackoff and maxBackoff are the package's timing (tests shorten them).
	check, minBackoff, maxBackoff time.Duration

	cur       atomic.Pointer[value]
	nextNanos atomic.Int64 // earliest next attempt, unix nanoseconds

	mu       sync.Mutex
	running  bool          // an attempt (maybe abandoned at its timeout) is running
	done     chan struct{} // closed when the running attempt is decided
	failures int           // consecutive failed attempts
	lastErr  error         // the last failure, sanitized
	warned   sls.Credentials
}

// value is a set of credentials and what is known of its expiry.
type value struct {
	creds    sls.Credentials
	expires  time.Time // zero: unknown (credentials-go does not tell)
	obtained time.Time
}

// New builds a provider of temporary credentials. Use For to share one.
func New(r config.Resolved) *Provider {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = config.DefaultCredentialsTimeout
	}
	p := &Provider{kind: r.Type, desc: r.Describe(), timeout: timeout, check: checkInterval, minBackoff: minBackoff, maxBackoff: maxBackoff}
	p.src = newSource(r)
	return p
}

// GetCredentials returns the cached credentials at once, starting a
// background refresh when one is due. Only before the first success does it
// wait, for at most the timeout, for an attempt.
func (p *Provider) GetCredentials() (sls.Credentials, error) {
	now := time.Now()
	if v := p.cur.Load(); v != nil {
		if now.UnixNano() >= p.nextNanos.Load() {
			p.mu.Lock()
			p.startLocked(now)
			p.mu.Unlock()
		}
		if !v.expires.IsZero() && !now.Before(v.expires) {
			return sls.Credentials{}, fmt.Errorf("%s: credentials expired at %s and no new ones could be had%s", p.desc, v.expires.UTC().Format(time.RFC3339), p.lastErrSuffix())
		}
		return v.creds, nil
	}
	p.mu.Lock()
	if v := p.cur.Load(); v != nil {
		p.mu.Unlock()
		return v.creds, nil
	}
	p.startLocked(now)
	done, lastErr := p.done, p.lastErr
	running := p.running
	p.mu.Unlock()
	if running {
		timer := time.NewTimer(p.timeout + time.Second)
		select {
		case <-done:
		case <-timer.C:
		}
		timer.Stop()
		if v := p.cur.Load(); v != nil {
			return v.creds, nil
		}
		p.mu.Lock()
		lastErr = p.lastErr
		p.mu.Unlock()
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%s: no credentials yet", p.desc)
	}
	return sls.Credentials{}, lastErr
}

func (p *Provider) lastErrSuffix() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr == nil {
		return ""
	}
	return ": " + p.lastErr.Error()
}

// startLocked starts an attempt when one is due and none is running.
func (p *Provider) startLocked(now time.Time) {
	if p.running || now.UnixNano() < p.nextNanos.Load() {
		return
	}
	p.running = true
	p.done = make(chan struct{})
	go p.attempt()
}

// attempt asks the source once. When it outlasts the timeout it counts as
// failed, and no other attempt starts until it returns: sources are not
// safe for concurrent use.
func (p *Provider) attempt() {
	type outcome struct {
		v   value
		err error
	}
	result := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			if r := recover(); r != nil {
				o = outcome{err: fmt.Errorf("credentials source panicked: %v", r)}
			}
			result <- o
		}()
		o.v, o.err = p.src.fetch()
	}()
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	select {
	case o := <-result:
		p.finish(o.v, o.err, true)
	case <-timer.C:
		p.finish(value{}, fmt.Errorf("no answer within %s", p.timeout), false)
		<-result // a late answer is dropped: credentials-go keeps it for the next attempt
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
	}
}

// finish records an attempt's outcome; ended tells whether the source call
// returned (else it still runs and blocks further attempts).
func (p *Provider) finish(v value, err error, ended bool) {
	now := time.Now()
	var ev *Event
	var stale *Event
	p.mu.Lock()
	if ended {
		p.running = false
	}
	old := p.cur.Load()
	if err == nil {
		if old != nil && old.creds == v.creds {
			// The same key: keep when it was obtained, but take a new
			// expiry (a lease renewed for the same key).
			v.obtained = old.obtained
			if !v.expires.Equal(old.expires) {
				p.cur.Store(&v)
			}
		} else {
			v.obtained = now
			p.cur.Store(&v)
		}
		if old == nil || old.creds != v.creds || p.failures > 0 {
			ev = &Event{Type: p.kind, Source: p.desc, Failures: p.failures, Expires: v.expires, First: old == nil}
		}
		p.failures, p.lastErr = 0, nil
		p.nextNanos.Store(now.Add(p.check).UnixNano())
		if !v.expires.IsZero() && p.warned != v.creds && nearExpiry(v, now) {
			p.warned = v.creds
			stale = &Event{Type: p.kind, Source: p.desc, Expires: v.expires, Failures: 1, Serving: true,
				Err: fmt.Errorf("%s: credentials expire at %s and have not been renewed", p.desc, v.expires.UTC().Format(time.RFC3339))}
		}
	} else {
		p.failures++
		p.lastErr = sanitize(p.desc, err, p.src.secrets(), old)
		p.nextNanos.Store(now.Add(backoff(p.failures, p.minBackoff, p.maxBackoff)).UnixNano())
		ev = &Event{Type: p.kind, Source: p.desc, Err: p.lastErr, Failures: p.failures, Serving: old != nil}
		if old != nil {
			ev.Expires = old.expires
		}
	}
	close(p.done)
	p.mu.Unlock()
	if ev != nil {
		emit(*ev)
	}
	if stale != nil {
		emit(*stale)
	}
}

// nearExpiry reports whether credentials are in the last fifth of their
// life as seen from when they were obtained (or their last 5 minutes).
func nearExpiry(v value, now time.Time) bool {
	left := v.expires.Sub(now)
	return left < v.expires.Sub(v.obtained)/5 || left < 5*time.Minute
}

func backoff(failures int, minimum, maximum time.Duration) time.Duration {
	d := minimum
	for i := 1; i < failures && d < maximum; i++ {
		d *= 2
	}
	return min(d, maximum)
}

// Event is the outcome of a refresh worth telling: new credentials, or a
// failure. It holds nothing secret.
type Event struct {
	Type   string // the credentials type, e.g. oidc_role_arn
	Source string // names the source without secrets, e.g. "oidc_role_arn acs:ram::1:role/x"
	// Err is nil when new credentials were obtained; else why the attempt
	// failed (sanitized: no secret, token or response body).
	Err error
	// Failures is the number of consecutive failed attempts: with Err,
	// including this one; without, the failures this success ended.
	Failures int
	// First: the first credentials this provider obtained.
	First bool
	// Serving: after a failure, previous credentials are still served.
	Serving bool
	// Expires is when the credentials served expire, when known.
	Expires time.Time
}

var hooks struct {
	mu     sync.RWMutex
	logger *slog.Logger
	on     func(Event)
}

// SetLogger sets where refreshes and failures are logged (default
// slog.Default()).
func SetLogger(l *slog.Logger) {
	hooks.mu.Lock()
	hooks.logger = l
	hooks.mu.Unlock()
}

// SetEventHook sets a function called with every Event, e.g. to count
// failures in a metric; nil removes it. It must not block.
func SetEventHook(fn func(Event)) {
	hooks.mu.Lock()
	hooks.on = fn
	hooks.mu.Unlock()
}

func emit(e Event) {
	hooks.mu.RLock()
	logger, on := hooks.logger, hooks.on
	hooks.mu.RUnlock()
	if logger == nil {
		logger = slog.Default()
	}
	attrs := []any{"credentials", e.Source} // not "source": promslog uses it for the code location
	if !e.Expires.IsZero() {
		attrs = append(attrs, "expires", e.Expires.UTC().Format(time.RFC3339))
	}
	switch {
	case e.Err != nil:
		serving := "nothing: calls fail until an attempt succeeds"
		if e.Serving {
			serving = "the previous credentials"
		}
		logger.Warn("Credentials refresh failed", append(attrs, "err", e.Err, "failures", e.Failures, "serving", serving)...)
	case e.First:
		logger.Info("Credentials obtained", append(attrs, "after_failures", e.Failures)...)
	default:
		logger.Info("Credentials refreshed", append(attrs, "after_failures", e.Failures)...)
	}
	count(e)
	if on != nil {
		on(e)
	}
}

// errNoCredentials is what a source says when it has nothing at all.
var errNoCredentials = errors.New("no credentials")
