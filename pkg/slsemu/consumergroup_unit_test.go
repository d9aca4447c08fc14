// The assignment protocol step by step: balance, handover only after release, expiry, and the double-hold check.
package slsemu

import (
	"fmt"
	"testing"
	"time"
)

func TestHandoverWaitsForTheOldHolderToStopReporting(t *testing.T) {
	gs := newGroupSet([]int{0, 1, 2, 3})
	if err := gs.create("cg", 10, false); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0).UTC()
	beat := func(consumer string, reported ...int) string {
		t.Helper()
		got, err := gs.heartbeat("cg", consumer, reported, now)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	steps := []struct {
		consumer string
		reported []int
		want     string
	}{
		{"a", nil, "[0 1 2 3]"},               // alone: everything
		{"a", []int{0, 1, 2, 3}, "[0 1 2 3]"}, // steady
		{"b", nil, "[]"},                      // joins: two shards go into transfer, none free yet
		{"a", []int{0, 1, 2, 3}, "[2 3]"},     // a is told to give up 0 and 1
		{"b", nil, "[]"},                      // a still reports them: nothing for b
		{"a", []int{2, 3}, "[2 3]"},           // a released them
		{"b", nil, "[0 1]"},                   // now b gets them
		{"b", []int{0, 1}, "[0 1]"},
	}
	for i, s := range steps {
		if got := beat(s.consumer, s.reported...); got != s.want {
			t.Fatalf("step %d: %s reporting %v got %s, want %s", i, s.consumer, s.reported, got, s.want)
		}
	}
	if v := gs.violationLog(); len(v) != 0 {
		t.Fatalf("violations in a clean handover: %v", v)
	}

	// a goes silent past the 10s timeout while b keeps beating: b takes everything.
	now = now.Add(6 * time.Second)
	if got := beat("b", 0, 1); got != "[0 1]" {
		t.Fatalf("a not yet expired: b got %s, want [0 1]", got)
	}
	now = now.Add(6 * time.Second)
	if got := beat("b", 0, 1); got != "[0 1 2 3]" {
		t.Fatalf("after a expired b got %s, want [0 1 2 3]", got)
	}
	// An expired consumer reporting shards must re-register first.
	if _, err := gs.heartbeat("cg", "a", []int{2, 3}, now); err == nil || err.Code != "NotExistConsumerWithBody" {
		t.Fatalf("expired consumer with a body: %v", err)
	}
}

func TestDoubleHoldIsRecorded(t *testing.T) {
	gs := newGroupSet([]int{0, 1})
	_ = gs.create("cg", 10, false)
	now := time.Unix(1000, 0).UTC()
	_, _ = gs.heartbeat("cg", "a", nil, now)      // a gets 0 and 1
	_, _ = gs.heartbeat("cg", "b", nil, now)      // b joins, shard 0 goes into transfer
	_, _ = gs.heartbeat("cg", "b", []int{0}, now) // b claims 0 while a still holds it
	if v := gs.violationLog(); len(v) != 1 || v[0] != "1970-01-01T00:16:40Z: group cg shard 0 held by a, b" {
		t.Fatalf("violations %q, want one for shard 0 held by a and b", v)
	}
}

func TestReadonlyShardIsAssignedUntilItsEndCheckpointThenOver(t *testing.T) {
	gs := newGroupSet([]int{0, 1})
	if err := gs.create("cg", 10, false); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0).UTC()
	beat := func(consumer string, reported ...int) string {
		t.Helper()
		got, err := gs.heartbeat("cg", consumer, reported, now)
		if err != nil {
			t.Fatalf("%s reporting %v: %v", consumer, reported, err)
		}
		return fmt.Sprint(got)
	}
	checkpoint := func(shard int, cursor int64) {
		t.Helper()
		if err := gs.updateCheckpoint("cg", "a", shard, encodeCursor(cursor), true, now); err != nil {
			t.Fatal(err)
		}
	}
	if got := beat("a"); got != "[0 1]" {
		t.Fatalf("a alone got %s, want [0 1]", got)
	}
	// Shard 0 splits into 2 and 3; its end cursor is 100.
	gs.reshard(map[int]int64{0: 100}, []int{2, 3})
	if got := beat("a", 0, 1); got != "[0 1 2 3]" {
		t.Fatalf("after the split a got %s, want the readonly parent and both children", got)
	}
	checkpoint(0, 99) // not yet at the end: still assigned
	if got := beat("a", 0, 1, 2, 3); got != "[0 1 2 3]" {
		t.Fatalf("checkpoint short of the end: a got %s, want [0 1 2 3]", got)
	}
	checkpoint(0, 100)
	// a still reports 0 until its worker stops: no error, but no 0 in the ack.
	if got := beat("a", 0, 1, 2, 3); got != "[1 2 3]" {
		t.Fatalf("shard 0 at its end: a got %s, want [1 2 3]", got)
	}
	// A newcomer shares the three live shards and never gets 0.
	if got := beat("b"); got != "[]" {
		t.Fatalf("b joining got %s, want [] while a hands over", got)
	}
	if got := beat("a", 0, 1, 2, 3); got != "[2 3]" {
		t.Fatalf("a asked to give up one shard got %s, want [2 3]", got)
	}
	if got := beat("a", 2, 3); got != "[2 3]" {
		t.Fatalf("a after releasing got %s, want [2 3]", got)
	}
	if got := beat("b"); got != "[1]" {
		t.Fatalf("b got %s, want [1]", got)
	}
	st, _ := gs.state("cg", now)
	if fmt.Sprint(st.Over) != "[0]" || st.Owner[0] != "" || len(st.Checkpoints) != 4 {
		t.Fatalf("state: over %v, owner of 0 %q, %d checkpoints; want [0], none, 4", st.Over, st.Owner[0], len(st.Checkpoints))
	}
	// A checkpoint reset off the end makes the shard assignable again.
	checkpoint(0, 50)
	if got := beat("b", 1); got != "[0 1]" {
		t.Fatalf("after the reset b got %s, want [0 1]", got)
	}
	if v := gs.violationLog(); len(v) != 0 {
		t.Fatalf("violations: %v", v)
	}
}

func TestGroupsCreatedAfterAReshardListEveryShard(t *testing.T) {
	gs := newGroupSet([]int{0, 1})
	gs.reshard(map[int]int64{0: 7, 1: 9}, []int{2})
	if err := gs.create("late", 10, false); err != nil {
		t.Fatal(err)
	}
	cps, _ := gs.checkpoints("late", -1)
	if len(cps) != 3 || cps[0].Shard != 0 || cps[2].Shard != 2 || cps[0].Checkpoint != "" {
		t.Fatalf("checkpoints %+v, want shards 0, 1, 2 without checkpoints", cps)
	}
	// Readonly shards without a checkpoint are not over: a new group reads them.
	got, _ := gs.heartbeat("late", "a", nil, time.Unix(1000, 0))
	if fmt.Sprint(got) != "[0 1 2]" {
		t.Fatalf("a got %v, want [0 1 2]", got)
	}
}
