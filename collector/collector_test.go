// Golden exposition of consumer state, the last-match info metric and series created at zero.
package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fixedStates []LogstoreState

func (f fixedStates) LogstoreStates() []LogstoreState { return f }

var hz = Target{Region: "cn-hangzhou", Project: "project1", Logstore: "logstore1"}

func TestStateAndLastMatchExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.SetStateSource(fixedStates{
		{Target: hz, Up: true, ReadwriteShards: 4, GroupTimeout: 8 * time.Second, Held: []ShardState{
			{ID: 0, LagSeconds: 0, LastPull: time.UnixMilli(1_700_000_000_250)}, {ID: 3, LagSeconds: 12}, {ID: 5, Readonly: true}}},
		{Target: Target{"cn-beijing", "project2", "logstore2"}, Up: false, ReadwriteShards: -1},
	})
	rule := RuleLabels{Name: "http_5xx", Field: "status"}
	m.RecordLastMatch(hz, rule, "status=500 path=/a", 100, 0)
	m.RecordLastMatch(hz, rule, "status=502 path=/newer", 200, 0)
	m.RecordLastMatch(hz, rule, "status=503 path=/older", 150, 0) // older than the kept one: ignored

	want := `
# HELP sls_consumer_lag_seconds Receive time of the shard's newest log group minus that of the first group not yet consumed; 0 when caught up.
# TYPE sls_consumer_lag_seconds gauge
sls_consumer_lag_seconds{logstore="logstore1",project="project1",region="cn-hangzhou",shard="0"} 0
sls_consumer_lag_seconds{logstore="logstore1",project="project1",region="cn-hangzhou",shard="3"} 12
sls_consumer_lag_seconds{logstore="logstore1",project="project1",region="cn-hangzhou",shard="5"} 0
# HELP sls_consumer_group_timeout_seconds The consumer group's timeout: a member silent this long loses its shards to the others.
# TYPE sls_consumer_group_timeout_seconds gauge
sls_consumer_group_timeout_seconds{logstore="logstore1",project="project1",region="cn-hangzhou"} 8
# HELP sls_consumer_last_pull_timestamp_seconds When a pull of the shard last succeeded; a shard whose pulls fail stops advancing it.
# TYPE sls_consumer_last_pull_timestamp_seconds gauge
sls_consumer_last_pull_timestamp_seconds{logstore="logstore1",project="project1",region="cn-hangzhou",shard="0"} 1.70000000025e+09
# HELP sls_consumer_readonly_shards_held Readonly shards (parents of a split or merge) this replica still reads to their end; absent when none.
# TYPE sls_consumer_readonly_shards_held gauge
sls_consumer_readonly_shards_held{logstore="logstore1",project="project1",region="cn-hangzhou"} 1
# HELP sls_consumer_shards_held Readwrite shards of the logstore this replica consumes; sum over replicas below sls_logstore_shards means unowned shards.
# TYPE sls_consumer_shards_held gauge
sls_consumer_shards_held{logstore="logstore1",project="project1",region="cn-hangzhou"} 2
sls_consumer_shards_held{logstore="logstore2",project="project2",region="cn-beijing"} 0
# HELP sls_keyword_last_match_info The newest log (by log time) that matched the rule, rendered as sorted key=value pairs in the sample label.
# TYPE sls_keyword_last_match_info gauge
sls_keyword_last_match_info{field="status",logstore="logstore1",project="project1",region="cn-hangzhou",rule="http_5xx",sample="status=502 path=/newer"} 1
# HELP sls_keyword_last_match_timestamp_seconds Log time of the newest log that matched the rule.
# TYPE sls_keyword_last_match_timestamp_seconds gauge
sls_keyword_last_match_timestamp_seconds{field="status",logstore="logstore1",project="project1",region="cn-hangzhou",rule="http_5xx"} 200
# HELP sls_logstore_shards Readwrite shards of the logstore.
# TYPE sls_logstore_shards gauge
sls_logstore_shards{logstore="logstore1",project="project1",region="cn-hangzhou"} 4
# HELP sls_up Whether the logstore's consumer can reach SLS: 0 while the logstore or AccessKey is refused, or after 3 consecutive failed heartbeats or pulls.
# TYPE sls_up gauge
sls_up{logstore="logstore1",project="project1",region="cn-hangzhou"} 1
sls_up{logstore="logstore2",project="project2",region="cn-beijing"} 0
`
	names := []string{"sls_consumer_group_timeout_seconds", "sls_consumer_lag_seconds", "sls_consumer_last_pull_timestamp_seconds",
		"sls_consumer_readonly_shards_held", "sls_consumer_shards_held", "sls_keyword_last_match_info",
		"sls_keyword_last_match_timestamp_seconds", "sls_logstore_shards", "sls_up"}
	if err := testutil.GatherAndCompare(m.Gatherer(reg), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.GatherAndLint(m.Gatherer(reg)); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
}

func TestShardCountersStartAtZeroAndForgetRules(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	rules := []RuleLabels{{"http_5xx", "status"}, {"oom", "*"}}
	sc := m.ShardCounters(hz, 2, rules)
	sc.Matches[1].Add(3)
	g := m.Gatherer(reg)
	if n, _ := testutil.GatherAndCount(g, "sls_keyword_matches_total"); n != 2 {
		t.Fatalf("%d match series, want 2 (both created at 0)", n)
	}
	want := `
# HELP sls_keyword_matches_total Logs whose field matched the rule's regex (field "*": any field).
# TYPE sls_keyword_matches_total counter
sls_keyword_matches_total{field="*",logstore="logstore1",project="project1",region="cn-hangzhou",rule="oom",shard="2"} 3
sls_keyword_matches_total{field="status",logstore="logstore1",project="project1",region="cn-hangzhou",rule="http_5xx",shard="2"} 0
`
	if err := testutil.GatherAndCompare(g, strings.NewReader(want), "sls_keyword_matches_total"); err != nil {
		t.Fatal(err)
	}
	m.RecordLastMatch(hz, rules[0], "s", 1, 0)
	m.ForgetRules(rules[1:])
	if n, _ := testutil.GatherAndCount(g, "sls_keyword_matches_total"); n != 1 {
		t.Fatalf("%d match series after forgetting http_5xx, want 1", n)
	}
	if n := testutil.CollectAndCount(m.lastMatch); n != 0 {
		t.Fatalf("%d last-match series after forgetting http_5xx, want 0", n)
	}
	// The same counters come back, and go with their shard or logstore.
	again := m.ShardCounters(hz, 2, rules[1:])
	if again.Matches[0] != sc.Matches[1] {
		t.Fatal("a shard's counter must survive a rules reload that keeps its rule")
	}
	// A retired shard leaves the page but, taken again, continues from its
	// counts; a deleted one starts over.
	m.RetireShard(hz, 2)
	if n, _ := testutil.GatherAndCount(g, "sls_keyword_matches_total", "sls_consumer_logs_total"); n != 0 {
		t.Fatalf("%d series of a retired shard on the page", n)
	}
	back := m.ShardCounters(hz, 2, rules[1:])
	if back.Matches[0].Value() != 3 || back.Matches[0] != sc.Matches[1] {
		t.Fatalf("a shard taken again restarted its counter at %d, want 3", back.Matches[0].Value())
	}
	m.ShardCounters(hz, 3, rules[1:])
	m.DeleteShard(hz, 2)
	if fresh := m.ShardCounters(hz, 2, rules[1:]); fresh.Matches[0].Value() != 0 {
		t.Fatal("a deleted shard's counter came back")
	}
	m.DeleteShard(hz, 2)
	if n, _ := testutil.GatherAndCount(g, "sls_keyword_matches_total", "sls_consumer_logs_total"); n != 2 {
		t.Fatalf("%d series after deleting shard 2, want shard 3's 2", n)
	}
	m.DeleteTarget(hz)
	if n, _ := testutil.GatherAndCount(g, "sls_keyword_matches_total", "sls_consumer_logs_total", "sls_consumer_bytes_total"); n != 0 {
		t.Fatalf("%d series after deleting the logstore, want 0", n)
	}
}
