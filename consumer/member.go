// Group membership per logstore: create the group, heartbeat the held shards, take and release shards as SLS answers.
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/credentials"
)

// Settings are the consumer knobs shared by every member.
type Settings struct {
	ConsumerGroup     string
	ConsumerName      string
	CursorStart       string // begin | end | time
	CursorStartTime   time.Time
	HeartbeatInterval time.Duration
	// ConsumerTimeout 0 keeps an existing group's timeout and creates a
	// missing group with config.DefaultConsumerTimeout.
	ConsumerTimeout      time.Duration
	FetchInterval        time.Duration
	IdlePollInterval     time.Duration // 0: chosen from the number of shards
	CommitInterval       time.Duration
	UnscrapedCommitAfter time.Duration
	MaxFetchGroups       int
	PullWorkers          int
	PullBufferBytes      int64
	LagInterval          time.Duration
	RequestTimeout       time.Duration
	SampleMaxLength      int
	Canary               config.Canary
}

const (
	// upFailureThreshold consecutive failed heartbeats, or pulls of one
	// shard, set sls_up to 0.
	upFailureThreshold = 3
	// shardRefreshInterval is how often ListShards runs to notice splits
	// and merges (a heartbeat granting an unknown shard also triggers it).
	shardRefreshInterval = time.Minute
	// drainPoll is how often a draining member checks for a scrape's
	// acknowledgement.
	drainPoll = 50 * time.Millisecond
	// sdkRetryWindow bounds the SDK's internal retry loop to a single
	// attempt (its first backoff is at least 250 ms): we retry ourselves,
	// with our deadlines and the SLS error code intact.
	sdkRetryWindow   = 200 * time.Millisecond
	setupBaseBackoff = 500 * time.Millisecond
)

func init() {
	// The SDK's read calls retry 5xx until the retry window ends and then
	// return a context error without the SLS code. We retry ourselves.
	sls.RetryOnServerErrorEnabled = false
}

// shardMeta is what ListShards says of a shard.
type shardMeta struct {
	readonly   bool
	createdAt  int64  // unix seconds, SLS's clock
	begin, end string // its hash key range [begin, end), lower-case hex
}

// overlaps reports whether two shards' key ranges meet: a split's children
// lie within their parent's range, a merge's child covers both parents'.
func (a shardMeta) overlaps(b shardMeta) bool {
	return a.begin < b.end && b.begin < a.end
}

// member is this replica's membership in the consumer group of one
// (region, project, logstore): two goroutines, the heartbeat and the work
// loop (group setup, cursors, commits, releases, lag probes).
type member struct {
	eng      *Manager
	cfg      config.Target
	labels   collector.Target
	settings Settings
	logger   *slog.Logger
	// fromBegin reads shards without a checkpoint from their beginning: the
	// logstore appeared while the exporter was running.
	fromBegin bool
	// onGone, for a discovered logstore, asks for a listing when SLS says
	// the logstore does not exist: a listing without it stops the member.
	onGone func()

	// rules are the compiled rules that apply to this logstore.
	rules atomic.Pointer[compiledRules]

	client     *sls.Client
	puller     *puller
	sched      *scheduler[*shardState]
	heartbeats *scheduler[*member]

	// ctx ends every call in flight when the member is gone (or its stop
	// deadline passed); pullCtx ends pulls as soon as the member drains.
	ctx         context.Context
	cancel      context.CancelFunc
	pullCtx     context.Context
	cancelPulls context.CancelFunc

	stopOnce sync.Once
	stopCh   chan struct{}
	kick     chan struct{}
	done     chan struct{}

	// The heartbeat runs on the manager's heartbeat scheduler.
	hbSlot     schedSlot
	hbStarted  bool // under mu
	hbStopped  bool // under mu
	hbDone     chan struct{}
	hbDoneOnce sync.Once
	// background holds the lag probes, which must end with the member.
	background sync.WaitGroup

	mu              sync.Mutex
	shards          map[int]*shardState
	retired         []retiredShard // released shards whose series wait for a scrape
	meta            map[int]shardMeta
	knownAtStart    map[int]bool // shards listed when the member started
	readwriteShards int          // -1 until known
	lastShardList   time.Time
	groupTimeout    time.Duration
	groupReady      bool
	needGroup       bool
	groupTries      int // failed attempts to create the group again
	// resume holds the shards dropped when the group vanished: the
	// recreated group has no checkpoints, and they carry on from where
	// they were (neither cursor_start's gap nor a recount).
	resume          map[int]*shardState
	groupRetryAt    time.Time // when the next attempt is due
	stopping        bool
	stopDeadline    time.Time
	attempted       bool  // the first setup attempt finished, well or not
	setupErr        error // why the logstore cannot be consumed, while it cannot
	hbFailures      int
	lastHeartbeatOK time.Time
	lastCommit      time.Time
	lastLagProbe    time.Time
	lastCanary      time.Time
	probing         bool
	gone            bool // the logstore no longer exists: commit nothing
	pullsInFlight   int  // begun by a pull worker, not yet ended (they count into our series)
}

// retiredShard is a released shard whose series leave the page once the
// counts added at epoch have been scraped.
type retiredShard struct {
	id    int
	epoch uint64
	at    time.Time
	// forever: a readonly shard read to its end never comes back, so its
	// counts need not be kept.
	forever bool
}

func newMember(eng *Manager, cfg config.Target, settings Settings, fromBegin bool) *member {
	labels := collector.Target{Region: cfg.Region, Project: cfg.Project, Logstore: cfg.Logstore}
	m := &member{
		eng:             eng,
		cfg:             cfg,
		labels:          labels,
		settings:        settings,
		logger:          eng.logger.With("region", cfg.Region, "project", cfg.Project, "logstore", cfg.Logstore),
		fromBegin:       fromBegin,
		stopCh:          make(chan struct{}),
		kick:            make(chan struct{}, 1),
		hbSlot:          schedSlot{index: -1},
		hbDone:          make(chan struct{}),
		done:            make(chan struct{}),
		shards:          map[int]*shardState{},
		meta:            map[int]shardMeta{},
		readwriteShards: -1,
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.pullCtx, m.cancelPulls = context.WithCancel(m.ctx)
	transport := eng.transports.acquire(cfg, settings.RequestTimeout)
	httpClient := newSDKHTTPClient(transport, m.ctx)
	credentials := credentialsProvider(cfg)
	userAgent := "sls_keyword_exporter/" + settings.ConsumerGroup + "_" + settings.ConsumerName
	// Every field the SDK would fill lazily is set here: it writes them under
	// a read lock on first use, which races between concurrent callers.
	m.client = (&sls.Client{
		Endpoint:       cfg.Endpoint,
		UserAgent:      userAgent,
		RequestTimeOut: settings.RequestTimeout,
		RetryTimeOut:   sdkRetryWindow,
		HTTPClient:     httpClient,
	}).WithCredentialsProvider(credentials)
	m.sched, m.heartbeats = eng.sched, eng.heartbeats
	m.puller = newPuller(transport, credentials, cfg.Endpoint, cfg.Project, cfg.Logstore, cfg.Compression, userAgent, eng.budget)
	return m
}

// credentialsProvider gives the SDK and the raw pulls their credentials: an
// AccessKey as it is, temporary credentials from a provider shared by the
// region's logstores that refreshes them in the background before they
// expire (GetCredentials answers from its cache at once).
func credentialsProvider(cfg config.Target) sls.CredentialsProvider {
	return credentials.For(cfg.Credentials)
}

// useRules swaps the rules that apply to this logstore; the series of rules
// that no longer do go.
func (m *member) useRules(rules *compiledRules) {
	if old := m.rules.Swap(rules); old != nil && old != rules {
		m.eng.metrics.KeepRules(m.labels, rules.labels)
	}
}

// commitMargin is how long before a stop's deadline draining shards are
// released anyway: time for their last commit.
func commitMargin(budget time.Duration) time.Duration {
	return min(budget/5, time.Second)
}

// start runs the member until stop.
func (m *member) start() { go m.run() }

// stop asks the member to drain: stop pulling, wait until a scrape has
// acknowledged every counted batch (or the deadline), commit, release.
// It returns once the member is gone.
func (m *member) stop(deadline time.Time) {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		m.stopping = true
		m.stopDeadline = deadline.Add(-commitMargin(time.Until(deadline)))
		m.mu.Unlock()
		close(m.stopCh)
	})
	// At the deadline every call in flight is cut, whatever SLS answers.
	// Shards are released a little earlier, so that the commit of what was
	// acknowledged still has time to land.
	hard := time.AfterFunc(time.Until(deadline), m.cancel)
	defer hard.Stop()
	<-m.done
	m.waitPulls()
}

// waitPulls waits for pulls a worker began before the stop: they may still
// count into the member's series, which the caller may be about to delete.
// The member's context has ended, so they end within a request's answer.
func (m *member) waitPulls() {
	limit := time.Now().Add(m.settings.RequestTimeout + time.Second)
	for {
		m.mu.Lock()
		n := m.pullsInFlight
		m.mu.Unlock()
		if n == 0 || time.Now().After(limit) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (m *member) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *member) run() {
	defer close(m.done)
	defer m.eng.transports.release(m.cfg)
	defer m.cancel()

	for attempt := 1; ; attempt++ {
		err := m.setup()
		m.mu.Lock()
		m.attempted, m.setupErr = true, err
		m.mu.Unlock()
		if err == nil {
			break
		}
		wait := backoff(attempt, setupBaseBackoff)
		if attempt <= 3 || attempt%20 == 0 {
			m.logger.Error("Cannot consume logstore; retrying", "err", err, "retry_in", wait)
		}
		select {
		case <-m.stopCh:
			m.finish()
			return
		case <-time.After(wait):
		}
	}
	m.mu.Lock()
	groupTimeout := m.groupTimeout
	m.mu.Unlock()
	m.logger.Info("Consuming logstore", "consumer_group", m.settings.ConsumerGroup, "consumer", m.settings.ConsumerName, "group_timeout", groupTimeout)
	m.mu.Lock()
	m.hbStarted = true
	m.heartbeats.schedule(m, time.Now(), false)
	m.mu.Unlock()

	timer := time.NewTimer(0)
	defer timer.Stop()
	stopCh := m.stopCh
	for {
		now := time.Now()
		if m.step(now) {
			break
		}
		timer.Reset(m.nextStep(now))
		select {
		case <-timer.C:
		case <-m.kick:
		case <-stopCh:
			stopCh = nil
			m.beginDrainAll()
		}
	}
	m.stopHeartbeats()
	m.cancel()
	m.background.Wait()
	m.finish()
}

// finish drops what the member exported once it is gone.
func (m *member) finish() {
	m.mu.Lock()
	for _, sh := range m.shards {
		m.sched.unschedule(sh)
	}
	clear(m.shards)
	// Released shards whose series wait for a scrape: nobody here will
	// take them off the page later (a replacement member of a reload
	// starts with none), and a frozen last-pull time would page
	// SLSShardStalled. Counts not yet scraped are read again by whoever
	// holds the shard now: its checkpoint is not past them; the
	// replacement, taking the shard, continues from them.
	for _, r := range m.retired {
		if r.forever {
			m.eng.metrics.DeleteShard(m.labels, r.id)
		} else {
			m.eng.metrics.RetireShard(m.labels, r.id)
		}
	}
	m.retired = nil
	m.mu.Unlock()
}

// setup proves the logstore can be read (ListShards) and makes sure the
// consumer group exists.
func (m *member) setup() error {
	if err := m.listShards(); err != nil {
		return err
	}
	return m.ensureGroup()
}

// listShards refreshes which shards exist and which are readonly.
func (m *member) listShards() error {
	shards, err := m.client.ListShards(m.cfg.Project, m.cfg.Logstore)
	if err != nil {
		m.countError("ListShards", err)
		return err
	}
	meta := make(map[int]shardMeta, len(shards))
	readwrite := 0
	for _, s := range shards {
		meta[s.ShardID] = shardMeta{readonly: s.Status == "readonly", createdAt: int64(s.CreateTime),
			begin: strings.ToLower(s.InclusiveBeginKey), end: strings.ToLower(s.ExclusiveBeginKey)} // the SDK's name for exclusiveEndKey
		if s.Status != "readonly" {
			readwrite++
		}
	}
	if readwrite == 0 {
		m.eng.metrics.CountError(m.labels, "ListShards", "LogStoreWithoutShard")
		return errors.New("the logstore has no readwrite shard")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.meta = meta
	m.readwriteShards = readwrite
	m.lastShardList = time.Now()
	if m.knownAtStart == nil {
		m.knownAtStart = make(map[int]bool, len(meta))
		for id := range meta {
			m.knownAtStart[id] = true
		}
	}
	for id, sh := range m.shards {
		if info, ok := meta[id]; ok && info.readonly && !sh.readonly {
			sh.readonly = true
			m.logger.Info("Shard turned readonly (split or merged); reading it to its end", "shard", id)
		}
	}
	return nil
}

// ensureGroup creates the consumer group when missing. An existing group's
// timeout is kept unless consumer_timeout is set: SDK members heartbeat only
// every 20 s and a lower timeout would expire them.
func (m *member) ensureGroup() error {
	groups, err := m.client.ListConsumerGroup(m.cfg.Project, m.cfg.Logstore)
	if err != nil {
		m.countError("ListConsumerGroup", err)
		return err
	}
	want := m.settings.ConsumerTimeout
	for _, g := range groups {
		if g.ConsumerGroupName != m.settings.ConsumerGroup {
			continue
		}
		timeout := time.Duration(g.Timeout) * time.Second
		if want > 0 && timeout != want {
			update := sls.ConsumerGroup{ConsumerGroupName: g.ConsumerGroupName, Timeout: int(want / time.Second), InOrder: g.InOrder}
			if err := m.client.UpdateConsumerGroup(m.cfg.Project, m.cfg.Logstore, update); err != nil {
				m.countError("UpdateConsumerGroup", err)
				return err
			}
			timeout = want
		}
		m.setGroupTimeout(timeout)
		return nil
	}
	if want == 0 {
		want = config.DefaultConsumerTimeout
	}
	create := sls.ConsumerGroup{ConsumerGroupName: m.settings.ConsumerGroup, Timeout: int(want / time.Second)}
	if err := m.client.CreateConsumerGroup(m.cfg.Project, m.cfg.Logstore, create); err != nil {
		if errorCode(err) != codeGroupAlreadyExist {
			m.countError("CreateConsumerGroup", err)
			return err
		}
		// Another replica created it meanwhile: read its timeout.
		return m.ensureGroup()
	}
	m.logger.Info("Created consumer group", "consumer_group", m.settings.ConsumerGroup, "timeout", want)
	m.setGroupTimeout(want)
	return nil
}

func (m *member) setGroupTimeout(timeout time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.groupTimeout = timeout
	m.groupReady, m.needGroup = true, false
	if timeout < 2*m.settings.HeartbeatInterval {
		m.logger.Warn("The consumer group's timeout is shorter than two heartbeat intervals; shards may move between replicas spuriously",
			"group_timeout", timeout, "heartbeat_interval", m.settings.HeartbeatInterval)
	}
}

func (m *member) countError(operation string, err error) {
	if stopped(m.ctx, err) {
		return
	}
	m.eng.metrics.CountError(m.labels, operation, errorCode(err))
}

// dropAllLocked forgets every shard without committing: the server no longer
// counts us as their holder, so a commit could overwrite the new holder's.
func (m *member) dropAllLocked(why string) {
	if len(m.shards) == 0 {
		return
	}
	m.logger.Warn("Dropping every shard", "reason", why, "shards", len(m.shards))
	for id, sh := range m.shards {
		m.retireLocked(sh)
		delete(m.shards, id)
	}
}

// beginDrainAll drains every shard for a stop.
func (m *member) beginDrainAll() {
	m.cancelPulls()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sh := range m.shards {
		m.beginDrainLocked(sh, m.stopDeadline)
	}
}

// beginDrainLocked stops pulling a shard; the work loop releases it once
// its counts are scraped and committed.
func (m *member) beginDrainLocked(sh *shardState, deadline time.Time) {
	if sh.status == shardDraining {
		if deadline.Before(sh.drainDeadline) {
			sh.drainDeadline = deadline
		}
		return
	}
	if sh.status == shardActive {
		m.eng.activeShards.Add(-1)
	}
	sh.status = shardDraining
	sh.drainDeadline = deadline
	m.sched.unschedule(sh)
}

// retireLocked counts a shard as released: its series go once scraped.
func (m *member) retireLocked(sh *shardState) {
	if sh.status == shardActive {
		m.eng.activeShards.Add(-1)
	}
	m.sched.unschedule(sh)
	if sh.work != nil || len(sh.pending) > 0 {
		m.wake() // its series leave the page after the next scrape: the work loop sees to it
		m.retired = append(m.retired, retiredShard{id: sh.id, epoch: sh.newestEpoch(), at: time.Now(), forever: sh.readonly && sh.finished})
	}
}

func (m *member) unretireLocked(id int) {
	kept := m.retired[:0]
	for _, r := range m.retired {
		if r.id != id {
			kept = append(kept, r)
		}
	}
	m.retired = kept
}

// step does whatever is due and reports whether the member is finished
// (stopping, with every shard released).
func (m *member) step(now time.Time) bool {
	m.mu.Lock()
	needGroup := m.needGroup && !now.Before(m.groupRetryAt)
	stopping := m.stopping
	m.mu.Unlock()
	if needGroup && !stopping {
		err := m.ensureGroup()
		m.mu.Lock()
		if err != nil {
			// Try again soon (nextStep wakes for it), not at the next listing.
			m.groupTries++
			m.groupRetryAt = time.Now().Add(backoff(m.groupTries, setupBaseBackoff))
		} else {
			m.groupTries = 0
		}
		m.mu.Unlock()
		if err != nil && !stopped(m.ctx, err) {
			m.logger.Warn("Recreating the consumer group failed", "err", err)
		}
	}
	if !stopping {
		m.acquire(now)
	}
	m.releaseDrained(now)
	m.commit(now, false)
	m.deleteRetiredSeries(now)
	m.mu.Lock()
	stopping = m.stopping // a stop may have begun during the calls above
	m.mu.Unlock()
	if !stopping && m.ctx.Err() == nil {
		m.maybeRefreshShards(now)
		m.maybeProbeLag(now)
		m.maybeWriteCanary(now)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping && (len(m.shards) == 0 || now.After(m.stopDeadline)) {
		if len(m.shards) > 0 {
			m.logger.Warn("Stop deadline passed before every shard's counts were scraped; releasing anyway", "shards", len(m.shards))
			for id, sh := range m.shards {
				m.retireLocked(sh)
				delete(m.shards, id)
			}
		}
		return true
	}
	return false
}

// nextStep is how long the work loop may sleep.
func (m *member) nextStep(now time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A member whose shards are all quiet has nothing to commit or probe:
	// it sleeps until the next shard listing, and a pull that brings data
	// wakes it. A thousand quiet logstores then wake rarely.
	wait := max(shardRefreshInterval-now.Sub(m.lastShardList), 0)
	if m.settings.Canary.Enabled {
		wait = min(wait, m.settings.Canary.Interval)
	}
	for _, sh := range m.shards {
		if len(sh.pending) > 0 || !sh.caughtUp {
			wait = min(wait, m.settings.CommitInterval, m.settings.LagInterval)
		}
		switch sh.status {
		case shardDraining:
			wait = min(wait, drainPoll)
		case shardAcquiring:
			wait = min(wait, max(time.Until(sh.retryAt), 0))
		}
	}
	if len(m.retired) > 0 {
		wait = min(wait, 250*time.Millisecond)
	}
	if m.needGroup {
		wait = min(wait, max(time.Until(m.groupRetryAt), 0))
	}
	if m.stopping {
		wait = min(wait, max(time.Until(m.stopDeadline), 0))
	}
	return wait
}

// maybeRefreshShards lists shards every shardRefreshInterval.
func (m *member) maybeRefreshShards(now time.Time) {
	m.mu.Lock()
	due := now.Sub(m.lastShardList) >= shardRefreshInterval
	m.mu.Unlock()
	if due {
		if err := m.listShards(); err != nil && !stopped(m.ctx, err) {
			m.logger.Warn("Listing shards failed", "err", err)
		}
	}
}

// state reports the member for the collector.
func (m *member) state() collector.LogstoreState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := collector.LogstoreState{Target: m.labels, ReadwriteShards: m.readwriteShards, GroupTimeout: m.groupTimeout}
	st.Up = m.attempted && m.setupErr == nil && m.groupReady && m.hbFailures < upFailureThreshold
	for id, sh := range m.shards {
		// A shard whose pulls, or whose start cursor, keep failing is
		// granted but not consumed.
		if sh.pullFailures >= upFailureThreshold || sh.acquireTries >= upFailureThreshold {
			st.Up = false
		}
		if sh.status == shardDraining {
			continue
		}
		lastPull := sh.lastPull
		if sh.finished {
			lastPull = time.Time{} // nothing left to pull: no series, so SLSShardStalled cannot fire for it
		}
		st.Held = append(st.Held, collector.ShardState{ID: id, Readonly: sh.readonly, LagSeconds: sh.lagSeconds, LastPull: lastPull})
	}
	sort.Slice(st.Held, func(i, j int) bool { return st.Held[i].ID < st.Held[j].ID })
	return st
}

// ready reports whether the first setup attempt finished.
func (m *member) ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempted
}
