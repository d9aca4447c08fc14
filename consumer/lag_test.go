// Lag probes measure receive-time distance to the newest data; the SDK log bridge classifies failures.
package consumer

import (
	"bytes"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/prometheus/client_golang/prometheus"

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
	settings := Settings{RequestTimeout: 5 * time.Second, RetryTimeout: 2 * time.Second}
	tg := newTarget(cfg, settings, &atomic.Pointer[compiledRules]{}, collector.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))

	put := func() {
		sec := uint32(time.Now().Unix())
		k, v := "k", "v"
		if err := srv.PutLogGroup("proj", "store", 0, &sls.LogGroup{Logs: []*sls.Log{{Time: &sec, Contents: []*sls.LogContent{{Key: &k, Value: &v}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	put()
	first, _ := tg.client.GetCursor("proj", "store", 0, "begin")
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(2 * time.Second)))
	put()
	put()
	newest, _ := tg.client.GetCursorTime("proj", "store", 0, mustPrevious(t, tg.client, "end"))
	oldest, _ := tg.client.GetCursorTime("proj", "store", 0, first)
	want := newest.Sub(oldest).Seconds()
	if want < 1 {
		t.Fatalf("setup: receive times %v and %v are too close", oldest, newest)
	}

	tg.held[0] = &heldShard{currentCursor: "previous", nextCursor: first}
	tg.probeLag()
	if got := tg.state().Held[0].LagSeconds; got != want {
		t.Fatalf("lag %v, want %v", got, want)
	}
	end, _ := tg.client.GetCursor("proj", "store", 0, "end")
	tg.recordPosition(0, first, end) // consumed everything
	tg.probeLag()
	if got := tg.state().Held[0].LagSeconds; got != 0 {
		t.Fatalf("lag after catching up %v, want 0", got)
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

func TestKitBridgeClassifiesLibraryLines(t *testing.T) {
	var out bytes.Buffer
	var events []sdkEvent
	logger := NewKitLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), func(e sdkEvent) { events = append(events, e) })

	_ = logger.Log("shard", 3, "level", kitLevelValue("warn"), "msg", "shard pull logs failed, occur sls error",
		"error", &sls.Error{HTTPCode: 403, Code: "ReadQuotaExceed"}, "tryTimes", 1)
	_ = logger.Log("level", kitLevelValue("info"), "heart beat result", "[0 1]", "get", "[0 1]")
	_ = logger.Log("level", kitLevelValue("warn"), "msg", "send heartbeat error", "error", errors.New("dial tcp: connection refused"))
	_ = logger.Log("level", kitLevelValue("info"), "msg", "consumer worker start")

	want := []sdkEvent{{operation: "PullLogs", code: "ReadQuotaExceed"}, {heartbeat: true}, {operation: "HeartBeat", code: "ClientError"}}
	if len(events) != len(want) {
		t.Fatalf("events %+v, want %+v", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, events[i], want[i])
		}
	}
	logged := out.String()
	for _, line := range []string{
		`level=WARN msg="sls sdk: shard pull logs failed, occur sls error" shard=3 err=`,
		`level=DEBUG msg="sls sdk: heart beat result" value="[0 1]" get="[0 1]"`,
		`level=DEBUG msg="sls sdk: consumer worker start"`,
	} {
		if !bytes.Contains(out.Bytes(), []byte(line)) {
			t.Errorf("log lacks %q:\n%s", line, logged)
		}
	}
}
