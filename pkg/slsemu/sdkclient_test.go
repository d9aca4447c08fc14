// Workarounds for two data races inside the consumer library (v0.1.124) that go test -race would report.
package slsemu_test

import (
	"errors"
	"io"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	consumerLibrary "github.com/aliyun/aliyun-log-go-sdk/consumer"
)

// errWorkerLayout means the consumer library no longer has the shape of
// aliyun-log-go-sdk v0.1.124 that setWorkerClientTimeouts digs through.
var errWorkerLayout = errors.New("unexpected aliyun-log-go-sdk consumer layout")

// setWorkerClientTimeouts sets the request and retry timeouts of the client
// inside a consumer worker; call it between InitConsumerWorker* and Start.
// sls.Client writes both fields under a read lock on its first logstore call
// when they are zero, so the shard workers' first concurrent pulls race
// (go test -race reports it); once they are set those calls only read them.
// The package's tests keep this to themselves rather than share a helper
// with the exporter, whose consumer may change how it builds its client.
func setWorkerClientTimeouts(w *consumerLibrary.ConsumerWorker, request, retry time.Duration) error {
	if w == nil {
		return errWorkerLayout
	}
	consumerClient := reflect.ValueOf(w).Elem().FieldByName("client")
	if !consumerClient.IsValid() || consumerClient.Kind() != reflect.Pointer || consumerClient.IsNil() {
		return errWorkerLayout
	}
	field := consumerClient.Elem().FieldByName("client")
	if !field.IsValid() || field.Kind() != reflect.Interface || !field.CanAddr() {
		return errWorkerLayout
	}
	// An unexported field cannot be read through reflect; view its memory as a
	// value of the same type instead.
	c, ok := reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem().Interface().(*sls.Client)
	if !ok || c == nil {
		return errWorkerLayout
	}
	c.RequestTimeOut = request
	c.RetryTimeOut = retry
	return nil
}

// heartbeatWatch works around the library's other race: heartBeatRun formats
// heartShards for a log line without its lock, right after the HeartBeat call
// returns, while the worker loop may remove a released shard from it
// (heart_beat.go:91 against removeHeartShard). The removal comes at most one
// worker-loop tick (DataFetchIntervalInMs) after the shard's worker stops,
// and the worker stops right after Processor.Shutdown returns; so Shutdown
// waits for this consumer's next heartbeat answer to be read, then returns,
// and the removal lands well before the following heartbeat a second later.
// Splits, merges and "over" shards release shards often enough for the race
// to fail a run every few tries without this.
type heartbeatWatch struct {
	next     http.RoundTripper
	stopping atomic.Bool // set by StopAndWait: the heartbeats stopped and releases no longer touch heartShards

	mu       sync.Mutex
	answered chan struct{} // closed, and replaced, once each heartbeat answer has been read
}

func newHeartbeatWatch(next http.RoundTripper) *heartbeatWatch {
	return &heartbeatWatch{next: next, answered: make(chan struct{})}
}

func (h *heartbeatWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.next.RoundTrip(req)
	if err == nil && req.URL.Query().Get("type") == "heartbeat" {
		// The SDK closes the body after decoding it, just before returning to heartBeatRun.
		resp.Body = &closeSignal{ReadCloser: resp.Body, onClose: h.heartbeatAnswered}
	}
	return resp, err
}

func (h *heartbeatWatch) heartbeatAnswered() {
	h.mu.Lock()
	close(h.answered)
	h.answered = make(chan struct{})
	h.mu.Unlock()
}

// awaitQuietMoment returns shortly after the next heartbeat answer was read,
// or at once while the worker stops.
func (h *heartbeatWatch) awaitQuietMoment() {
	if h.stopping.Load() {
		return
	}
	h.mu.Lock()
	answered := h.answered
	h.mu.Unlock()
	select {
	case <-answered:
		// heartBeatRun's log line follows at once; the next heartbeat starts
		// a second after this one did. Land the removal between the two,
		// with room on both sides for a loaded machine's scheduling delays.
		time.Sleep(300 * time.Millisecond)
	case <-time.After(3 * time.Second): // heartbeats failing: nothing to race with
	}
}

type closeSignal struct {
	io.ReadCloser
	once    sync.Once
	onClose func()
}

func (c *closeSignal) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.onClose)
	return err
}
