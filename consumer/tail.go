// Tail, for the rules tools: follow logstores read-only (ListShards, GetCursor, rate-limited PullLogs: no consumer group, no checkpoint) and report what the rules match.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
)

// TailOptions configures Tail.
type TailOptions struct {
	// Config gives the logstores (by name, and by pattern: each such project
	// is listed once), their endpoints and credentials, request_timeout,
	// max_fetch_log_groups, pull_buffer_bytes and the rules: each logstore
	// gets the rules whose logstores: globs match it. It must be validated.
	Config *config.Config
	// Include narrows the logstores by key (region/project/logstore); nil
	// takes every one.
	Include func(key string) bool
	// Since reads from this time on (GetCursor from=<unix seconds>); zero
	// reads only what arrives after Tail started (from=end).
	Since time.Time
	// Rate is the most pulls per second of one shard (default 2). A shard
	// never has more than one pull in flight.
	Rate float64
	// ShardListInterval is how often each logstore's shards are listed
	// again, to pick up new ones (default 30s).
	ShardListInterval time.Duration
	// Logger receives errors and progress; nil discards them.
	Logger *slog.Logger
	// Started, when set, is called once every logstore has been listed and
	// each of its shards positioned (or the first attempt failed).
	Started func(TailStart)
}

// TailStart says what Tail follows once it has started.
type TailStart struct {
	Logstores int // logstores followed
	Shards    int // shards positioned
	Failed    int // logstores or shards whose first attempt failed (retried)
}

// TailMatch is one match of a followed logstore.
type TailMatch struct {
	Region, Project, Logstore string
	Shard                     int
	Match
}

// TailStats sums up a Tail run.
type TailStats struct {
	Logstores int
	Shards    int
	Pulls     uint64
	Logs      uint64
	Errors    uint64 // failed calls to SLS
	// Matches counts per logstore and rule, sorted by logstore, then rule.
	Matches []TailCount
}

// TailCount is how often a rule matched in a logstore.
type TailCount struct {
	Key   string // region/project/logstore
	Rule  string
	Count uint64
}

// Defaults of TailOptions.
const (
	DefaultTailRate              = 2.0
	DefaultTailShardListInterval = 30 * time.Second
)

// tailUserAgent identifies the tool's requests in SLS's access logs.
const tailUserAgent = "sls_keyword_exporter/rules-tail"

// tailer is one Tail run.
type tailer struct {
	opts       TailOptions
	logger     *slog.Logger
	transports *transports
	budget     *byteBudget
	interval   time.Duration // between pulls of one shard
	started    time.Time
	emit       func(TailMatch)

	pulls, logs, errs atomic.Uint64
	shards            atomic.Int64
	mu                sync.Mutex // serialises emit and guards counts
	counts            map[[2]string]uint64
}

// Tail follows every logstore of opts.Config (narrowed by opts.Include)
// until ctx ends, and calls emit for every match, one call at a time. It
// never joins a consumer group and never reads or writes a checkpoint: its
// only calls are ListLogStores (once per project with patterns),
// ListShards, GetCursor and PullLogs. A logstore that cannot be read is
// logged and retried; Tail returns an error only when there is nothing to
// follow.
func Tail(ctx context.Context, opts TailOptions, emit func(TailMatch)) (TailStats, error) {
	if opts.Config == nil {
		return TailStats{}, errors.New("tail: no configuration")
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultTailRate
	}
	if opts.ShardListInterval <= 0 {
		opts.ShardListInterval = DefaultTailShardListInterval
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := opts.Config
	t := &tailer{
		opts:       opts,
		logger:     logger,
		transports: newTransports(),
		budget:     newByteBudget(int64(cfg.PullBufferBytes)),
		interval:   time.Duration(float64(time.Second) / opts.Rate),
		started:    time.Now(),
		emit:       emit,
		counts:     map[[2]string]uint64{},
	}

	targets := t.targets(ctx)
	if ctx.Err() != nil {
		return t.stats(0), nil
	}
	scoped := &scopedRules{rules: cfg.Rules, sets: map[string]*compiledRules{}}
	type followed struct {
		target config.Target
		rules  *compiledRules
	}
	var follow []followed
	for _, target := range targets {
		compiled, err := scoped.forTarget(target.Key())
		if err != nil {
			return TailStats{}, err
		}
		if len(compiled.labels) == 0 {
			logger.Info("No rule applies to the logstore; not following it", "logstore", target.Key())
			continue
		}
		follow = append(follow, followed{target, compiled})
	}
	if len(follow) == 0 {
		return TailStats{}, errors.New("no logstore to follow: none is configured, found or left by --logstore, or no rule applies to any")
	}

	var wg, ready sync.WaitGroup
	var failed atomic.Int64
	for _, f := range follow {
		ready.Add(1)
		wg.Go(func() { t.runLogstore(ctx, f.target, f.rules, &ready, &failed) })
	}
	// Every logstore is done with ready by the time its reader returns, so
	// Started has been called, or skipped, before Tail returns.
	startedDone := make(chan struct{})
	go func() {
		defer close(startedDone)
		ready.Wait()
		if opts.Started != nil && ctx.Err() == nil {
			opts.Started(TailStart{Logstores: len(follow), Shards: int(t.shards.Load()), Failed: int(failed.Load())})
		}
	}()
	wg.Wait()
	<-startedDone
	return t.stats(len(follow)), nil
}

// targets lists the configured logstores and, once, those of projects with
// patterns, narrowed by Include and sorted by key.
func (t *tailer) targets(ctx context.Context) []config.Target {
	cfg := t.opts.Config
	seen := map[string]bool{}
	var out []config.Target
	add := func(target config.Target) {
		key := target.Key()
		if seen[key] || (t.opts.Include != nil && !t.opts.Include(key)) {
			return
		}
		seen[key] = true
		out = append(out, target)
	}
	for _, target := range cfg.Targets() {
		add(target)
	}
	for _, d := range cfg.Discoveries() {
		names, err := t.listLogstores(ctx, d)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			t.errs.Add(1)
			t.logger.Error("Listing the project's logstores failed; its patterns match nothing this run", "region", d.Target.Region, "project", d.Target.Project, "err", err)
			continue
		}
		for _, name := range names {
			if d.Matches(name) {
				target := d.Target
				target.Logstore = name
				add(target)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// listLogstores pages through a project's logstores.
func (t *tailer) listLogstores(ctx context.Context, d config.Discovery) ([]string, error) {
	transport := t.transports.acquire(d.Target, t.opts.Config.RequestTimeout)
	defer t.transports.release(d.Target)
	client := t.client(ctx, d.Target, transport)
	var names []string
	for offset := 0; ; {
		page, err := client.ListLogStoreV2(d.Target.Project, offset, listPageSize, "None")
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

// client is an SDK client for the control calls (ListLogStores,
// ListShards, GetCursor), cut when ctx ends.
func (t *tailer) client(ctx context.Context, target config.Target, transport *leanTransport) *sls.Client {
	// Every field the SDK would fill lazily is set: see newMember.
	return (&sls.Client{
		Endpoint:       target.Endpoint,
		UserAgent:      tailUserAgent,
		RequestTimeOut: t.opts.Config.RequestTimeout,
		RetryTimeOut:   sdkRetryWindow,
		HTTPClient:     newSDKHTTPClient(transport, ctx),
	}).WithCredentialsProvider(credentialsProvider(target))
}

// tailLogstore is one followed logstore.
type tailLogstore struct {
	target config.Target
	key    string
	rules  *compiledRules
	client *sls.Client
	puller *puller
	logger *slog.Logger
}

// tailShard is one shard of a followed logstore.
type tailShard struct {
	id       int
	readonly atomic.Bool // set by the logstore's listings
}

// runLogstore lists the logstore's shards, starts a reader per shard, and
// lists again every ShardListInterval for new shards, until ctx ends.
// ready is done once the first listing and the first positioning of each
// shard it found are over.
func (t *tailer) runLogstore(ctx context.Context, target config.Target, rules *compiledRules, ready *sync.WaitGroup, failed *atomic.Int64) {
	transport := t.transports.acquire(target, t.opts.Config.RequestTimeout)
	defer t.transports.release(target)
	creds := credentialsProvider(target)
	ls := &tailLogstore{
		target: target,
		key:    target.Key(),
		rules:  rules,
		client: t.client(ctx, target, transport),
		puller: newPuller(transport, creds, target.Endpoint, target.Project, target.Logstore, target.Compression, tailUserAgent, t.budget),
		logger: t.logger.With("region", target.Region, "project", target.Project, "logstore", target.Logstore),
	}
	// The first listing's shards start at Since (or the end); shards that
	// appear later (splits, merges) hold only what was written after the
	// tail started, and start at Since or at the tail's start.
	initialFrom, laterFrom := "end", strconv.FormatInt(t.started.Unix(), 10)
	if !t.opts.Since.IsZero() {
		initialFrom = strconv.FormatInt(t.opts.Since.Unix(), 10)
		laterFrom = initialFrom
	}
	var readers sync.WaitGroup
	defer readers.Wait()
	shards := map[int]*tailShard{}
	first, failures := true, 0
	for {
		list, err := ls.client.ListShards(target.Project, target.Logstore)
		wait := t.opts.ShardListInterval
		switch {
		case err != nil && ctx.Err() != nil:
			if first {
				ready.Done()
			}
			return
		case err != nil:
			t.errs.Add(1)
			failures++
			if failures <= 3 || failures%20 == 0 {
				ls.logger.Error("Listing shards failed; retrying", "err", err)
			}
			if first {
				failed.Add(1)
				ready.Done()
				first = false
			}
			wait = min(wait, backoff(failures, time.Second))
		default:
			failures = 0
			var positioned sync.WaitGroup
			for _, s := range list {
				sh := shards[s.ShardID]
				if sh == nil {
					sh = &tailShard{id: s.ShardID}
					shards[s.ShardID] = sh
					sh.readonly.Store(s.Status == "readonly")
					from := laterFrom
					var done func(ok bool)
					if first {
						from = initialFrom
						positioned.Add(1)
						done = func(ok bool) {
							if !ok {
								failed.Add(1)
							}
							positioned.Done()
						}
					} else {
						ls.logger.Info("New shard; following it", "shard", s.ShardID)
					}
					t.shards.Add(1)
					readers.Go(func() { t.runShard(ctx, ls, sh, from, done) })
					continue
				}
				if s.Status == "readonly" && !sh.readonly.Load() {
					sh.readonly.Store(true)
					ls.logger.Debug("Shard turned readonly; reading it to its end", "shard", s.ShardID)
				}
			}
			if first {
				go func() { positioned.Wait(); ready.Done() }()
				first = false
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// runShard positions a shard's cursor and pulls it at most Rate times a
// second, one pull at a time, until ctx ends, or until a readonly shard is
// read to its end. positioned, when set, learns the first GetCursor's
// outcome.
func (t *tailer) runShard(ctx context.Context, ls *tailLogstore, sh *tailShard, from string, positioned func(ok bool)) {
	eval := newRuleEvaluator(ls.rules)
	header := make(map[string]string, 8)
	var signed signedPull
	cursor := ""
	failures := 0
	next := time.Now()
	defer func() {
		if positioned != nil { // stopped before the first GetCursor
			positioned(false)
		}
	}()
	fail := func(operation string, err error, started time.Time) {
		t.errs.Add(1)
		failures++
		if failures <= 3 || failures%20 == 0 {
			ls.logger.Warn(operation+" failed; retrying", "shard", sh.id, "err", err)
		}
		base := 100 * time.Millisecond
		if httpStatus(err) == 403 { // read quota: let it refill
			base = 500 * time.Millisecond
		}
		next = started.Add(max(t.interval, backoff(failures, base)))
	}
	for {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		} else if ctx.Err() != nil {
			return
		}
		started := time.Now()
		next = started.Add(t.interval)
		if cursor == "" {
			c, err := ls.client.GetCursor(ls.target.Project, ls.target.Logstore, sh.id, from)
			if positioned != nil {
				positioned(err == nil)
				positioned = nil
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errorCode(err) == codeLogStoreNotExist {
					ls.logger.Error("The logstore no longer exists; stopped following it", "shard", sh.id)
					return
				}
				fail("GetCursor", err, started)
				continue
			}
			cursor, failures, next = c, 0, started // not a pull: the first pull follows at once
			continue
		}
		res, err := ls.puller.pull(ctx, sh.id, cursor, t.opts.Config.MaxFetchGroups, &signed, header)
		t.pulls.Add(1)
		if err != nil {
			if stopped(ctx, err) {
				return
			}
			switch {
			case errorCode(err) == codeLogStoreNotExist:
				ls.logger.Error("The logstore no longer exists; stopped following it", "shard", sh.id)
				return
			case isInvalidCursor(err):
				ls.logger.Warn("Cursor expired (SLS retention); going on from the oldest retained data", "shard", sh.id)
				cursor, from = "", "begin"
			}
			fail("PullLogs", err, started)
			continue
		}
		failures = 0
		if res.raw != nil {
			n, err := eval.Eval(res.raw, func(m Match) {
				t.record(TailMatch{Region: ls.target.Region, Project: ls.target.Project, Logstore: ls.target.Logstore, Shard: sh.id, Match: m}, ls.key)
			})
			t.logs.Add(uint64(n))
			if err != nil {
				t.errs.Add(1)
				ls.logger.Error("Skipping a malformed batch", "shard", sh.id, "err", err)
			}
		}
		cursor = res.nextCursor
		empty := res.groups == 0
		res.release()
		if empty && sh.readonly.Load() {
			ls.logger.Debug("Readonly shard read to its end", "shard", sh.id)
			return
		}
	}
}

// record counts a match and emits it.
func (t *tailer) record(m TailMatch, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[[2]string{key, m.Rule}]++
	if t.emit != nil {
		t.emit(m)
	}
}

func (t *tailer) stats(logstores int) TailStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := TailStats{Logstores: logstores, Shards: int(t.shards.Load()), Pulls: t.pulls.Load(), Logs: t.logs.Load(), Errors: t.errs.Load()}
	for k, n := range t.counts {
		s.Matches = append(s.Matches, TailCount{Key: k[0], Rule: k[1], Count: n})
	}
	sort.Slice(s.Matches, func(i, j int) bool {
		if s.Matches[i].Key != s.Matches[j].Key {
			return s.Matches[i].Key < s.Matches[j].Key
		}
		return s.Matches[i].Rule < s.Matches[j].Rule
	})
	return s
}

// String is the summary line of a run.
func (s TailStats) String() string {
	var total uint64
	for _, c := range s.Matches {
		total += c.Count
	}
	return fmt.Sprintf("%d matches; %d logstores, %d shards, %d pulls, %d logs read, %d errors", total, s.Logstores, s.Shards, s.Pulls, s.Logs, s.Errors)
}
