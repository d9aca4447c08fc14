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
