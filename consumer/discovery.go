// Logstores by pattern: list a project's logstores every discovery interval, consume the new matches, stop those that are gone.
package consumer

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
)

// listPageSize is the most logstores SLS returns in one page.
const listPageSize = 500

// discoverer lists one project and keeps the manager's members of its
// matching logstores in step with the listing.
type discoverer struct {
	spec     config.Discovery
	interval time.Duration
	client   *sls.Client
	release  func()

	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{}
	done   chan struct{}

	// attempted: the first listing has been tried (its members started, or
	// its failure reported); until then the exporter is not ready.
	attempted atomic.Bool

	// Under the manager's applyMu.
	listed bool            // a listing has succeeded: what appears later is new
	found  map[string]bool // logstores consumed because they matched
}

func (e *Manager) newDiscoverer(spec config.Discovery, settings Settings, interval time.Duration) *discoverer {
	transport := e.transports.acquire(spec.Target, settings.RequestTimeout)
	d := &discoverer{
		spec:     spec,
		interval: interval,
		release:  func() { e.transports.release(spec.Target) },
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		found:    map[string]bool{},
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	httpClient := newSDKHTTPClient(transport, d.ctx)
	d.client = (&sls.Client{
		Endpoint:       spec.Target.Endpoint,
		UserAgent:      "sls_keyword_exporter/discovery",
		RequestTimeOut: settings.RequestTimeout,
		RetryTimeOut:   sdkRetryWindow,
		HTTPClient:     httpClient,
	}).WithCredentialsProvider(credentialsProvider(spec.Target))
	return d
}

// run lists the project at once and then every interval, until stopped.
func (e *Manager) runDiscoverer(d *discoverer) {
	defer close(d.done)
	defer d.release()
	logger := e.logger.With("region", d.spec.Target.Region, "project", d.spec.Target.Project)
	failures := 0
	for {
		names, err := d.list()
		wait := d.interval
		switch {
		case err != nil && d.ctx.Err() != nil:
			return
		case err != nil:
			failures++
			e.metrics.CountDiscoveryError(d.spec.Target.Region, d.spec.Target.Project, errorCode(err))
			if failures <= 3 || failures%20 == 0 {
				logger.Error("Listing the project's logstores failed; keeping the ones found", "err", err)
			}
			wait = min(d.interval, backoff(failures, time.Second))
		default:
			failures = 0
			if !e.applyListing(d, names) {
				return // the manager stopped the discoverer meanwhile
			}
		}
		d.attempted.Store(true)
		// A little jitter keeps many projects from listing in step; taken
		// off the wait, so a new logstore is found within one interval.
		wait -= time.Duration(rand.Int64N(int64(wait/10) + 1))
		select {
		case <-d.ctx.Done():
			return
		case <-d.kick:
		case <-time.After(wait):
		}
	}
}

// list pages through the project's logstores.
func (d *discoverer) list() ([]string, error) {
	var names []string
	for offset := 0; ; {
		page, err := d.client.ListLogStoreV2(d.spec.Target.Project, offset, listPageSize, "None")
		if err != nil {
			return nil, err
		}
		names = append(names, page...)
		if len(page) < listPageSize {
			return names, nil
		}
		offset += len(page)
	}
}

// applyListing starts members for newly matching logstores and stops those
// of logstores the listing no longer has. It reports false when the
// discoverer was stopped before it could apply.
func (e *Manager) applyListing(d *discoverer, names []string) bool {
	// Confirm what the listing lacks before taking applyMu (the calls take
	// time). Only this goroutine writes d.found, so it may read it unlocked.
	inListing := make(map[string]bool, len(names))
	for _, name := range names {
		inListing[name] = true
	}
	confirmedGone := map[string]bool{}
	for name := range d.found {
		if !inListing[name] && d.confirmGone(name) {
			confirmedGone[name] = true
		}
	}
	// Apply and Stop hold applyMu while they stop discoverers: never block
	// on it, or they would wait for us while we wait for them.
	for !e.applyMu.TryLock() {
		select {
		case <-d.ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	defer e.applyMu.Unlock()
	if d.ctx.Err() != nil {
		return false
	}
	listed := map[string]bool{}
	var added []string
	for _, name := range names {
		if !d.spec.Matches(name) {
			continue
		}
		listed[name] = true
		if !d.found[name] {
			added = append(added, name)
		}
	}
	var gone []string
	for name := range d.found {
		if !listed[name] && confirmedGone[name] {
			gone = append(gone, name)
		}
	}
	sort.Strings(added)
	sort.Strings(gone)
	logger := e.logger.With("region", d.spec.Target.Region, "project", d.spec.Target.Project)
	e.mu.Lock()
	settings, rules := e.settings, e.scoped
	e.mu.Unlock()

	// Logstores that are gone: no final checkpoint, there is nowhere to write it.
	var stopping []*member
	e.mu.Lock()
	for _, name := range gone {
		delete(d.found, name)
		key := d.spec.Target.Region + "/" + d.spec.Target.Project + "/" + name
		if m := e.members[key]; m != nil {
			stopping = append(stopping, m)
			delete(e.members, key)
		}
	}
	e.mu.Unlock()
	for _, m := range stopping {
		m.abandon()
		e.metrics.DeleteTarget(m.labels)
		logger.Info("Logstore is gone; stopped consuming it", "logstore", m.cfg.Logstore)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	for _, name := range added {
		target := d.spec.Target
		target.Logstore = name
		key := target.Key()
		d.found[name] = true
		if _, running := e.members[key]; running {
			continue
		}
		compiled, err := rules.forTarget(key)
		if err != nil { // validated at load: cannot happen
			logger.Error("Compiling rules for a discovered logstore failed", "logstore", name, "err", err)
			continue
		}
		// One that appears while we run is read from its beginning, or its
		// first logs would be lost; those there at the first listing start
		// where cursor_start says.
		m := newMember(e, target, settings, d.listed)
		m.useRules(compiled)
		m.onGone = d.relist
		e.members[key] = m
		m.start()
		logger.Info("Discovered logstore", "logstore", name, "from_beginning", d.listed)
	}
	d.listed = true
	e.metrics.SetDiscovered(d.spec.Target.Region, d.spec.Target.Project, len(d.found))
	return true
}

// confirmGone asks for a logstore a listing lacks: offset paging skips one
// when another is deleted between pages, and abandoning a logstore that
// exists would drop its uncommitted counts. Only LogStoreNotExist (or
// ProjectNotExist) counts as gone; any other failure keeps it for now.
func (d *discoverer) confirmGone(name string) bool {
	_, err := d.client.GetLogStore(d.spec.Target.Project, name)
	switch errorCode(err) {
	case codeLogStoreNotExist, "ProjectNotExist":
		return true
	}
	return false
}

// stop ends the discoverer and waits for it.
func (d *discoverer) stop() {
	d.cancel()
	<-d.done
}

// stopDiscoverers stops discoverers in parallel: each may be in a call
// that its cancellation cuts, or waiting for its first credentials.
func stopDiscoverers(ds []*discoverer) {
	for _, d := range ds {
		d.cancel()
	}
	for _, d := range ds {
		<-d.done
	}
}

// relist asks for a listing now: a member saw its logstore vanish.
func (d *discoverer) relist() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// abandon stops a member of a logstore that no longer exists at once:
// nothing to drain, no checkpoint to write.
func (m *member) abandon() {
	m.mu.Lock()
	m.gone = true
	m.mu.Unlock()
	m.stop(time.Now())
}
