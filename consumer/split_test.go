// A split while no exporter runs: the children, which the group never saw, are read from their beginning.
package consumer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

func TestSplitWhileStoppedReadsTheChildrenFromTheirBeginning(t *testing.T) {
	w := &slsemu.World{AccessKeys: []slsemu.AccessKey{{ID: testAK, Secret: testSecret}}}
	w.Regions = []slsemu.RegionConfig{{Name: "cn-hangzhou", Endpoint: "cn-hangzhou.log.aliyuncs.com", Projects: []slsemu.ProjectConfig{
		{Name: "apps", Logstores: []slsemu.LogstoreConfig{{Name: "web", Shards: 1}}},
	}}}
	srv := startEmulator(t, w)
	cfgYAML := fmt.Sprintf(`consumer_group: split-stopped
consumer_name: one
cursor_start: end
heartbeat_interval: 1s
consumer_timeout: 3s
commit_interval: 300ms
credentials: {access_key_id: %s, access_key_secret: %s}
regions:
  - {name: cn-hangzhou, endpoint: cn-hangzhou.log.aliyuncs.com, proxy_url: %q, projects: [{name: apps, logstores: [web]}]}
rules:
  - {name: http_5xx, field: status, regex: '^5\d{2}$'}
`, testAK, testSecret, srv.URL)
	wr := newWriter(t, srv, "cn-hangzhou.log.aliyuncs.com")
	now := time.Now()

	first := startExporter(t, mustParse(t, cfgYAML))
	// Polled once: its start cursor (end) is read, so what follows is new.
	waitFor(t, 10*time.Second, "shard 0 polled", func() bool { return len(first.series(t, "sls_consumer_last_pull_timestamp_seconds")) == 1 })
	wr.put("apps", "web", 0, newLog(now, "status", "500"), newLog(now, "status", "503"), newLog(now, "status", "200"))
	waitFor(t, 10*time.Second, "the first run's counts", func() bool { return first.sum(t, "sls_consumer_logs_total") == 3 })
	if got := first.sum(t, "sls_keyword_matches_total"); got != 2 {
		t.Fatalf("first run: %v matches, want 2", got)
	}
	first.manager.Stop() // drains: its counts scraped, its checkpoint committed

	// Split while nothing consumes, then write into both children.
	if _, err := wr.client.SplitShard("apps", "web", 0, "80000000000000000000000000000000"); err != nil {
		t.Fatal(err)
	}
	// ListShards: 0 (readonly), 1 [00, 80), 2 [80, ff): put picks by index.
	wr.put("apps", "web", 1, newLog(now, "status", "500"), newLog(now, "status", "200"))
	wr.put("apps", "web", 2, newLog(now, "status", "502"), newLog(now, "status", "504"), newLog(now, "status", "500"), newLog(now, "status", "201"))

	// cursor_start: end, yet the children were never consumed by the group:
	// all of them is new. The parent resumes at its checkpoint: nothing new.
	second := startExporter(t, mustParse(t, cfgYAML))
	waitFor(t, 15*time.Second, "the children's logs", func() bool { return second.sum(t, "sls_consumer_logs_total") >= 6 })
	time.Sleep(time.Second) // anything recounted from the parent would show by now
	if logs, matches := second.sum(t, "sls_consumer_logs_total"), second.sum(t, "sls_keyword_matches_total"); logs != 6 || matches != 4 {
		t.Errorf("after the split: %v logs, %v matches; want exactly the children's 6 and 4", logs, matches)
	}
	for shard, want := range map[string]float64{"1": 2, "2": 4} {
		if got := second.sum(t, "sls_consumer_logs_total", "shard", shard); got != want {
			t.Errorf("shard %s: %v logs, want %v", shard, got, want)
		}
	}
}
