// Consumer groups driven by the SDK's own consumer library: delivery, balance, failover, resume.
package slsemu_test

import (
	"strconv"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

func TestTwoWorkersConsumeEveryLogExactlyOnce(t *testing.T) {
	srv := startEmulator(t, testWorld())
	client := newClient(srv, testHost, testAK, testSecret)
	const n = 2000
	putSeqLogs(t, client, "proj", "four", 0, n, 50)

	got := newDeliveries()
	a := startWorker(srv, "four", "cg", "worker-a", got)
	b := startWorker(srv, "four", "cg", "worker-b", got)

	waitFor(t, 20*time.Second, "all logs delivered", func() bool { d, _, _ := got.snapshot(); return d == n })
	waitFor(t, 10*time.Second, "a 2/2 split", func() bool {
		st, err := srv.ConsumerGroupState("proj", "four", "cg")
		held := st.HeldShards()
		return err == nil && len(held["worker-a"]) == 2 && len(held["worker-b"]) == 2
	})
	a.StopAndWait()
	b.StopAndWait()

	distinct, total, dup := got.snapshot()
	if distinct != n || total != n || dup != 0 {
		t.Fatalf("delivered %d distinct, %d total, %d duplicates; want %d, %d, 0", distinct, total, dup, n, n)
	}
	cps, err := client.GetCheckpoint("proj", "four", "cg")
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 4 {
		t.Fatalf("GetCheckpoint returned %d shards, want 4", len(cps))
	}
	for _, cp := range cps {
		end, err := client.GetCursor("proj", "four", cp.ShardID, "end")
		if err != nil {
			t.Fatal(err)
		}
		if cp.CheckPoint != end {
			t.Errorf("shard %d checkpoint %q, want the end cursor %q", cp.ShardID, cp.CheckPoint, end)
		}
		if cp.Consumer != "worker-a" && cp.Consumer != "worker-b" {
			t.Errorf("shard %d checkpoint saved by %q", cp.ShardID, cp.Consumer)
		}
	}
	if v, _ := srv.HoldViolations("proj", "four"); len(v) > 0 {
		t.Fatalf("shards held twice: %v", v)
	}
}

func TestFailoverAndRebalanceNeverHoldAShardTwice(t *testing.T) {
	srv := startEmulator(t, testWorld())
	got := newDeliveries()
	a := startWorker(srv, "four", "cg", "worker-a", got)
	b := startWorker(srv, "four", "cg", "worker-b", got)
	heldBy := func(consumer string) int {
		st, err := srv.ConsumerGroupState("proj", "four", "cg")
		if err != nil {
			return -1
		}
		return len(st.HeldShards()[consumer])
	}
	waitFor(t, 10*time.Second, "a 2/2 split", func() bool { return heldBy("worker-a") == 2 && heldBy("worker-b") == 2 })

	// The library sends no farewell: worker-a's shards move once the group
	// timeout (3s) passes, at worker-b's next heartbeat.
	stopped := time.Now()
	a.StopAndWait()
	waitFor(t, 3*time.Second+2*time.Second+500*time.Millisecond, "worker-b to own all 4 shards", func() bool { return heldBy("worker-b") == 4 })
	t.Logf("failover took %s", time.Since(stopped).Round(10*time.Millisecond))

	c := startWorker(srv, "four", "cg", "worker-c", got)
	waitFor(t, 10*time.Second, "a 2/2 rebalance between b and c", func() bool { return heldBy("worker-b") == 2 && heldBy("worker-c") == 2 })
	b.StopAndWait()
	c.StopAndWait()

	if v, _ := srv.HoldViolations("proj", "four"); len(v) > 0 {
		t.Fatalf("shards held by two consumers at once: %v", v)
	}
}

func TestRestartResumesFromCheckpoint(t *testing.T) {
	srv := startEmulator(t, testWorld())
	client := newClient(srv, testHost, testAK, testSecret)
	putSeqLogs(t, client, "proj", "two", 0, 500, 25)

	first := newDeliveries()
	w := startWorker(srv, "two", "cg", "worker-a", first)
	waitFor(t, 15*time.Second, "the first 500 logs", func() bool { d, _, _ := first.snapshot(); return d == 500 })
	w.StopAndWait()

	putSeqLogs(t, client, "proj", "two", 500, 800, 25)
	second := newDeliveries()
	w = startWorker(srv, "two", "cg", "worker-a", second)
	waitFor(t, 15*time.Second, "the next 300 logs", func() bool { d, _, _ := second.snapshot(); return d == 300 })
	time.Sleep(700 * time.Millisecond) // a further idle poll would show any re-delivery
	w.StopAndWait()

	distinct, total, dup := second.snapshot()
	if distinct != 300 || total != 300 || dup != 0 {
		t.Fatalf("after restart: %d distinct, %d total, %d duplicates; want 300, 300, 0", distinct, total, dup)
	}
	second.mu.Lock()
	defer second.mu.Unlock()
	for seq := range second.counts {
		if n, err := strconv.Atoi(seq); err != nil || n < 500 || n >= 800 {
			t.Fatalf("log seq %q delivered after the restart; want only 500..799", seq)
		}
	}
}

func TestGetCheckpointListsUnconsumedShards(t *testing.T) {
	srv := startEmulator(t, testWorld())
	client := newClient(srv, testHost, testAK, testSecret)
	if err := client.CreateConsumerGroup("proj", "two", sls.ConsumerGroup{ConsumerGroupName: "fresh", Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	cps, err := client.GetCheckpoint("proj", "two", "fresh")
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || cps[0].CheckPoint != "" || cps[1].CheckPoint != "" || cps[0].ShardID != 0 || cps[1].ShardID != 1 {
		t.Fatalf("GetCheckpoint = %+v, want shards 0 and 1 with empty checkpoints", cps)
	}
}
