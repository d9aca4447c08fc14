// Creating and deleting logstores while consumers and pulls run: the others are untouched, a deleted one answers 404.
package slsemu_test

import (
	"errors"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// checkpointsAtEnd tells whether every shard of a group is checkpointed at its end cursor.
func checkpointsAtEnd(c sls.ClientInterface, logstore, group string) bool {
	cps, err := c.GetCheckpoint("proj", logstore, group)
	if err != nil || len(cps) == 0 {
		return false
	}
	for _, cp := range cps {
		if end, err := c.GetCursor("proj", logstore, cp.ShardID, "end"); err != nil || cp.CheckPoint != end {
			return false
		}
	}
	return true
}

func TestCreateAndDeleteLogstoresWhileConsumersAndPullsRun(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	putSeqLogs(t, c, "proj", "four", 0, 400, 20)
	putSeqLogs(t, c, "proj", "two", 0, 200, 20)

	gotFour, gotTwo := newDeliveries(), newDeliveries()
	onFour := startWorker(srv, "four", "cg", "worker-four", gotFour)
	onTwo := startWorker(srv, "two", "cg", "worker-two", gotTwo)

	// A plain SDK reader polls "two" until the logstore goes away.
	pullErr := make(chan error, 1)
	stopPulling := make(chan struct{})
	reader := newClient(srv, testHost, testAK, testSecret)
	go func() {
		cursor, err := reader.GetCursor("proj", "two", 0, "begin")
		for err == nil {
			var next string
			if _, next, err = reader.PullLogs("proj", "two", 0, cursor, "", 100); err == nil {
				cursor = next
			}
			select {
			case <-stopPulling:
				pullErr <- nil
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		pullErr <- err
	}()
	defer close(stopPulling)

	waitFor(t, 15*time.Second, "both logstores consumed", func() bool {
		d4, _, _ := gotFour.snapshot()
		d2, _, _ := gotTwo.snapshot()
		return d4 == 400 && d2 == 200
	})
	// Created while the others are consumed: usable at once, by a consumer too.
	if err := c.CreateLogStore("proj", "fresh", 1, 2, false, 0); err != nil {
		t.Fatal(err)
	}
	putSeqLogs(t, c, "proj", "fresh", 0, 100, 10)
	gotFresh := newDeliveries()
	onFresh := startWorker(srv, "fresh", "cg", "worker-fresh", gotFresh)

	// Deleted while its consumer and the reader run, once the consumer has
	// saved everything (a checkpoint flush to a deleted logstore would be
	// retried forever by the library and hang StopAndWait).
	waitFor(t, 10*time.Second, `"two" checkpointed at its end`, func() bool { return checkpointsAtEnd(c, "two", "cg") })
	if err := c.DeleteLogStore("proj", "two"); err != nil {
		t.Fatal(err)
	}
	putSeqLogs(t, c, "proj", "four", 400, 800, 20)

	select {
	case err := <-pullErr:
		wantSLSError(t, "the reader's pull after the delete", err, 404, "LogStoreNotExist")
	case <-time.After(10 * time.Second):
		t.Fatal("the reader's pulls kept succeeding after the delete")
	}
	_, err := c.ListShards("proj", "two")
	wantSLSError(t, "ListShards", err, 404, "LogStoreNotExist")
	_, err = c.GetCursor("proj", "two", 0, "end")
	wantSLSError(t, "GetCursor", err, 404, "LogStoreNotExist")
	_, _, err = c.PullLogs("proj", "two", 0, "MTAw", "", 10)
	wantSLSError(t, "PullLogs", err, 404, "LogStoreNotExist")
	_, err = c.HeartBeat("proj", "two", "cg", "worker-two", []int{})
	wantSLSError(t, "HeartBeat", err, 404, "LogStoreNotExist")
	_, err = c.GetCheckpoint("proj", "two", "cg")
	wantSLSError(t, "GetCheckpoint", err, 404, "LogStoreNotExist")
	err = c.PostLogStoreLogs("proj", "two", &sls.LogGroup{Logs: []*sls.Log{newLog(time.Now(), "k", "v")}}, nil)
	wantSLSError(t, "PostLogStoreLogs", err, 404, "LogStoreNotExist")
	err = c.DeleteLogStore("proj", "two")
	wantSLSError(t, "a second delete", err, 404, "LogStoreNotExist")

	waitFor(t, 15*time.Second, `all of "four" and "fresh"`, func() bool {
		d4, _, _ := gotFour.snapshot()
		df, _, _ := gotFresh.snapshot()
		return d4 == 800 && df == 100
	})
	stopped := make(chan struct{})
	go func() { onTwo.StopAndWait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("the consumer of the deleted logstore did not stop")
	}
	onFour.StopAndWait()
	onFresh.StopAndWait()
	for name, d := range map[string]*deliveries{"four": gotFour, "two": gotTwo, "fresh": gotFresh} {
		want := map[string]int{"four": 800, "two": 200, "fresh": 100}[name]
		if distinct, total, dup := d.snapshot(); distinct != want || total != want || dup != 0 {
			t.Errorf("%s: %d distinct, %d total, %d duplicates; want %d, %d, 0", name, distinct, total, dup, want, want)
		}
	}

	// A logstore created again under the deleted name starts empty, without its groups.
	if err := c.CreateLogStore("proj", "two", 1, 2, false, 0); err != nil {
		t.Fatal(err)
	}
	if groups, err := c.ListConsumerGroup("proj", "two"); err != nil || len(groups) != 0 {
		t.Fatalf("consumer groups of the re-created logstore: %v, %v", groups, err)
	}
	begin, _ := c.GetCursor("proj", "two", 0, "begin")
	if end, _ := c.GetCursor("proj", "two", 0, "end"); begin != end {
		t.Fatal("the re-created logstore is not empty")
	}
	var slsErr *sls.Error
	if _, err := c.GetCheckpoint("proj", "two", "cg"); !errors.As(err, &slsErr) || slsErr.Code != "ConsumerGroupNotExist" {
		t.Fatalf("GetCheckpoint of the old group: %v", err)
	}
}
