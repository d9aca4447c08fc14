// Lag probes measure receive-time distance to the newest data; the SDK log bridge keeps levels.
package consumer

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

func TestLagIsReceiveTimeDistanceToNewestGroup(t *testing.T) {
	w := &slsemu.World{
		AccessKeys: []slsemu.AccessKey{{ID: "ak", Secret: "sk"}},
		Regions: []slsemu.RegionConfig{{Name: "r", Endpoint: "r.log.aliyuncs.com", Projects: []slsemu.ProjectConfig{
			{Name: "proj", Logstores: []slsemu.LogstoreConfig{{Name: "store", Shards: 1}}},
		}}},
	}
	srv, err := slsemu.Start(w)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := config.Target{Region: "r", Endpoint: "r.log.aliyuncs.com", ProxyURL: srv.URL, Project: "proj", Logstore: "store",
		Credentials: config.Resolved{AccessKeyID: "ak", AccessKeySecret: "sk"}}
	reg := prometheus.NewRegistry()
	mgr := NewManager(slog.New(slog.DiscardHandler), collector.New(reg), 5*time.Second)
	mgr.budget = newByteBudget(1 << 20)
	mgr.sched = newScheduler(1, pullSlack, mgr.newPullWorker, nil)
	defer mgr.sched.close()
	m := newMember(mgr, cfg, Settings{RequestTimeout: 5 * time.Second, LagInterval: time.Millisecond}, false)
	defer m.cancel()

	put := func() {
		sec := uint32(time.Now().Unix())
		k, v := "k", "v"
		if err := srv.PutLogGroup("proj", "store", 0, &sls.LogGroup{Logs: []*sls.Log{{Time: &sec, Contents: []*sls.LogContent{{Key: &k, Value: &v}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	put()
	first, _ := m.client.GetCursor("proj", "store", 0, "begin")
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(2 * time.Second)))
	put()
	put()
	newest, _ := m.client.GetCursorTime("proj", "store", 0, mustPrevious(t, m.client, "end"))
	oldest, _ := m.client.GetCursorTime("proj", "store", 0, first)
	want := newest.Sub(oldest).Seconds()
	if want < 1 {
		t.Fatalf("setup: receive times %v and %v are too close", oldest, newest)
	}

	sh := newShardState(0, m)
	sh.status, sh.cursor = shardActive, first
	m.shards[0] = sh
	probe := func() float64 {
		m.maybeProbeLag(time.Now().Add(time.Hour))
		m.background.Wait()
		return m.state().Held[0].LagSeconds
	}
	if got := probe(); got != want {
		t.Fatalf("lag %v, want %v", got, want)
	}
	// Consumed everything: a pull found nothing and set caughtUp, lag 0.
	m.mu.Lock()
	sh.caughtUp, sh.lagSeconds = true, 0
	m.mu.Unlock()
	if got := probe(); got != 0 {
		t.Fatalf("lag after catching up %v, want 0", got)
	}
	// Lag probes make no call for caught-up shards.
	if n, err := testutil.GatherAndCount(reg, "sls_consumer_errors_total"); err != nil || n != 0 {
		t.Fatalf("%d error series (%v)", n, err)
	}
}

func mustPrevious(t *testing.T, c *sls.Client, from string) string {
	end, err := c.GetCursor("proj", "store", 0, from)
	if err != nil {
		t.Fatal(err)
	}
	prev, ok := previousCursor(end)
	if !ok {
		t.Fatalf("cursor %q does not decode", end)
	}
	return prev
}

// kitLevelValue stands in for go-kit's level values, which print their name.
type kitLevelValue string

func (v kitLevelValue) String() string { return string(v) }

func TestKitBridgeKeepsLevelsAndMessages(t *testing.T) {
	var out bytes.Buffer
	logger := NewKitLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	_ = logger.Log("shard", 3, "level", kitLevelValue("warn"), "msg", "pull failed", "error", errors.New("boom"), "caller", "x.go:1")
	_ = logger.Log("level", kitLevelValue("info"), "msg", "client ready")
	_ = logger.Log("level", kitLevelValue("error"), "msg", "broken")
	for _, line := range []string{
		`level=WARN msg="sls sdk: pull failed" shard=3 err=boom`,
		`level=DEBUG msg="sls sdk: client ready"`,
		`level=ERROR msg="sls sdk: broken"`,
	} {
		if !bytes.Contains(out.Bytes(), []byte(line)) {
			t.Errorf("log lacks %q:\n%s", line, out.String())
		}
	}
	if bytes.Contains(out.Bytes(), []byte("x.go:1")) {
		t.Errorf("the SDK's caller key leaked: %s", out.String())
	}
}
