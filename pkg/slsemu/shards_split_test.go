// Shard split and merge through the real SDK: answers, errors, routing around readonly shards, and writes racing a split.
package slsemu_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

const (
	key00 = "00000000000000000000000000000000"
	key20 = "20000000000000000000000000000000"
	key40 = "40000000000000000000000000000000"
	key60 = "60000000000000000000000000000000"
	key80 = "80000000000000000000000000000000"
	keyC0 = "c0000000000000000000000000000000"
	keyFF = "ffffffffffffffffffffffffffffffff"
)

// shardLine renders a shard as "id status [begin,end)" for exact comparisons.
func shardLine(s *sls.Shard) string {
	return fmt.Sprintf("%d %s [%s,%s)", s.ShardID, s.Status, s.InclusiveBeginKey[:2], s.ExclusiveBeginKey[:2])
}

func shardLines(shards []*sls.Shard) []string {
	out := make([]string, len(shards))
	for i, s := range shards {
		out[i] = shardLine(s)
	}
	return out
}

func TestSplitAndMergeAnswerAsTheSDKExpects(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	before, err := c.ListShards("proj", "two")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond))) // a later second than the creation
	splitAt := time.Now().Unix()

	// SplitShard: the parent, now readonly, then the two children with the next IDs.
	got, err := c.SplitShard("proj", "two", 0, key40)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0 readonly [00,80)", "2 readwrite [00,40)", "3 readwrite [40,80)"}; !slices.Equal(shardLines(got), want) {
		t.Fatalf("SplitShard answered %v, want %v", shardLines(got), want)
	}
	// MergeShards of 3 with its right neighbour 1: the merged shard, then both sealed ones.
	got, err = c.MergeShards("proj", "two", 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"4 readwrite [40,ff)", "3 readonly [40,80)", "1 readonly [80,ff)"}; !slices.Equal(shardLines(got), want) {
		t.Fatalf("MergeShards answered %v, want %v", shardLines(got), want)
	}
	// SplitNumShard: shardCount children of equal width.
	got, err = c.(*sls.Client).SplitNumShard("proj", "two", 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[1].InclusiveBeginKey != key40 || got[3].ExclusiveBeginKey != keyFF ||
		got[1].ExclusiveBeginKey != got[2].InclusiveBeginKey || got[2].ExclusiveBeginKey != got[3].InclusiveBeginKey || got[1].ShardID != 5 {
		t.Fatalf("SplitNumShard answered %v", shardLines(got))
	}

	all, err := c.ListShards("proj", "two")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0 readonly [00,80)", "1 readonly [80,ff)", "2 readwrite [00,40)", "3 readonly [40,80)", "4 readonly [40,ff)", "5 readwrite [40,7f)", "6 readwrite [7f,bf)", "7 readwrite [bf,ff)"}
	if !slices.Equal(shardLines(all), want) {
		t.Fatalf("ListShards = %v, want %v", shardLines(all), want)
	}
	for _, s := range all {
		created := int64(s.CreateTime)
		switch {
		case s.ShardID < 2 && created != int64(before[s.ShardID].CreateTime):
			t.Errorf("shard %d createTime changed from %d to %d", s.ShardID, before[s.ShardID].CreateTime, created)
		case s.ShardID >= 2 && (created < splitAt || created > time.Now().Unix()):
			t.Errorf("shard %d createTime %d, want the time of its split (>= %d)", s.ShardID, created, splitAt)
		}
	}
	ls, err := c.GetLogStore("proj", "two")
	if err != nil || ls.ShardCount != 4 {
		t.Fatalf("GetLogStore shardCount = %d, %v; want the 4 readwrite shards", ls.ShardCount, err)
	}
	for _, st := range srv.State() {
		if st.Logstore == "two" && (len(st.Shards) != 8 || st.Shards[0].Status != "readonly" || st.Shards[0].EndKey != key80 || st.Shards[7].Status != "readwrite") {
			t.Fatalf("State shards = %+v", st.Shards)
		}
	}
}

func TestSplitAndMergeRefuseWhatSLSRefuses(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	// "four" has [00,40) [40,80) [80,c0) [c0,ff).
	split := func(shard int, key string) error { _, err := c.SplitShard("proj", "four", shard, key); return err }
	wantSLSError(t, "split at the shard's begin key", split(1, key40), 400, "ParameterInvalid")
	wantSLSError(t, "split at the shard's end key", split(1, key80), 400, "ParameterInvalid")
	wantSLSError(t, "split outside the shard", split(1, key20), 400, "ParameterInvalid")
	wantSLSError(t, "split at ffff..ff", split(3, keyFF), 400, "ParameterInvalid")
	wantSLSError(t, "split key not hex", split(1, "6000000000000000000000000000000g"), 400, "ParameterInvalid")
	wantSLSError(t, "split key too short", split(1, "60"), 400, "ParameterInvalid")
	wantSLSError(t, "split of an unknown shard", split(9, key60), 400, "ParameterInvalid")
	_, err := c.SplitShard("proj", "nosuchstore", 0, key20)
	wantSLSError(t, "split in an unknown logstore", err, 404, "LogStoreNotExist")
	_, err = c.(*sls.Client).SplitNumShard("proj", "four", 1, 65)
	wantSLSError(t, "shardCount 65", err, 400, "ParameterInvalid")

	if err := split(1, key60); err != nil {
		t.Fatal(err)
	}
	wantSLSError(t, "split of a readonly shard", split(1, "50000000000000000000000000000000"), 400, "ParameterInvalid")
	_, err = c.MergeShards("proj", "four", 1)
	wantSLSError(t, "merge of a readonly shard", err, 400, "ParameterInvalid")
	_, err = c.MergeShards("proj", "four", 3)
	wantSLSError(t, "merge of the last shard", err, 400, "ParameterInvalid")
	_, err = c.MergeShards("proj", "four", 42)
	wantSLSError(t, "merge of an unknown shard", err, 400, "ParameterInvalid")
	if err := srv.PutLogGroup("proj", "four", 1, &sls.LogGroup{Logs: []*sls.Log{newLog(time.Now(), "k", "v")}}); err == nil {
		t.Fatal("PutLogGroup into a readonly shard succeeded")
	}

	// Both calls can be faulted like any other route.
	if _, err := srv.InjectFault(slsemu.Fault{Route: "SplitShard", Status: 500, Code: "InternalServerError", Times: 1}); err != nil {
		t.Fatal(err)
	}
	wantSLSError(t, "injected split fault", split(0, key20), 500, "InternalServerError")
	if _, err := srv.InjectFault(slsemu.Fault{Route: "MergeShards", Status: 403, Code: "Unauthorized", Times: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = c.MergeShards("proj", "four", 0)
	wantSLSError(t, "injected merge fault", err, 403, "Unauthorized")
	if shards, _ := c.ListShards("proj", "four"); len(shards) != 6 {
		t.Fatalf("the faulted calls changed the shards: %v", shardLines(shards))
	}
}

func TestReadonlyShardsKeepTheirDataAndTakeNoWrites(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	put := func(key *string, tag string) {
		t.Helper()
		if err := c.PostLogStoreLogs("proj", "two", &sls.LogGroup{Logs: []*sls.Log{newLog(time.Now(), "tag", tag)}}, key); err != nil {
			t.Fatal(err)
		}
	}
	k00, k60, kFF := key00, key60, keyFF
	put(&k00, "before-0")
	put(&k60, "before-1")
	begin0, _ := c.GetCursor("proj", "two", 0, "begin")
	end0, _ := c.GetCursor("proj", "two", 0, "end")

	if err := srv.SplitShard("proj", "two", 0, key40); err != nil { // 2: [00,40), 3: [40,80)
		t.Fatal(err)
	}
	put(&k00, "after-2")
	put(&k60, "after-3")
	put(&kFF, "after-1") // the very last key goes to the shard ending at ffff..ff
	for range 6 {
		put(nil, "lb") // load-balanced writes skip the readonly shard
	}
	if end, _ := c.GetCursor("proj", "two", 0, "end"); end != end0 {
		t.Fatalf("readonly shard's end cursor moved from %s to %s", end0, end)
	}
	pullTags := func(shard int) []string {
		t.Helper()
		begin, err := c.GetCursor("proj", "two", shard, "begin")
		if err != nil {
			t.Fatal(err)
		}
		gl, _, err := c.PullLogs("proj", "two", shard, begin, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var tags []string
		for _, g := range gl.LogGroups {
			tags = append(tags, field(g.Logs[0], "tag"))
		}
		return tags
	}
	for shard, want := range map[int]string{0: "[before-0 before-1]", 1: "[after-1 lb lb]", 2: "[after-2 lb lb]", 3: "[after-3 lb lb]"} {
		if got := fmt.Sprint(pullTags(shard)); got != want {
			t.Errorf("shard %d holds %s, want %s", shard, got, want)
		}
	}
	if begin, _ := c.GetCursor("proj", "two", 0, "begin"); begin != begin0 {
		t.Fatalf("readonly shard's begin cursor moved")
	}
	// Cursor calls work on a readonly shard as before.
	if at, err := c.GetCursorTime("proj", "two", 0, begin0); err != nil || at.IsZero() {
		t.Fatalf("GetCursorTime on a readonly shard: %v, %v", at, err)
	}
	if cur, err := c.GetCursor("proj", "two", 0, strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)); err != nil || cur != end0 {
		t.Fatalf("GetCursor by time on a readonly shard: %s, %v; want %s", cur, err, end0)
	}
}

// TestWritesRacingSplitsLandExactlyOnce writes through the SDK from several
// goroutines, keyed and load-balanced, while shards are split and merged.
// Every log must be in exactly one shard, inside that shard's key range, and
// never in a shard sealed before its write began.
func TestWritesRacingSplitsLandExactlyOnce(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	// One call first: sls.Client fills its zero timeouts on its first
	// logstore call, which races when that call is made by several goroutines.
	if _, err := c.ListShards("proj", "four"); err != nil {
		t.Fatal(err)
	}
	const writers, minGroupsPerWriter, logsPerGroup = 4, 20, 5

	var reshards atomic.Int32 // completed split/merge operations
	var stop atomic.Bool      // set once every operation is done
	groupsWritten := make([]int, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for g := 0; !stop.Load() || g < minGroupsPerWriter; g++ {
				gen := strconv.Itoa(int(reshards.Load()))
				var key *string
				if g%3 != 0 {
					k := fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
					key = &k
				}
				lg := &sls.LogGroup{}
				for i := range logsPerGroup {
					kv := []string{"seq", fmt.Sprintf("%d-%d-%d", w, g, i), "gen", gen}
					if key != nil {
						kv = append(kv, "key", *key)
					}
					lg.Logs = append(lg.Logs, newLog(time.Now(), kv...))
				}
				if err := c.PostLogStoreLogs("proj", "four", lg, key); err != nil {
					errs <- err
					return
				}
				groupsWritten[w]++
			}
		})
	}
	// Split and merge while the writers run; sealedBy[shard] is the
	// operation (1-based) that sealed it.
	sealedBy := map[int]int{}
	sealedEnd := map[int]string{} // end cursor right after sealing; it must never move
	ops := []struct {
		do     func() error
		sealed []int
	}{
		{func() error { return srv.SplitShard("proj", "four", 0, key20) }, []int{0}},   // 4 [00,20), 5 [20,40)
		{func() error { return srv.SplitShard("proj", "four", 2, "") }, []int{2}},      // 6 [80,a0), 7 [a0,c0)
		{func() error { return srv.MergeShards("proj", "four", 5) }, []int{5, 1}},      // 8 [20,80)
		{func() error { return srv.MergeShards("proj", "four", 7) }, []int{7, 3}},      // 9 [a0,ff)
		{func() error { return srv.SplitShard("proj", "four", 8, key60) }, []int{8}},   // 10 [20,60), 11 [60,80)
		{func() error { return srv.MergeShards("proj", "four", 4) }, []int{4, 10}},     // 12 [00,60)
		{func() error { return srv.SplitShard("proj", "four", 9, keyC0) }, []int{9}},   // 13 [a0,c0), 14 [c0,ff)
		{func() error { return srv.MergeShards("proj", "four", 12) }, []int{12, 11}},   // 15 [00,80)
		{func() error { return srv.SplitShard("proj", "four", 15, key40) }, []int{15}}, // 16 [00,40), 17 [40,80)
	}
	var err error
	for i, op := range ops {
		time.Sleep(40 * time.Millisecond)
		if err := op.do(); err != nil {
			t.Fatalf("operation %d: %v", i+1, err)
		}
		for _, id := range op.sealed {
			sealedBy[id] = i + 1
			if sealedEnd[id], err = c.GetCursor("proj", "four", id, "end"); err != nil {
				t.Fatal(err)
			}
		}
		reshards.Store(int32(i + 1))
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("write: %v", err)
	}

	shards, err := c.ListShards("proj", "four")
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 18 {
		t.Fatalf("ListShards lists %d shards, want 18: %v", len(shards), shardLines(shards))
	}
	seen := map[string]int{}
	for _, sh := range shards {
		if (sh.Status == "readonly") != (sealedBy[sh.ShardID] > 0) {
			t.Errorf("shard %d status %s", sh.ShardID, sh.Status)
		}
		cursor, _ := c.GetCursor("proj", "four", sh.ShardID, "begin")
		end, _ := c.GetCursor("proj", "four", sh.ShardID, "end")
		if sealed, ok := sealedEnd[sh.ShardID]; ok && end != sealed {
			t.Errorf("shard %d's end cursor moved after it was sealed: %s, then %s", sh.ShardID, sealed, end)
		}
		for cursor != end {
			gl, next, err := c.PullLogs("proj", "four", sh.ShardID, cursor, "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range gl.LogGroups {
				for _, l := range g.Logs {
					seen[field(l, "seq")]++
					if k := field(l, "key"); k != "" && (k < sh.InclusiveBeginKey || k >= sh.ExclusiveBeginKey) {
						t.Errorf("log with key %s in shard %d [%s,%s)", k, sh.ShardID, sh.InclusiveBeginKey, sh.ExclusiveBeginKey)
					}
					if gen, _ := strconv.Atoi(field(l, "gen")); sealedBy[sh.ShardID] > 0 && gen >= sealedBy[sh.ShardID] {
						t.Errorf("shard %d, sealed by operation %d, holds a log written after it (gen %d)", sh.ShardID, sealedBy[sh.ShardID], gen)
					}
				}
			}
			cursor = next
		}
	}
	total := 0
	for _, n := range groupsWritten {
		total += n * logsPerGroup
	}
	t.Logf("%d logs written by %d writers during %d splits and merges", total, writers, len(ops))
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	if len(seen) != total || dups != 0 {
		t.Fatalf("found %d distinct logs with %d duplicates over all shards, want %d and 0", len(seen), dups, total)
	}
}
