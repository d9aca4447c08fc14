// One logstore's consumer: check it can be reached, run the SDK's consumer library on it, track held shards and lag.
package consumer

import (
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	consumerLibrary "github.com/aliyun/aliyun-log-go-sdk/consumer"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/sdkpatch"
)

// Settings are the consumer knobs shared by every target.
type Settings struct {
	ConsumerGroup     string
	ConsumerName      string
	CursorStart       string // begin | end | time
	CursorStartTime   time.Time
	HeartbeatInterval time.Duration
	ConsumerTimeout   time.Duration
	FetchInterval     time.Duration
	CommitInterval    time.Duration
	MaxFetchGroups    int
	LagInterval       time.Duration
	RequestTimeout    time.Duration
	RetryTimeout      time.Duration
	SampleMaxLength   int
	Canary            config.Canary
}

const (
	maxRetryBackoff      = time.Minute
	shardRefreshInterval = 30 * time.Second
)

// target consumes one (region, project, logstore).
type target struct {
	cfg      config.Target
	labels   collector.Target
	settings Settings
	rules    *atomic.Pointer[compiledRules]
	metrics  *collector.Metrics
	logger   *slog.Logger

	httpClient *http.Client
	client     *sls.Client // the exporter's own calls: checks, lag probes, canaries

	mu              sync.Mutex
	up              bool
	attempted       bool // the first start attempt finished, well or not
	readwriteShards int  // -1 until known
	held            map[int]*heldShard

	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
}

// heldShard is what the exporter knows of a shard it consumes.
type heldShard struct {
	currentCursor string // cursor of the last batch pulled
	nextCursor    string // cursor after it: the first group not yet consumed
	lagSeconds    float64
}

func newTarget(cfg config.Target, settings Settings, rules *atomic.Pointer[compiledRules], metrics *collector.Metrics, logger *slog.Logger) *target {
	httpClient := newHTTPClient(cfg, settings.RequestTimeout)
	return &target{
		cfg:             cfg,
		labels:          collector.Target{Region: cfg.Region, Project: cfg.Project, Logstore: cfg.Logstore},
		settings:        settings,
		rules:           rules,
		metrics:         metrics,
		logger:          logger.With("region", cfg.Region, "project", cfg.Project, "logstore", cfg.Logstore),
		httpClient:      httpClient,
		client:          newSLSClient(cfg, httpClient, settings.RequestTimeout, settings.RetryTimeout),
		readwriteShards: -1,
		held:            map[int]*heldShard{},
		stopCh:          make(chan struct{}),
		done:            make(chan struct{}),
	}
}

// run checks the logstore, retrying with backoff, then consumes it until stop.
func (t *target) run() {
	defer close(t.done)
	backoff := time.Second
	for {
		err := t.refreshShards()
		t.mu.Lock()
		t.attempted, t.up = true, err == nil
		t.mu.Unlock()
		if err == nil {
			break
		}
		t.logger.Error("Cannot consume logstore; retrying", "err", err, "retry_in", backoff)
		select {
		case <-t.stopCh:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}

	worker := t.startWorker()
	t.logger.Info("Consuming logstore", "consumer_group", t.settings.ConsumerGroup, "consumer", t.settings.ConsumerName)
	lagTicker := time.NewTicker(t.settings.LagInterval)
	defer lagTicker.Stop()
	var canaryTick <-chan time.Time
	if t.settings.Canary.Enabled {
		canaryTicker := time.NewTicker(t.settings.Canary.Interval)
		defer canaryTicker.Stop()
		canaryTick = canaryTicker.C
	}
	lastShardRefresh := time.Now()
	for {
		select {
		case <-t.stopCh:
			worker.StopAndWait() // flushes every held shard's checkpoint
			t.mu.Lock()
			clear(t.held)
			t.mu.Unlock()
			return
		case <-lagTicker.C:
			t.probeLag()
			if time.Since(lastShardRefresh) >= shardRefreshInterval {
				lastShardRefresh = time.Now()
				if err := t.refreshShards(); err != nil {
					t.logger.Warn("Listing shards failed", "err", err)
				}
			}
		case <-canaryTick:
			t.writeCanary()
		}
	}
}

// stop asks the target to stop and waits until it has, or until timeout.
func (t *target) stop(timeout time.Duration) bool {
	t.stopOnce.Do(func() { close(t.stopCh) })
	select {
	case <-t.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (t *target) startWorker() *consumerLibrary.ConsumerWorker {
	s := t.settings
	cfg := consumerLibrary.LogHubConfig{
		Endpoint:                  t.cfg.Endpoint,
		AccessKeyID:               t.cfg.Credentials.AccessKeyID,
		AccessKeySecret:           t.cfg.Credentials.AccessKeySecret.Reveal(),
		SecurityToken:             t.cfg.Credentials.SecurityToken.Reveal(),
		Project:                   t.cfg.Project,
		Logstore:                  t.cfg.Logstore,
		ConsumerGroupName:         s.ConsumerGroup,
		ConsumerName:              s.ConsumerName,
		HeartbeatIntervalInSecond: int(s.HeartbeatInterval / time.Second),
		HeartbeatTimeoutInSecond:  int(s.ConsumerTimeout / time.Second),
		DataFetchIntervalInMs:     s.FetchInterval.Milliseconds(),
		MaxFetchLogGroupCount:     s.MaxFetchGroups,
		AutoCommitIntervalInMS:    s.CommitInterval.Milliseconds(),
		HTTPClient:                t.httpClient,
		Logger:                    NewKitLogger(t.logger, t.onSDKEvent),
		DisableRuntimeMetrics:     true,
	}
	switch s.CursorStart {
	case "begin":
		cfg.CursorPosition = consumerLibrary.BEGIN_CURSOR
	case "end":
		cfg.CursorPosition = consumerLibrary.END_CURSOR
	default:
		cfg.CursorPosition = consumerLibrary.SPECIAL_TIMER_CURSOR
		cfg.CursorStartTime = s.CursorStartTime.Unix()
	}
	worker := consumerLibrary.InitConsumerWorkerWithProcessor(cfg, newProcessor(t))
	if err := sdkpatch.SetClientTimeouts(worker, s.RequestTimeout, s.RetryTimeout); err != nil {
		t.logger.Warn("Could not set the consumer library's timeouts", "err", err)
	}
	worker.Start()
	return worker
}

// onSDKEvent turns what the consumer library logs into error counts and health.
func (t *target) onSDKEvent(ev sdkEvent) {
	if ev.heartbeat {
		t.setUp(true)
		return
	}
	t.metrics.CountError(t.labels, ev.operation, ev.code)
	if ev.operation == "HeartBeat" {
		t.setUp(false)
	}
}

func (t *target) setUp(up bool) {
	t.mu.Lock()
	t.up = up
	t.mu.Unlock()
}

// refreshShards lists the logstore's shards: it proves the project and
// logstore exist and the AccessKey is accepted.
func (t *target) refreshShards() error {
	shards, err := t.client.ListShards(t.cfg.Project, t.cfg.Logstore)
	if err != nil {
		t.metrics.CountError(t.labels, "ListShards", errorCode(err))
		return err
	}
	readwrite := 0
	for _, s := range shards {
		if s.Status == "readwrite" {
			readwrite++
		}
	}
	if readwrite == 0 {
		t.metrics.CountError(t.labels, "ListShards", "LogStoreWithoutShard")
		return errors.New("the logstore has no readwrite shard")
	}
	t.mu.Lock()
	t.readwriteShards = readwrite
	t.mu.Unlock()
	return nil
}

func (t *target) holdShard(id int) {
	t.mu.Lock()
	if _, ok := t.held[id]; !ok {
		t.held[id] = &heldShard{}
		t.logger.Debug("Shard acquired", "shard", id)
	}
	t.mu.Unlock()
}

func (t *target) releaseShard(id int) {
	t.mu.Lock()
	delete(t.held, id)
	t.mu.Unlock()
	t.logger.Debug("Shard released", "shard", id)
}

// recordPosition notes the cursors around the batch just processed. An
// empty pull (current == next) means the shard is caught up.
func (t *target) recordPosition(id int, current, next string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.held[id]
	if !ok {
		return
	}
	h.currentCursor, h.nextCursor = current, next
	if current == next {
		h.lagSeconds = 0
	}
}

// state reports the target for the collector.
func (t *target) state() collector.LogstoreState {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := collector.LogstoreState{Target: t.labels, Up: t.up, ReadwriteShards: t.readwriteShards}
	for id, h := range t.held {
		st.Held = append(st.Held, collector.ShardState{ID: id, LagSeconds: h.lagSeconds})
	}
	sort.Slice(st.Held, func(i, j int) bool { return st.Held[i].ID < st.Held[j].ID })
	return st
}

// ready reports whether the first start attempt finished.
func (t *target) ready() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attempted
}
