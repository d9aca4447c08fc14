// The SDK's consumer library reading through shard splits and merges: every log once, readonly shards end "over".
package slsemu_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

func TestConsumerGroupReadsThroughSplitAndMergeExactlyOnce(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	// "two" starts as 0 [00,80) and 1 [80,ff); putSeqLogs cycles the keys 00, 40, 80, c0.
	putSeqLogs(t, c, "proj", "two", 0, 600, 20)

	got := newDeliveries()
	a := startWorker(srv, "two", "cg", "worker-a", got)
	b := startWorker(srv, "two", "cg", "worker-b", got)
	waitFor(t, 15*time.Second, "the first logs delivered", func() bool { d, _, _ := got.snapshot(); return d > 0 })

	if _, err := c.SplitShard("proj", "two", 0, key40); err != nil { // 2 [00,40), 3 [40,80)
		t.Fatal(err)
	}
	putSeqLogs(t, c, "proj", "two", 600, 1200, 20)
	waitFor(t, 15*time.Second, "the logs written after the split", func() bool { d, _, _ := got.snapshot(); return d == 1200 })
	if _, err := c.MergeShards("proj", "two", 3); err != nil { // 3 and 1 into 4 [40,ff)
		t.Fatal(err)
	}
	putSeqLogs(t, c, "proj", "two", 1200, 1800, 20)
	waitFor(t, 20*time.Second, "all 1800 logs", func() bool { d, _, _ := got.snapshot(); return d == 1800 })

	readonly := []int{0, 1, 3}
	waitFor(t, 15*time.Second, "the readonly shards to be over and acked to no one", func() bool {
		st, err := srv.ConsumerGroupState("proj", "two", "cg")
		if err != nil || !slices.Equal(st.Over, readonly) || len(st.Consumers) != 2 {
			return false
		}
		for _, cs := range st.Consumers {
			for _, id := range readonly {
				if slices.Contains(cs.Acked, id) || slices.Contains(cs.Reported, id) {
					return false
				}
			}
		}
		held := st.HeldShards()
		return len(held["worker-a"])+len(held["worker-b"]) == 2 // the readwrite shards 2 and 4
	})
	a.StopAndWait()
	b.StopAndWait()

	distinct, total, dup := got.snapshot()
	if distinct != 1800 || total != 1800 || dup != 0 {
		t.Fatalf("delivered %d distinct, %d total, %d duplicates; want 1800, 1800, 0", distinct, total, dup)
	}
	cps, err := c.GetCheckpoint("proj", "two", "cg")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, len(cps))
	for i, cp := range cps {
		ids[i] = cp.ShardID
		end, err := c.GetCursor("proj", "two", cp.ShardID, "end")
		if err != nil {
			t.Fatal(err)
		}
		if cp.CheckPoint != end {
			t.Errorf("shard %d checkpoint %q, want its end cursor %q", cp.ShardID, cp.CheckPoint, end)
		}
	}
	if fmt.Sprint(ids) != "[0 1 2 3 4]" {
		t.Fatalf("GetCheckpoint lists shards %v, want [0 1 2 3 4]", ids)
	}
	if v, _ := srv.HoldViolations("proj", "two"); len(v) > 0 {
		t.Fatalf("shards held twice: %v", v)
	}
}

func TestNewGroupAfterASplitReadsTheReadonlyShardToo(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	putSeqLogs(t, c, "proj", "two", 0, 200, 20)
	if err := srv.SplitShard("proj", "two", 1, ""); err != nil { // 2 [80,c0), 3 [c0,ff)
		t.Fatal(err)
	}
	putSeqLogs(t, c, "proj", "two", 200, 400, 20)
	if err := c.CreateConsumerGroup("proj", "two", sls.ConsumerGroup{ConsumerGroupName: "late", Timeout: 3}); err != nil {
		t.Fatal(err)
	}
	cps, err := c.GetCheckpoint("proj", "two", "late")
	if err != nil || len(cps) != 4 || cps[1].ShardID != 1 || cps[1].CheckPoint != "" {
		t.Fatalf("GetCheckpoint of a group created after the split = %+v, %v; want shards 0-3, none checkpointed", cps, err)
	}
	got := newDeliveries()
	w := startWorker(srv, "two", "late", "worker-a", got)
	waitFor(t, 15*time.Second, "all 400 logs", func() bool { d, _, _ := got.snapshot(); return d == 400 })
	waitFor(t, 10*time.Second, "shard 1 over", func() bool {
		st, err := srv.ConsumerGroupState("proj", "two", "late")
		return err == nil && slices.Equal(st.Over, []int{1}) && slices.Equal(st.HeldShards()["worker-a"], []int{0, 2, 3})
	})
	w.StopAndWait()
	if distinct, total, dup := got.snapshot(); distinct != 400 || total != 400 || dup != 0 {
		t.Fatalf("delivered %d distinct, %d total, %d duplicates; want 400, 400, 0", distinct, total, dup)
	}
}
