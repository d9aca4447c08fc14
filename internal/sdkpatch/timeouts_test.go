// Checks that the consumer library still has the layout SetClientTimeouts relies on.
package sdkpatch

import (
	"testing"
	"time"

	"github.com/go-kit/log"

	consumerLibrary "github.com/aliyun/aliyun-log-go-sdk/consumer"
)

func TestSetClientTimeoutsReachesTheLibrarysClient(t *testing.T) {
	// The endpoint is never dialled: InitConsumerWorker's consumer-group call
	// fails fast on an unroutable address and is only logged.
	w := consumerLibrary.InitConsumerWorkerWithCheckpointTracker(consumerLibrary.LogHubConfig{
		Endpoint: "127.0.0.1:1", AccessKeyID: "id", AccessKeySecret: "secret",
		Project: "p", Logstore: "l", ConsumerGroupName: "g", ConsumerName: "c",
		CursorPosition: consumerLibrary.END_CURSOR, Logger: log.NewNopLogger(),
	}, nil)
	if err := SetClientTimeouts(w, 7*time.Second, 11*time.Second); err != nil {
		t.Fatal(err)
	}
	c, err := workerClient(w)
	if err != nil {
		t.Fatal(err)
	}
	if c.RequestTimeOut != 7*time.Second || c.RetryTimeOut != 11*time.Second {
		t.Fatalf("client timeouts are %s and %s, want 7s and 11s", c.RequestTimeOut, c.RetryTimeOut)
	}
	if err := SetClientTimeouts(nil, time.Second, time.Second); err != ErrLayout {
		t.Fatalf("nil worker: got %v, want ErrLayout", err)
	}
}
