// Package consumer is the exporter's consumer engine on the SDK's client: a group member per (region, project, logstore), one scheduler and a bounded pool of pullers for every shard.
package consumer

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// Manager runs a group member per configured logstore and pulls every held
// shard through one scheduler. One broken logstore never stops the others:
// each member retries on its own.
type Manager struct {
	logger      *slog.Logger
	metrics     *collector.Metrics
	acks        *collector.ScrapeAcks
	stopTimeout time.Duration
	startedAt   time.Time

	transports   *transports
	sched        *scheduler[*shardState] // pulls
	latePulls    sync.WaitGroup          // pulls whose answers came too late for their worker
	lateSlots    chan struct{}           // one per late pull, up to maxLatePulls
	heartbeats   *scheduler[*member]
	budget       *byteBudget
	activeShards atomic.Int64 // shards being pulled, for the idle poll interval

	// applyMu serialises Apply and Stop; mu guards the fields below and is
	// never held while members stop, so scrapes go on during a reload.
	applyMu     sync.Mutex
	mu          sync.Mutex
	settings    Settings
	scoped      *scopedRules // the rules of the last Apply, for discovered logstores
	members     map[string]*member
	discoverers map[string]*discoverer // by region/project; written under applyMu and mu
}

var _ collector.StateSource = (*Manager)(nil)

// NewManager returns a manager with no members; Apply starts them.
// stopTimeout bounds how long stopping (or releasing a shard) may take.
func NewManager(logger *slog.Logger, metrics *collector.Metrics, stopTimeout time.Duration) *Manager {
	return &Manager{
		logger:      logger,
		metrics:     metrics,
		acks:        metrics.Acks,
		stopTimeout: stopTimeout,
		startedAt:   time.Now(),
		transports:  newTransports(),
		members:     map[string]*member{},
		discoverers: map[string]*discoverer{},
		lateSlots:   make(chan struct{}, maxLatePulls),
	}
}

// SettingsFrom extracts the consumer settings of a validated config;
// consumerName is used when the config names none.
func SettingsFrom(cfg *config.Config, consumerName string) Settings {
	if cfg.ConsumerName != "" {
		consumerName = cfg.ConsumerName
	}
	return Settings{
		ConsumerGroup:        cfg.ConsumerGroup,
		ConsumerName:         consumerName,
		CursorStart:          cfg.CursorStart,
		CursorStartTime:      cfg.CursorStartTime(),
		HeartbeatInterval:    cfg.HeartbeatInterval,
		ConsumerTimeout:      cfg.ConsumerTimeout,
		FetchInterval:        cfg.FetchInterval,
		IdlePollInterval:     cfg.IdlePollInterval,
		CommitInterval:       cfg.CommitInterval,
		UnscrapedCommitAfter: cfg.UnscrapedCommitAfter,
		MaxFetchGroups:       cfg.MaxFetchGroups,
		PullWorkers:          cfg.PullWorkers,
		PullBufferBytes:      int64(cfg.PullBufferBytes),
		LagInterval:          cfg.LagInterval,
		RequestTimeout:       cfg.RequestTimeout,
		SampleMaxLength:      cfg.SampleMaxLength,
		Canary:               cfg.Canary,
	}
}

// CompileRules compiles a config's rules; an error names the rule.
func CompileRules(cfg *config.Config) (*match.RuleSet, error) {
	return match.Compile(ruleSpecs(cfg.Rules))
}

// ruleSpecs: a rule with its case_insensitive, and and unless conditions
// (a condition's case-insensitivity, its own or inherited from the rule,
// becomes a (?i) prefix; see config.Rule.MatchSpec).
func ruleSpecs(rules []config.Rule) []match.Spec {
	specs := make([]match.Spec, len(rules))
	for i := range rules {
		specs[i] = rules[i].MatchSpec()
	}
	return specs
}

// scopedRules compiles, once per distinct set, the rules that apply to each
// logstore (a rule's logstores: globs).
type scopedRules struct {
	rules []config.Rule
	sets  map[string]*compiledRules // by the indexes of the rules that apply
}

func (s *scopedRules) forTarget(key string) (*compiledRules, error) {
	var applies []config.Rule
	sig := make([]byte, 0, 64)
	for i := range s.rules {
		if s.rules[i].AppliesTo(key) {
			applies = append(applies, s.rules[i])
			sig = strconv.AppendInt(append(sig, ','), int64(i), 10)
		}
	}
	if c, ok := s.sets[string(sig)]; ok {
		return c, nil
	}
	set, err := match.Compile(ruleSpecs(applies))
	if err != nil {
		return nil, err
	}
	c := &compiledRules{set: set, labels: make([]collector.RuleLabels, len(set.Rules)), samples: make([]ruleSample, len(set.Rules))}
	for i, r := range set.Rules {
		c.labels[i] = collector.RuleLabels{Name: r.Name, Field: r.Field}
		c.samples[i] = ruleSample{applies[i].Sampler(), applies[i].EffectiveSampleMinInterval()}
	}
	s.sets[string(sig)] = c
	return c, nil
}

// Apply makes the running members match cfg: rule changes take effect on the
// next batch without restarting anything; members whose logstore is gone or
// changed drain (their counts scraped and committed) before their
// replacement starts; a change of the shared settings restarts every member.
func (e *Manager) Apply(cfg *config.Config, settings Settings) error {
	set, err := CompileRules(cfg)
	if err != nil {
		return err
	}
	labels := make([]collector.RuleLabels, len(set.Rules))
	for i, r := range set.Rules {
		labels[i] = collector.RuleLabels{Name: r.Name, Field: r.Field}
	}
	scoped := &scopedRules{rules: cfg.Rules, sets: map[string]*compiledRules{}}
	targetRules := map[string]*compiledRules{}
	for _, t := range cfg.Targets() {
		if targetRules[t.Key()], err = scoped.forTarget(t.Key()); err != nil {
			return err
		}
	}

	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.metrics.ForgetRules(labels)
	e.mu.Lock()
	previous := e.scoped
	e.mu.Unlock()
	// Once every member has the new rules: a batch under the old ones
	// could otherwise bring an old sample back.
	defer e.metrics.ForgetSamples(samplingChanged(previous, cfg.Rules))

	desired := map[string]config.Target{}
	for _, t := range cfg.Targets() {
		desired[t.Key()] = t
	}
	e.mu.Lock()
	restartAll := settings != e.settings
	e.mu.Unlock()

	// Projects with logstore patterns: keep a discoverer whose project and
	// settings are unchanged, with the logstores it found; replace the others.
	wanted := map[string]config.Discovery{}
	for _, d := range cfg.Discoveries() {
		wanted[d.Key()] = d
	}
	var starting, ending []*discoverer
	for key, d := range e.discoverers {
		if want, ok := wanted[key]; ok && !restartAll && d.interval == cfg.DiscoveryInterval && reflect.DeepEqual(want, d.spec) {
			for name := range d.found {
				t := d.spec.Target
				t.Logstore = name
				if _, named := desired[t.Key()]; !named {
					desired[t.Key()] = t
					if compiled, err := scoped.forTarget(t.Key()); err == nil {
						targetRules[t.Key()] = compiled
					}
				}
			}
			delete(wanted, key)
			continue
		}
		ending = append(ending, d)
		e.mu.Lock()
		delete(e.discoverers, key)
		e.mu.Unlock()
	}
	stopDiscoverers(ending)
	for _, d := range ending {
		if _, replaced := wanted[d.spec.Key()]; !replaced {
			e.metrics.DeleteDiscovery(d.spec.Target.Region, d.spec.Target.Project)
		}
	}
	for key, spec := range wanted {
		d := e.newDiscoverer(spec, settings, cfg.DiscoveryInterval)
		e.mu.Lock()
		e.discoverers[key] = d
		e.mu.Unlock()
		starting = append(starting, d)
	}

	e.mu.Lock()
	e.settings = settings
	e.scoped = scoped
	var stopping, removed []*member
	for key, m := range e.members {
		want, ok := desired[key]
		if restartAll || !ok || want != m.cfg {
			stopping = append(stopping, m)
			delete(e.members, key)
			if !ok {
				removed = append(removed, m)
			}
			continue
		}
		m.useRules(targetRules[key])
	}
	e.mu.Unlock()
	// A replacement joins the group under the same consumer name, so the old
	// member must be gone first.
	e.stopMembers(stopping)
	for _, m := range removed {
		e.metrics.DeleteTarget(m.labels)
	}

	if e.sched == nil || restartAll {
		if e.sched != nil {
			e.sched.close()
		}
		e.budget = newByteBudget(settings.PullBufferBytes)
		e.sched = newScheduler(settings.PullWorkers, pullSlack, e.newPullWorker, nil)
	}
	if e.heartbeats == nil {
		e.heartbeats = newScheduler(heartbeatWorkers, heartbeatSlack, func() func([]*member) { return e.heartbeatBatch }, e.heartbeatBatch)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, want := range desired {
		if _, running := e.members[key]; running {
			continue
		}
		m := newMember(e, want, settings, false)
		m.useRules(targetRules[key])
		if d := e.discoverers[want.Region+"/"+want.Project]; d != nil && d.found[want.Logstore] {
			m.onGone = d.relist
		}
		e.members[key] = m
		m.start()
	}
	for _, d := range starting {
		go e.runDiscoverer(d)
	}
	return nil
}

// samplingChanged lists the rules whose samples render differently now
// (sample_fields, sample_max_length, redact): their old samples go.
func samplingChanged(previous *scopedRules, rules []config.Rule) []collector.RuleLabels {
	if previous == nil {
		return nil
	}
	before := map[collector.RuleLabels]string{}
	for i := range previous.rules {
		r := &previous.rules[i]
		before[collector.RuleLabels{Name: r.Name, Field: r.Field}] = r.SampleSignature()
	}
	var changed []collector.RuleLabels
	for i := range rules {
		r := &rules[i]
		key := collector.RuleLabels{Name: r.Name, Field: r.Field}
		if sig, ok := before[key]; ok && sig != r.SampleSignature() {
			changed = append(changed, key)
		}
	}
	return changed
}

// stopMembers stops members in parallel, each within the stop timeout. Their
// calls are cut a moment before it: an SDK read call may take up to
// sdkRetryWindow more to return after its request was cancelled.
func (e *Manager) stopMembers(members []*member) {
	deadline := time.Now().Add(e.stopTimeout - min(e.stopTimeout/5, 500*time.Millisecond))
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(func() { m.stop(deadline) })
	}
	wg.Wait()
}

// Stop drains every member (each shard's counts scraped, then committed),
// within the stop timeout, and stops pulling. Nothing keeps running after.
func (e *Manager) Stop() {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	var discoverers []*discoverer
	e.mu.Lock()
	for key, d := range e.discoverers {
		d.cancel() // no new members from here on
		discoverers = append(discoverers, d)
		delete(e.discoverers, key)
	}
	e.mu.Unlock()
	// Discoverers end while members drain: neither waits for the other.
	defer stopDiscoverers(discoverers)
	e.mu.Lock()
	members := make([]*member, 0, len(e.members))
	for key, m := range e.members {
		members = append(members, m)
		delete(e.members, key)
	}
	e.mu.Unlock()
	e.stopMembers(members)
	if e.sched != nil {
		e.sched.close()
		e.sched = nil
	}
	e.latePulls.Wait()
	if e.heartbeats != nil {
		e.heartbeats.close()
		e.heartbeats = nil
	}
}

// Ready reports whether every member has started or reported why it cannot;
// pending names those still trying for the first time.
func (e *Manager) Ready() (ready bool, pending []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, m := range e.members {
		if !m.ready() {
			pending = append(pending, key)
		}
	}
	for key, d := range e.discoverers {
		if !d.attempted.Load() {
			pending = append(pending, key+" (listing its logstores)")
		}
	}
	sort.Strings(pending)
	return len(pending) == 0, pending
}

// LogstoreStates reports every member's health for the collector.
func (e *Manager) LogstoreStates() []collector.LogstoreState {
	e.mu.Lock()
	members := make([]*member, 0, len(e.members))
	for _, m := range e.members {
		members = append(members, m)
	}
	e.mu.Unlock()
	out := make([]collector.LogstoreState, len(members))
	for i, m := range members {
		out[i] = m.state()
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Target, out[j].Target
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		if a.Project != b.Project {
			return a.Project < b.Project
		}
		return a.Logstore < b.Logstore
	})
	return out
}

// The automatic idle interval aims at idlePollsPerSecond polls of quiet
// shards: up to about 2,000 shards a quiet shard is polled more often than
// every maxIdleInterval, above that every maxIdleInterval. A log then shows
// within that plus a round trip whatever the number of shards (the bar is
// 1.5 s), for a bounded number of small requests a second.
const (
	idlePollsPerSecond = 1700
	maxIdleInterval    = 1200 * time.Millisecond
)

// idleInterval is how long a quiet shard waits before its next poll.
func (e *Manager) idleInterval(s Settings) time.Duration {
	if s.IdlePollInterval > 0 {
		return s.IdlePollInterval
	}
	n := e.activeShards.Load()
	return min(max(time.Duration(n)*time.Second/idlePollsPerSecond, s.FetchInterval), maxIdleInterval)
}

// busyPullBytes: a pull this large means more is waiting; pull again at once.
const busyPullBytes = 1 << 20

const (
	// pullSlack: quiet shards due within this of each other are polled in
	// one batch (one wake-up of a worker), a few milliseconds early.
	pullSlack = 50 * time.Millisecond
	// heartbeatWorkers run every member's heartbeats; when all are busy (a
	// region answering slowly), a batch runs on a goroutine of its own.
	heartbeatWorkers = 4
	heartbeatSlack   = 100 * time.Millisecond
)

// newPullWorker gives each worker of the pool its own walker and buffers.
// A worker sends the polls of its whole batch before reading any answer:
// a batch of quiet shards then costs one wake-up instead of one each.
func (e *Manager) newPullWorker() func([]*shardState) {
	raw := newRawBatch()
	var inflight []inflightPull
	return func(batch []*shardState) {
		inflight = inflight[:0]
		for _, sh := range batch {
			if p, ok := e.beginPull(sh); ok {
				inflight = append(inflight, p)
			}
		}
		sendPulls(inflight)
		readAnswers(inflight, e.takeLateSlot, func(p *inflightPull) { e.endPull(p, raw) }, func(late inflightPull) {
			e.latePulls.Go(func() {
				raw := lateRawBatches.Get().(*rawBatch)
				e.endPull(&late, raw)
				lateRawBatches.Put(raw)
				<-e.lateSlots
			})
		})
	}
}

// readAnswers ends a batch's pulls in order, as a pull worker does: end
// reads an answer in time; one late (its logstore's calls may hang) goes
// to endLate, which waits for it on a goroutine of its own, when
// takeLateSlot allows, and the polls pipelined behind it are sent again,
// so the rest of the batch is not held up. Polls left on a connection an
// earlier answer broke are sent again together too, rather than each
// alone while the worker waits. pulls are cleared as they end.
func readAnswers(pulls []inflightPull, takeLateSlot func() bool, end func(*inflightPull), endLate func(inflightPull)) {
	for i := range pulls {
		p := &pulls[i]
		if p.err == nil && p.sent != nil && p.sent.onBrokenPipeline() {
			resendFrom(p.sent, pulls[i:])
		}
		if p.err == nil && p.sent != nil && !p.sent.answeredInTime() && takeLateSlot() {
			resendBehind(p.sent, pulls[i+1:])
			endLate(*p)
		} else {
			end(p)
		}
		pulls[i] = inflightPull{}
	}
}

// maxLatePulls bounds the pulls waiting on goroutines of their own for
// late answers (and the connections they hold); beyond it a worker waits
// for a late answer itself, as it does for one in time.
const maxLatePulls = 256

// takeLateSlot reserves a place for a late pull, if one is free.
func (e *Manager) takeLateSlot() bool {
	select {
	case e.lateSlots <- struct{}{}:
		return true
	default:
		return false
	}
}

// resendBehind takes the polls pipelined behind a late one off its
// connection and sends them again, pipelined on a fresh connection: one
// dial whatever their number. Those already cancelled are not sent. When a
// host stalls as a whole, each round finds the next one late and resends
// the rest: a pipeline of n costs n rounds and n²/2 requests, once per
// request_timeout, as the late polls wait that long before their next.
func resendBehind(late *sentRequest, pulls []inflightPull) {
	resend(pulls, late.windowStart(), late.takeOff)
}

// resendFrom sends again, pipelined on a fresh connection, first and the
// polls after it on its connection, which an earlier answer broke.
func resendFrom(first *sentRequest, pulls []inflightPull) {
	broken := first.conn
	resend(pulls, first.windowStart(), func(f *sentRequest) bool { return f.leaveBroken(broken) })
}

// resend sends again, pipelined, the polls that take takes off their
// connection (those already cancelled get their cancellation as error);
// their answer window runs from windowFrom.
func resend(pulls []inflightPull, windowFrom time.Time, take func(*sentRequest) bool) {
	var ctxs []context.Context
	var reqs []*leanRequest
	var idx []int
	for j := range pulls {
		f := pulls[j].sent
		if f == nil || !take(f) {
			continue
		}
		if err := f.ctx.Err(); err != nil {
			pulls[j].sent, pulls[j].err = nil, err
			continue
		}
		ctxs, reqs, idx = append(ctxs, f.ctx), append(reqs, f.req), append(idx, j)
	}
	if len(reqs) == 0 {
		return
	}
	sent, errs := pulls[idx[0]].sent.t.sendPipelined(ctxs, reqs)
	for k, j := range idx {
		pulls[j].sent, pulls[j].err = sent[k], errs[k]
		if sent[k] != nil {
			// Their window runs from the first sending: when a host stalls
			// as a whole, each poll resent is found late within a short
			// grace rather than a whole window each.
			sent[k].windowFrom = windowFrom
		}
	}
}

// lateRawBatches are the buffers of pulls left to goroutines of their own.
var lateRawBatches = sync.Pool{New: func() any { return newRawBatch() }}

// inflightPull is a pull whose request is on its way.
type inflightPull struct {
	sh      *shardState
	cursor  string
	started time.Time
	req     *leanRequest // signed, not yet sent
	sent    *sentRequest
	err     error // the request could not be signed or sent
}

// beginPull sends one poll of a shard, unless it no longer wants one.
func (e *Manager) beginPull(sh *shardState) (inflightPull, bool) {
	m := sh.member
	m.mu.Lock()
	if m.shards[sh.id] != sh || sh.status != shardActive || sh.finished {
		m.mu.Unlock()
		return inflightPull{}, false
	}
	sh.inFlight = true
	m.pullsInFlight++
	p := inflightPull{sh: sh, cursor: sh.cursor, started: time.Now()}
	m.mu.Unlock()
	p.req, p.err = m.puller.prepare(sh.id, p.cursor, m.settings.MaxFetchGroups, &sh.signed)
	return p, true
}

// sendPulls sends a batch's prepared polls, those to one host pipelined on
// shared connections: a batch of quiet shards then costs a few system calls
// rather than several per poll. Answers are read in the batch's order.
func sendPulls(pulls []inflightPull) {
	var ctxs []context.Context
	var reqs []*leanRequest
	var idx []int
	for i := range pulls {
		first := &pulls[i]
		if first.err != nil || first.req == nil || first.sent != nil {
			continue
		}
		t := first.sh.member.puller.transport
		ctxs, reqs, idx = ctxs[:0], reqs[:0], idx[:0]
		for j := i; j < len(pulls); j++ {
			p := &pulls[j]
			if p.err != nil || p.req == nil || p.sent != nil || p.sh.member.puller.transport != t ||
				p.req.host != first.req.host || p.req.scheme != first.req.scheme {
				continue
			}
			ctxs = append(ctxs, p.sh.member.pullCtx)
			reqs = append(reqs, p.req)
			idx = append(idx, j)
		}
		sent, errs := t.sendPipelined(ctxs, reqs)
		for k, j := range idx {
			pulls[j].sent, pulls[j].err, pulls[j].req = sent[k], errs[k], nil
		}
	}
}

// endPull reads a poll's answer, counts what arrived and schedules the
// shard's next pull.
func (e *Manager) endPull(p *inflightPull, raw *rawBatch) {
	sh, cursor, started := p.sh, p.cursor, p.started
	m := sh.member
	var res *pulled
	err := p.err
	if err == nil {
		res, err = m.puller.finish(p.sent, raw.header)
	}
	if current := m.rules.Load(); sh.work != nil && sh.work.rules != current {
		sh.work.use(current) // a reload's new rules get their series at 0 on idle shards too
	}
	groups, next, rawSize := 0, "", 0
	if err == nil {
		groups, next, rawSize = res.groups, res.nextCursor, len(res.raw)
		if res.raw != nil {
			err = sh.work.count(raw.reset(res.raw))
			raw.reset(nil)
		}
		res.release()
	}
	// Read after the counts were added: a scrape that moves past this
	// epoch has gathered them.
	epoch := e.acks.Epoch()
	now := time.Now()

	m.mu.Lock()
	defer m.mu.Unlock()
	sh.inFlight = false
	m.pullsInFlight--
	if m.gone {
		return // its series are deleted: count no error that would bring them back
	}
	current := m.shards[sh.id] == sh
	var due time.Time
	switch {
	case err != nil && stopped(m.pullCtx, err):
		// Draining: nothing was counted.
	case err != nil:
		code := errorCode(err)
		e.metrics.CountError(m.labels, "PullLogs", code)
		sh.pullFailures++
		if code == codeLogStoreNotExist && m.onGone != nil {
			m.onGone()
		}
		if sh.pullFailures == upFailureThreshold {
			m.logger.Warn("Pulls keep failing", "shard", sh.id, "err", err)
		}
		if isInvalidCursor(err) && current && sh.status == shardActive {
			m.logger.Warn("Cursor expired (SLS retention); restarting at the oldest retained data", "shard", sh.id, "cursor", cursor)
			sh.status, sh.resetToBegin, sh.retryAt = shardAcquiring, true, now
			e.activeShards.Add(-1)
			m.wake()
			return
		}
		base := 100 * time.Millisecond
		if httpStatus(err) == 403 { // read quota: give the shard's quota time to refill
			base = 500 * time.Millisecond
		}
		due = now.Add(backoff(sh.pullFailures, base))
	case groups > 0:
		sh.pullFailures = 0
		sh.lastPull = now
		sh.cursor = next
		sh.pending = append(sh.pending, ackEntry{epoch: epoch, cursor: next})
		if len(sh.pending) == 1 {
			m.wake() // a quiet member sleeps long: its commits and lag probes start now
		}
		sh.caughtUp = false
		due = started.Add(m.settings.FetchInterval)
		if groups >= m.settings.MaxFetchGroups || rawSize >= busyPullBytes {
			due = now
		}
	default:
		sh.pullFailures = 0
		sh.lastPull = now
		sh.caughtUp, sh.lagSeconds = true, 0
		if sh.readonly {
			sh.finished = true
			m.logger.Debug("Readonly shard read to its end", "shard", sh.id)
			m.wake()
			return
		}
		// From the poll's start: its batch's other answers may have taken a while.
		idle := e.idleInterval(m.settings)
		due = started.Add(idle)
		if earliest := now.Add(idle / 4); due.Before(earliest) {
			due = earliest
		}
	}
	switch {
	case current && sh.status == shardActive:
		m.sched.schedule(sh, due, groups > 0) // a shard with data gets a worker of its own
	case sh.status == shardDraining:
		m.wake()
	}
}

// firstPollDelay spreads the first polls of many shards over an idle
// interval, so they do not all come due together forever after.
func (e *Manager) firstPollDelay(s Settings) time.Duration {
	return time.Duration(rand.Int64N(int64(e.idleInterval(s)) + 1))
}
