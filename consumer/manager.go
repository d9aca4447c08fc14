// Package consumer is the exporter's consumer engine on the SDK's client: a group member per (region, project, logstore), one scheduler and a bounded pool of pullers for every shard.
package consumer

import (
	"log/slog"
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
