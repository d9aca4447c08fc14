// Fault injection against the engine: 5xx bursts, throttling, resets, latency, failed setup, cursors and commits lose nothing, count real codes and recover.
package consumer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// recoveryBound is the promise: once a fault shorter than 30 s ends, work
// resumes within 5 s (the retry backoff is capped at 3 s).
const recoveryBound = 5 * time.Second

// faultCase is a fault on logstore1 while the exporter runs.
type faultCase struct {
	name     string
	fault    slsemu.Fault
	routes   []string // routes the fault is injected on; nil: fault.Route
	replace  []string // config replacements
	duration time.Duration
	// required error series (operation/code) on logstore1, and others allowed.
	required, allowed []string
	// upDown: sls_up must go to 0 during the fault; otherwise it must stay 1.
	upDown bool
	// pullsFail: pulls fail, so nothing written during the fault is counted
	// before it ends and last_pull stops advancing. Otherwise what is written
	// during the fault is counted during it.
	pullsFail bool
}

// runFaultCase writes and counts exactly, injects the fault, writes during
// it, checks the fault's symptoms, ends it and measures recovery, then
// checks later writes arrive exactly and only the expected codes were counted.
func runFaultCase(t *testing.T, c faultCase) {
	srv := startRigEmulator(t, seedWorld())
	tg, other := seedTarget("logstore1"), seedTarget("logstore2")
	w, w2 := newRigWriter(t, srv, tg), newRigWriter(t, srv, other)
	e := startRigExporter(t, mustParse(t, rigConfigYAML(t, srv.URL, c.replace...)), 10*time.Second)
	l, l2 := newLedger(t, e.exporter, w, tg), newLedger(t, e.exporter, w2, other)
	l.write(3)
	l2.write(3)
	l.waitExact(20*time.Second, "logs written before the fault")
	l2.waitExact(10*time.Second, "logstore2's logs written before the fault")
	waitFor(t, 5*time.Second, "sls_up 1 before the fault", func() bool { return e.up(t, tg) == 1 })

	routes := c.routes
	if routes == nil {
		routes = []string{c.fault.Route}
	}
	f := c.fault
	f.Logstore = tg.logstore
	remove := injectFaults(t, srv, f, routes...)
	faultStart := time.Now()
	beforeFault := l.want
	l.write(2)
	l2.write(2)

	// Another logstore is untouched by the fault.
	l2.waitExact(5*time.Second, "logstore2's logs written during logstore1's fault")

	if !c.pullsFail {
		d := l.waitExact(c.duration-time.Since(faultStart), "logs written during the fault, counted while it lasts")
		t.Logf("%s: logs written during the fault counted after %v", c.name, d.Round(time.Millisecond))
	}
	var downAfter time.Duration
	var lastPull [2]float64
	if c.upDown {
		waitFor(t, c.duration-time.Since(faultStart), "sls_up 0 during the fault", func() bool { return e.up(t, tg) == 0 })
		downAfter = time.Since(faultStart)
	}
	if c.pullsFail {
		// At least three pulls of a shard failed (sls_up 0): from now on
		// its last pull timestamp must stand still.
		for shard := range 2 {
			lastPull[shard] = e.lastPull(t, tg, shard)
			if lastPull[shard] == 0 {
				t.Fatalf("shard %d has no last pull timestamp", shard)
			}
		}
	}
	upSeen1 := false
	for time.Since(faultStart) < c.duration { // the fault's length is the point
		up := e.up(t, tg)
		if !c.upDown && up != 1 {
			t.Errorf("sls_up %v during a fault that fails no heartbeat or pull", up)
		}
		if c.upDown && up == 1 {
			upSeen1 = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	if upSeen1 && c.pullsFail {
		t.Errorf("sls_up went back to 1 while every pull still failed")
	}
	if c.pullsFail {
		for shard := range 2 {
			if now := e.lastPull(t, tg, shard); now != lastPull[shard] {
				t.Errorf("shard %d last pull moved from %.3f to %.3f while pulls failed", shard, lastPull[shard], now)
			}
			if m, _ := l.counted(shard); m != float64(beforeFault[shard]) {
				t.Errorf("shard %d counted %v matches during a pull fault, want the %d from before it", shard, m, beforeFault[shard])
			}
		}
	}
	hits := map[string]int{}
	for _, r := range routes {
		if n := faultHits(srv, r); n > 0 {
			hits[r] = n
		}
	}
	remove()
	ended := time.Now()

	recovered := l.waitExact(recoveryBound, "logs written during the fault, within 5 s after it ended")
	var upAgain time.Duration
	if c.upDown {
		waitFor(t, recoveryBound, "sls_up back to 1 within 5 s", func() bool { return e.up(t, tg) == 1 })
		upAgain = time.Since(ended)
	}
	if c.pullsFail {
		waitFor(t, recoveryBound, "last pull advancing again", func() bool {
			return e.lastPull(t, tg, 0) > float64(ended.UnixMilli())/1e3 && e.lastPull(t, tg, 1) > float64(ended.UnixMilli())/1e3
		})
	}
	if c.upDown {
		t.Logf("%s: faulted calls in %v: %v; sls_up 0 after %v; recovered (all logs counted) %v after the fault ended, sls_up 1 after %v",
			c.name, c.duration, hits, downAfter.Round(time.Millisecond), recovered.Round(time.Millisecond), upAgain.Round(time.Millisecond))
	} else {
		t.Logf("%s: faulted calls in %v: %v; sls_up stayed 1; everything counted %v after the fault ended",
			c.name, c.duration, hits, recovered.Round(time.Millisecond))
	}

	// No shard is stuck: both are held and new logs on each arrive exactly.
	l.write(4)
	l.waitExact(recoveryBound, "logs written after recovery")
	held := e.series(t, "sls_consumer_shards_held")[tg.key()]
	if held != 2 {
		t.Errorf("sls_consumer_shards_held %v after recovery, want 2", held)
	}
	st, err := srv.ConsumerGroupState(tg.project, tg.logstore, "test-group")
	if err != nil || fmt.Sprint(st.HeldShards()) != "map[test-consumer:[0 1]]" {
		t.Errorf("server-side assignment after recovery: %v %v", st.HeldShards(), err)
	}
	time.Sleep(600 * time.Millisecond) // later pulls would expose a recount
	if !l.exact() || !l2.exact() {
		t.Errorf("counts changed after settling")
	}
	checkErrorCodes(t, e.errorCodes(t, tg), c.required, c.allowed...)
	checkErrorCodes(t, e.errorCodes(t, other), nil)
}

func TestPullFaultsLoseNothingAndRecover(t *testing.T) {
	for _, c := range []faultCase{
		{
			name: "500 InternalServerError burst", fault: slsemu.Fault{Route: "PullLogs", Status: 500, Code: "InternalServerError"},
			duration: 4 * time.Second, required: []string{"PullLogs/InternalServerError"}, upDown: true, pullsFail: true,
		},
		{
			name: "503 ServerBusy burst", fault: slsemu.Fault{Route: "PullLogs", Status: 503, Code: "ServerBusy"},
			duration: 4 * time.Second, required: []string{"PullLogs/ServerBusy"}, upDown: true, pullsFail: true,
		},
		{
			name: "403 ReadQuotaExceed", fault: slsemu.Fault{Route: "PullLogs", Status: 403, Code: "ReadQuotaExceed"},
			duration: 6 * time.Second, required: []string{"PullLogs/ReadQuotaExceed"}, upDown: true, pullsFail: true,
		},
		{
			name: "connection resets", fault: slsemu.Fault{Route: "PullLogs", Reset: true},
			duration: 4 * time.Second, required: []string{"PullLogs/ClientError"}, upDown: true, pullsFail: true,
		},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) { runFaultCase(t, c) })
	}
}

func TestEveryCallFailingLosesNothingAndRecovers(t *testing.T) {
	// The group's timeout (10 s) outlasts the fault: the server keeps us
	// as the shards' holder, so nothing may be counted twice.
	longTimeout := []string{"consumer_timeout: 3s", "consumer_timeout: 10s"}
	var allowedWith = func(code string) []string {
		var out []string
		for _, r := range consumerRoutes {
			out = append(out, r+"/"+code)
		}
		return out
	}
	for _, c := range []faultCase{
		{
			name: "500 InternalServerError", fault: slsemu.Fault{Status: 500, Code: "InternalServerError"}, routes: consumerRoutes,
			replace: longTimeout, duration: 4 * time.Second, upDown: true, pullsFail: true,
			required: []string{"PullLogs/InternalServerError", "HeartBeat/InternalServerError"}, allowed: allowedWith("InternalServerError"),
		},
		{
			name: "503 ServerBusy", fault: slsemu.Fault{Status: 503, Code: "ServerBusy"}, routes: consumerRoutes,
			replace: longTimeout, duration: 4 * time.Second, upDown: true, pullsFail: true,
			required: []string{"PullLogs/ServerBusy", "HeartBeat/ServerBusy"}, allowed: allowedWith("ServerBusy"),
		},
		{
			name: "connection resets", fault: slsemu.Fault{Reset: true}, routes: consumerRoutes,
			replace: longTimeout, duration: 4 * time.Second, upDown: true, pullsFail: true,
			required: []string{"PullLogs/ClientError", "HeartBeat/ClientError"}, allowed: allowedWith("ClientError"),
		},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) { runFaultCase(t, c) })
	}
}

func TestTwoSecondLatencyLosesNothing(t *testing.T) {
	runFaultCase(t, faultCase{
		name: "2 s latency on every call", fault: slsemu.Fault{Latency: slsemu.Duration(2 * time.Second)}, routes: consumerRoutes,
		// A heartbeat answered 2 s late must not expire us: the default timeout.
		replace:  []string{"consumer_timeout: 3s", "consumer_timeout: 8s"},
		duration: 6 * time.Second,
	})
}

func TestHeartbeatFaultsMarkDownAndRecover(t *testing.T) {
	for _, c := range []faultCase{
		{
			name: "500 shorter than the group timeout", fault: slsemu.Fault{Route: "HeartBeat", Status: 500, Code: "InternalServerError"},
			replace: []string{"consumer_timeout: 3s", "consumer_timeout: 10s"}, duration: 5 * time.Second, upDown: true,
			required: []string{"HeartBeat/InternalServerError"},
		},
		{
			name: "resets", fault: slsemu.Fault{Route: "HeartBeat", Reset: true},
			replace: []string{"consumer_timeout: 3s", "consumer_timeout: 10s"}, duration: 5 * time.Second, upDown: true,
			required: []string{"HeartBeat/ClientError"},
		},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) { runFaultCase(t, c) })
	}
}

// TestHeartbeatsFailingLongerThanTheGroupTimeout: heartbeats fail for 6 s
// against a 3 s group timeout. Pulls go on until the group's timeout has
// passed, then the member drops its shards (the server has expired it); once
// heartbeats work again it rejoins and resumes at the committed checkpoints:
// what was counted before the drop is not counted again, and what was
// written after it is counted once.
func TestHeartbeatsFailingLongerThanTheGroupTimeout(t *testing.T) {
	srv := startRigEmulator(t, seedWorld())
	tg := seedTarget("logstore1")
	w := newRigWriter(t, srv, tg)
	e := startRigExporter(t, mustParse(t, seedConfigYAML(srv.URL, threeRules)), 10*time.Second)
	l := newLedger(t, e.exporter, w, tg)
	l.write(3)
	l.waitExact(20*time.Second, "logs written before the fault")

	const duration = 6 * time.Second
	remove := injectFaults(t, srv, slsemu.Fault{Logstore: tg.logstore, Status: 503, Code: "ServerBusy"}, "HeartBeat")
	start := time.Now()
	l.write(2)
	d := l.waitExact(2*time.Second, "logs written as the fault began, counted while the shards are still held")
	waitFor(t, 3*time.Second, "their checkpoints committed", func() bool { end, cp := endCursors(t, srv, tg); return end == cp })
	waitFor(t, 4*time.Second, "sls_up 0", func() bool { return e.up(t, tg) == 0 })
	down := time.Since(start)
	waitFor(t, duration-time.Since(start), "the shards dropped after the group timeout", func() bool {
		return e.series(t, "sls_consumer_shards_held")[tg.key()] == 0
	})
	dropped := time.Since(start)
	// Released shards' series leave the page once scraped; taken again,
	// they continue from their counts (a series back from 0 would hide
	// them from increase()).
	waitFor(t, duration-time.Since(start), "the dropped shards' series off the page", func() bool {
		return len(keysWith(e.series(t, "sls_keyword_matches_total"), "logstore=logstore1,")) == 0
	})
	l.write(1) // while no shard is held: read after the rejoin, once
	time.Sleep(duration - time.Since(start))
	if st, err := srv.ConsumerGroupState(tg.project, tg.logstore, "test-group"); err != nil || len(st.Consumers) != 0 {
		t.Errorf("the server still knows consumers %v (%v) after 6 s without a heartbeat", st.Consumers, err)
	}
	remove()
	ended := time.Now()
	recovered := l.waitExact(recoveryBound, "the logs written while no shard was held, within 5 s after the fault ended")
	waitFor(t, recoveryBound-time.Since(ended), "sls_up 1", func() bool { return e.up(t, tg) == 1 })
	t.Logf("counted during the fault after %v; sls_up 0 after %v; shards dropped after %v; recovered %v after the fault ended",
		d.Round(time.Millisecond), down.Round(time.Millisecond), dropped.Round(time.Millisecond), recovered.Round(time.Millisecond))
	l.write(4)
	l.waitExact(recoveryBound, "logs written after recovery")
	time.Sleep(600 * time.Millisecond)
	if !l.exact() {
		t.Error("counts changed after settling")
	}
	checkErrorCodes(t, e.errorCodes(t, tg), []string{"HeartBeat/ServerBusy"}, "UpdateCheckpoint/ConsumerNotExist")
}

// TestUpNeedsThreeConsecutiveFailures: two failed heartbeats, or two failed
// pulls, leave sls_up at 1; three take it to 0 until the next success.
func TestUpNeedsThreeConsecutiveFailures(t *testing.T) {
	srv := startRigEmulator(t, seedWorld())
	tg := seedTarget("logstore1")
	e := startRigExporter(t, mustParse(t, rigConfigYAML(t, srv.URL, "consumer_timeout: 3s", "consumer_timeout: 10s")), 10*time.Second)
	waitFor(t, 10*time.Second, "sls_up 1", func() bool { return e.up(t, tg) == 1 })

	// watch polls sls_up until the faults are used up and settle after,
	// and reports whether it was ever 0 and how long after the faults were
	// used up it was 1 again.
	watch := func(settle time.Duration) (sawZero bool, upAgain time.Duration) {
		var gone, lastZero time.Time
		for {
			if e.up(t, tg) == 0 {
				sawZero, lastZero = true, time.Now()
			}
			if gone.IsZero() && len(srv.Faults()) == 0 {
				gone = time.Now()
			}
			if !gone.IsZero() && time.Since(gone) > settle {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		return sawZero, max(lastZero.Sub(gone), 0)
	}
	inject := func(f slsemu.Fault) {
		f.Logstore = tg.logstore
		if _, err := srv.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}

	inject(slsemu.Fault{Route: "HeartBeat", Status: 500, Code: "InternalServerError", Times: 2})
	if zero, _ := watch(1500 * time.Millisecond); zero {
		t.Errorf("sls_up went to 0 after only 2 failed heartbeats")
	}
	inject(slsemu.Fault{Route: "HeartBeat", Status: 500, Code: "InternalServerError", Times: 3})
	zero, back := watch(2500 * time.Millisecond)
	if !zero {
		t.Errorf("sls_up stayed 1 through 3 consecutive failed heartbeats")
	}
	if e.up(t, tg) != 1 {
		t.Errorf("sls_up not back to 1 after a successful heartbeat")
	}
	t.Logf("heartbeats: sls_up back to 1 within %v after the 3rd failure", back.Round(time.Millisecond))

	inject(slsemu.Fault{Route: "PullLogs", Status: 500, Code: "InternalServerError", Times: 2})
	if zero, _ := watch(1500 * time.Millisecond); zero {
		t.Errorf("sls_up went to 0 after at most 2 failed pulls per shard")
	}
	// 8 failures over 2 shards: one shard fails at least 4 times in a row.
	inject(slsemu.Fault{Route: "PullLogs", Status: 500, Code: "InternalServerError", Times: 8})
	zero, back = watch(3500 * time.Millisecond)
	if !zero {
		t.Errorf("sls_up stayed 1 through 3 or more consecutive failed pulls of a shard")
	}
	if e.up(t, tg) != 1 {
		t.Errorf("sls_up not back to 1 after successful pulls")
	}
	t.Logf("pulls: sls_up back to 1 within %v after the last failure", back.Round(time.Millisecond))
	checkErrorCodes(t, e.errorCodes(t, tg), []string{"HeartBeat/InternalServerError", "PullLogs/InternalServerError"})
	if n := e.errorCodes(t, tg)["HeartBeat/InternalServerError"]; n != 5 {
		t.Errorf("%v heartbeat errors counted, want exactly the 5 injected", n)
	}
	if n := e.errorCodes(t, tg)["PullLogs/InternalServerError"]; n != 10 {
		t.Errorf("%v pull errors counted, want exactly the 10 injected", n)
	}
}

// TestFailedCreateConsumerGroupRetries: the group cannot be created for a
// while; the member reports down with the real code, retries, and once the
// fault ends reads everything from the beginning exactly once.
func TestFailedCreateConsumerGroupRetries(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
	}{
		{500, "InternalServerError"},
		{400, "ConsumerGroupQuotaExceed"},
	} {
		t.Run(c.code, func(t *testing.T) {
			srv := startRigEmulator(t, seedWorld())
			tg := seedTarget("logstore1")
			w := newRigWriter(t, srv, tg)
			remove := injectFaults(t, srv, slsemu.Fault{Logstore: tg.logstore, Status: c.status, Code: c.code}, "CreateConsumerGroup")
			e := startRigExporter(t, mustParse(t, seedConfigYAML(srv.URL, threeRules)), 10*time.Second)
			l := newLedger(t, e.exporter, w, tg)
			l.write(3)
			start := time.Now()
			waitFor(t, 5*time.Second, "the exporter ready (the failure reported)", func() bool { ready, _ := e.manager.Ready(); return ready })
			waitFor(t, 5*time.Second, "sls_up 0", func() bool { return e.up(t, tg) == 0 })
			l.write(2)
			time.Sleep(4*time.Second - time.Since(start)) // the fault's length is the point
			if m, _ := l.counted(0); m != 0 {
				t.Fatalf("%v matches counted without a consumer group", m)
			}
			hits := faultHits(srv, "CreateConsumerGroup")
			remove()
			recovered := l.waitExact(recoveryBound, "every log, within 5 s after the fault ended")
			waitFor(t, time.Second, "sls_up 1", func() bool { return e.up(t, tg) == 1 })
			t.Logf("%d failed CreateConsumerGroup calls in 4 s; every log counted %v after the fault ended", hits, recovered.Round(time.Millisecond))
			l.write(1)
			l.waitExact(recoveryBound, "logs written after recovery")
			st, err := srv.ConsumerGroupState(tg.project, tg.logstore, "test-group")
			if err != nil || st.Timeout != 3 {
				t.Errorf("group after recovery: %+v %v", st, err)
			}
			checkErrorCodes(t, e.errorCodes(t, tg), []string{"CreateConsumerGroup/" + c.code})
			// The other logstores never noticed.
			for _, other := range []string{"logstore2", "logstore3_1", "logstore3_2"} {
				if up := e.up(t, seedTarget(other)); up != 1 {
					t.Errorf("%s sls_up %v", other, up)
				}
			}
		})
	}
}

// TestFailedGetCursorStartsWhereConfigured: shards without a checkpoint
// cannot read their start cursor for a while; once they can, they start
// exactly at cursor_start (a time in the past, or end).
func TestFailedGetCursorStartsWhereConfigured(t *testing.T) {
	t.Run("time", func(t *testing.T) {
		srv := startRigEmulator(t, seedWorld())
		tg := seedTarget("logstore1")
		w := newRigWriter(t, srv, tg)
		// Before the start time: never counted.
		for shard := range 2 {
			w.put(tg.project, tg.logstore, shard, newLog(time.Now(), "status", "500", "path", "/before-start"))
		}
		startAt := time.Now().Truncate(time.Second).Add(time.Second)
		time.Sleep(time.Until(startAt) + 50*time.Millisecond) // the next second is the start time
		l := newLedger(t, nil, w, tg)
		l.write(3)

		remove := injectFaults(t, srv, slsemu.Fault{Logstore: tg.logstore, Status: 500, Code: "InternalServerError"}, "GetCursor")
		cfgText := strings.Replace(seedConfigYAML(srv.URL, threeRules), "cursor_start: begin", "cursor_start: "+startAt.UTC().Format(time.RFC3339), 1)
		e := startRigExporter(t, mustParse(t, cfgText), 10*time.Second)
		l.e = e.exporter
		start := time.Now()
		waitFor(t, 4*time.Second, "failed GetCursor calls", func() bool { return faultHits(srv, "GetCursor") >= 2 })
		time.Sleep(4*time.Second - time.Since(start)) // the fault's length is the point
		for shard := range 2 {
			if m, _ := l.counted(shard); m != 0 {
				t.Fatalf("shard %d counted %v matches without a start cursor", shard, m)
			}
		}
		hits := faultHits(srv, "GetCursor")
		remove()
		recovered := l.waitExact(recoveryBound, "the logs after the start time, within 5 s after the fault ended")
		t.Logf("%d failed GetCursor calls in 4 s; logs after cursor_start counted %v after the fault ended", hits, recovered.Round(time.Millisecond))
		l.write(2)
		l.waitExact(recoveryBound, "logs written after recovery")
		time.Sleep(600 * time.Millisecond)
		if !l.exact() {
			t.Error("counts changed after settling")
		}
		checkErrorCodes(t, e.errorCodes(t, tg), []string{"GetCursor/InternalServerError"})
	})

	t.Run("end", func(t *testing.T) {
		srv := startRigEmulator(t, seedWorld())
		tg := seedTarget("logstore1")
		w := newRigWriter(t, srv, tg)
		for shard := range 2 { // before the exporter starts: never counted
			w.put(tg.project, tg.logstore, shard, newLog(time.Now(), "status", "500", "path", "/before-start"))
		}
		remove := injectFaults(t, srv, slsemu.Fault{Logstore: tg.logstore, Status: 503, Code: "ServerBusy"}, "GetCursor")
		cfgText := strings.Replace(seedConfigYAML(srv.URL, threeRules), "cursor_start: begin", "cursor_start: end", 1)
		e := startRigExporter(t, mustParse(t, cfgText), 10*time.Second)
		l := newLedger(t, e.exporter, w, tg)
		start := time.Now()
		waitFor(t, 4*time.Second, "failed GetCursor calls", func() bool { return faultHits(srv, "GetCursor") >= 2 })
		time.Sleep(4*time.Second - time.Since(start))
		if lp := e.series(t, "sls_consumer_last_pull_timestamp_seconds"); len(keysWith(lp, "logstore=logstore1")) != 0 {
			t.Fatalf("shards pulled without a start cursor: %v", lp)
		}
		hits := faultHits(srv, "GetCursor")
		remove()
		ended := time.Now()
		waitFor(t, recoveryBound, "both shards pulling within 5 s after the fault ended", func() bool {
			return e.lastPull(t, tg, 0) > 0 && e.lastPull(t, tg, 1) > 0
		})
		t.Logf("%d failed GetCursor calls in 4 s; both shards pulling %v after the fault ended", hits, time.Since(ended).Round(time.Millisecond))
		l.write(3)
		l.waitExact(recoveryBound, "logs written after the shards started at end")
		time.Sleep(600 * time.Millisecond)
		if !l.exact() {
			t.Error("counts changed after settling")
		}
		checkErrorCodes(t, e.errorCodes(t, tg), []string{"GetCursor/ServerBusy"})
	})
}

// endCursors returns each shard's end cursor and the group's checkpoints.
func endCursors(t testing.TB, srv *slsemu.Server, tg target) (end, checkpoint [2]string) {
	t.Helper()
	for _, ls := range srv.State() {
		if ls.Project == tg.project && ls.Logstore == tg.logstore {
			for _, sh := range ls.Shards {
				end[sh.ID] = sh.EndCursor
			}
		}
	}
	st, err := srv.ConsumerGroupState(tg.project, tg.logstore, "test-group")
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range st.Checkpoints {
		checkpoint[cp.Shard] = cp.Checkpoint
	}
	return end, checkpoint
}

// TestUnauthorizedCheckpointCommitsRecover: UpdateCheckpoint answers 401
// for a while. Counting goes on, the failures are counted with the code SLS
// sent, and checkpoints catch up within 5 s after the fault; a restart then
// recounts nothing.
func TestUnauthorizedCheckpointCommitsRecover(t *testing.T) {
	for _, code := range []string{"Unauthorized", "SignatureNotMatch"} {
		t.Run(code, func(t *testing.T) {
			srv := startRigEmulator(t, seedWorld())
			tg := seedTarget("logstore1")
			w := newRigWriter(t, srv, tg)
			cfg := mustParse(t, seedConfigYAML(srv.URL, threeRules))
			e := startRigExporter(t, cfg, 10*time.Second)
			l := newLedger(t, e.exporter, w, tg)
			l.write(3)
			l.waitExact(20*time.Second, "logs written before the fault")
			waitFor(t, 5*time.Second, "checkpoints at the end", func() bool { end, cp := endCursors(t, srv, tg); return end == cp })

			remove := injectFaults(t, srv, slsemu.Fault{Logstore: tg.logstore, Status: 401, Code: code}, "UpdateCheckpoint")
			start := time.Now()
			_, stale := endCursors(t, srv, tg)
			l.write(2)
			l.waitExact(4*time.Second, "logs written during the fault, counted while it lasts")
			waitFor(t, 4*time.Second-time.Since(start), "refused commits", func() bool { return faultHits(srv, "UpdateCheckpoint") >= 2 })
			time.Sleep(4*time.Second - time.Since(start)) // the fault's length is the point
			if _, cp := endCursors(t, srv, tg); cp != stale {
				t.Fatalf("checkpoints moved while every commit was refused: %v -> %v", stale, cp)
			}
			hits := faultHits(srv, "UpdateCheckpoint")
			remove()
			ended := time.Now()
			waitFor(t, recoveryBound, "checkpoints at the end within 5 s after the fault ended", func() bool {
				end, cp := endCursors(t, srv, tg)
				return end == cp
			})
			t.Logf("%d refused commits in 4 s; checkpoints caught up %v after the fault ended; sls_up %v", hits, time.Since(ended).Round(time.Millisecond), e.up(t, tg))
			l.write(1)
			l.waitExact(recoveryBound, "logs written after recovery")
			checkErrorCodes(t, e.errorCodes(t, tg), []string{"UpdateCheckpoint/" + code})

			// The checkpoints are right: a restart counts only what is new.
			if d := e.stop(); d > e.stopTimeout {
				t.Errorf("stop took %v, more than the %v stop timeout", d, e.stopTimeout)
			}
			second := startRigExporter(t, cfg, 10*time.Second)
			l2 := newLedger(t, second.exporter, w, tg)
			l2.write(2)
			l2.waitExact(15*time.Second, "only the logs written after the restart")
			time.Sleep(600 * time.Millisecond)
			if !l2.exact() {
				t.Error("counts changed after settling")
			}
		})
	}
}

// TestDeletedGroupIsCreatedAgainAfterAFailedCreate: someone deletes the
// consumer group; the first attempt to create it again fails. The member
// tries again within seconds (not at its next shard listing, a minute
// away), its shards carry on from where they were (the new group has no
// checkpoints: cursor_start would recount or skip), and every log is
// counted exactly once.
func TestDeletedGroupIsCreatedAgainAfterAFailedCreate(t *testing.T) {
	srv := startRigEmulator(t, seedWorld())
	tg := seedTarget("logstore1")
	w := newRigWriter(t, srv, tg)
	e := startRigExporter(t, mustParse(t, seedConfigYAML(srv.URL, threeRules)), 10*time.Second)
	l := newLedger(t, e.exporter, w, tg)
	l.write(2)
	l.waitExact(10*time.Second, "the first logs")

	if _, err := srv.InjectFault(slsemu.Fault{Route: "CreateConsumerGroup", Logstore: tg.logstore, Status: 500, Code: "InternalServerError", Times: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.client.DeleteConsumerGroup(tg.project, tg.logstore, "test-group"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	waitFor(t, 2*recoveryBound, "the group created again", func() bool {
		st, err := srv.ConsumerGroupState(tg.project, tg.logstore, "test-group")
		return err == nil && len(st.HeldShards()["test-consumer"]) == 2
	})
	took := time.Since(deleted)
	t.Logf("the group was back, both shards held, %s after it was deleted", took.Round(time.Millisecond))
	if took > recoveryBound {
		t.Errorf("recovery took %s, want within %s", took, recoveryBound)
	}
	l.write(3)
	l.waitExact(recoveryBound, "every log after the group was created again, none counted twice")
	checkErrorCodes(t, e.errorCodes(t, tg), []string{"CreateConsumerGroup/InternalServerError", "HeartBeat/ConsumerGroupNotExist"},
		"UpdateCheckpoint/ConsumerGroupNotExist") // commits between the deletion and the next heartbeat
}

// TestFailingStartCursorsMarkTheLogstoreDown: granted shards whose start
// cursor cannot be read are held but not consumed: sls_up says so.
func TestFailingStartCursorsMarkTheLogstoreDown(t *testing.T) {
	srv := startRigEmulator(t, seedWorld())
	tg := seedTarget("logstore1")
	w := newRigWriter(t, srv, tg)
	remove := injectFaults(t, srv, slsemu.Fault{Logstore: tg.logstore, Status: 403, Code: "Unauthorized"}, "GetCursor")
	e := startRigExporter(t, mustParse(t, seedConfigYAML(srv.URL, threeRules)), 10*time.Second)
	l := newLedger(t, e.exporter, w, tg)
	waitFor(t, 10*time.Second, "sls_up 0 while start cursors fail", func() bool { return e.up(t, tg) == 0 })
	remove()
	waitFor(t, recoveryBound, "sls_up 1 once they can be read", func() bool { return e.up(t, tg) == 1 })
	l.write(2)
	l.waitExact(recoveryBound, "logs after recovery")
}
