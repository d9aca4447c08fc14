// Package consumer drives the SLS SDK: one consumer-group worker per (region, project, logstore), started, reloaded and stopped together.
package consumer

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// Manager runs a target per configured logstore. One broken target never
// stops the others: each retries on its own.
type Manager struct {
	logger      *slog.Logger
	metrics     *collector.Metrics
	stopTimeout time.Duration

	rules atomic.Pointer[compiledRules] // read by every processor

	// applyMu serialises Apply and Stop; mu guards the fields below and is
	// never held while targets stop, so scrapes go on during a reload.
	applyMu  sync.Mutex
	mu       sync.Mutex
	settings Settings
	targets  map[string]*target
}

var _ collector.StateSource = (*Manager)(nil)

// NewManager returns a manager with no targets; Apply starts them.
// stopTimeout bounds how long stopping one target may take.
func NewManager(logger *slog.Logger, metrics *collector.Metrics, stopTimeout time.Duration) *Manager {
	return &Manager{logger: logger, metrics: metrics, stopTimeout: stopTimeout, targets: map[string]*target{}}
}

// SettingsFrom extracts the consumer settings of a validated config;
// consumerName is used when the config names none.
func SettingsFrom(cfg *config.Config, consumerName string) Settings {
	if cfg.ConsumerName != "" {
		consumerName = cfg.ConsumerName
	}
	return Settings{
		ConsumerGroup:     cfg.ConsumerGroup,
		ConsumerName:      consumerName,
		CursorStart:       cfg.CursorStart,
		CursorStartTime:   cfg.CursorStartTime(),
		HeartbeatInterval: cfg.HeartbeatInterval,
		ConsumerTimeout:   cfg.ConsumerTimeout,
		FetchInterval:     cfg.FetchInterval,
		CommitInterval:    cfg.CommitInterval,
		MaxFetchGroups:    cfg.MaxFetchGroups,
		LagInterval:       cfg.LagInterval,
		RequestTimeout:    cfg.RequestTimeout,
		RetryTimeout:      cfg.RetryTimeout,
		SampleMaxLength:   cfg.SampleMaxLength,
		Canary:            cfg.Canary,
	}
}

// CompileRules compiles a config's rules; an error names the rule.
func CompileRules(cfg *config.Config) (*match.RuleSet, error) {
	specs := make([]match.Spec, len(cfg.Rules))
	for i, r := range cfg.Rules {
		specs[i] = match.Spec{Name: r.Name, Field: r.Field, Regex: r.Regex}
	}
	return match.Compile(specs)
}

// Apply makes the running targets match cfg: rule changes take effect on the
// next batch without restarting anything; targets that are gone or changed
// are stopped (flushing their checkpoints) before their replacement starts;
// a change of the shared settings restarts every target.
func (m *Manager) Apply(cfg *config.Config, settings Settings) error {
	set, err := CompileRules(cfg)
	if err != nil {
		return err
	}
	labels := make([]collector.RuleLabels, len(set.Rules))
	for i, r := range set.Rules {
		labels[i] = collector.RuleLabels{Name: r.Name, Field: r.Field}
	}

	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.rules.Store(&compiledRules{set: set, labels: labels})
	m.metrics.ForgetRules(labels)

	desired := map[string]config.Target{}
	for _, t := range cfg.Targets() {
		desired[t.Key()] = t
	}
	m.mu.Lock()
	restartAll := settings != m.settings
	m.settings = settings
	var stopping []*target
	for key, t := range m.targets {
		if want, ok := desired[key]; restartAll || !ok || want != t.cfg {
			stopping = append(stopping, t)
			delete(m.targets, key)
		}
	}
	m.mu.Unlock()
	// A replacement joins the group under the same consumer name, so the old
	// target must be gone first.
	m.stopAll(stopping)

	m.mu.Lock()
	defer m.mu.Unlock()
	for key, want := range desired {
		if _, running := m.targets[key]; running {
			continue
		}
		t := newTarget(want, settings, &m.rules, m.metrics, m.logger)
		m.targets[key] = t
		go t.run()
	}
	return nil
}

// stopAll stops targets in parallel, each within the stop timeout.
func (m *Manager) stopAll(targets []*target) {
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			if !t.stop(m.stopTimeout) {
				t.logger.Warn("Consumer did not stop in time; its last checkpoint may not be saved", "timeout", m.stopTimeout)
			}
		})
	}
	wg.Wait()
}

// Stop stops every target, flushing checkpoints, each within the stop timeout.
func (m *Manager) Stop() {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	targets := make([]*target, 0, len(m.targets))
	for key, t := range m.targets {
		targets = append(targets, t)
		delete(m.targets, key)
	}
	m.mu.Unlock()
	m.stopAll(targets)
}

// Ready reports whether every target has started or reported why it cannot;
// pending names those still trying for the first time.
func (m *Manager) Ready() (ready bool, pending []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, t := range m.targets {
		if !t.ready() {
			pending = append(pending, key)
		}
	}
	sort.Strings(pending)
	return len(pending) == 0, pending
}

// LogstoreStates reports every target's health for the collector.
func (m *Manager) LogstoreStates() []collector.LogstoreState {
	m.mu.Lock()
	targets := make([]*target, 0, len(m.targets))
	for _, t := range m.targets {
		targets = append(targets, t)
	}
	m.mu.Unlock()
	out := make([]collector.LogstoreState, len(targets))
	for i, t := range targets {
		out[i] = t.state()
	}
	sort.Slice(out, func(i, j int) bool {
		return fmt.Sprint(out[i].Target) < fmt.Sprint(out[j].Target)
	})
	return out
}
