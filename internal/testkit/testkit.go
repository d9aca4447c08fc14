// Package testkit holds helpers shared by the tests of several packages: polling, a safe log sink, SDK logs, an emulator.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// WaitFor polls cond every 50ms until it holds, failing the test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for captured logs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Log builds an SDK log at time at from key, value pairs.
func Log(at time.Time, kv ...string) *sls.Log {
	sec := uint32(at.Unix())
	l := &sls.Log{Time: &sec}
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		l.Contents = append(l.Contents, &sls.LogContent{Key: &k, Value: &v})
	}
	return l
}

// StartEmulator serves world on a free loopback port until the test ends.
func StartEmulator(t testing.TB, world *slsemu.World) *slsemu.Server {
	t.Helper()
	srv, err := slsemu.Start(world)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}
