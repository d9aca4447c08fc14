// Benchmarks of PullLogs serving, reported as raw (uncompressed) MB per CPU-second.
package slsemu

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// seedAccessLogs fills shard 0 of proj/store with groups of access logs.
func seedAccessLogs(b *testing.B, srv *Server, groups, logsPerGroup int) {
	gen := NewAccessLogGenerator(42)
	for range groups {
		if err := srv.PutLogGroup("proj", "store", 0, gen.Group(logsPerGroup, time.Now(), 0.01)); err != nil {
			b.Fatal(err)
		}
	}
}

// discardWriter is a ResponseWriter that only counts what it is sent.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) WriteHeader(status int)      { d.status = status }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkPullLogsHandler measures the emulator's own serving cost: signature
// check, routing and splicing, without the network.
func BenchmarkPullLogsHandler(b *testing.B) {
	srv := fuzzServer(b)
	seedAccessLogs(b, srv, 400, 500)
	cursors := newCursorCycle(srv)
	w := &discardWriter{header: http.Header{}}
	var raw, wire int64
	b.ResetTimer()
	cpuStart := cpuTime()
	for b.Loop() {
		req := pullRequest(b, cursors.next())
		clear(w.header)
		w.n = 0
		srv.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
		cursors.advance(w.header.Get("X-Log-Cursor"))
		size, _ := strconv.ParseInt(w.header.Get("X-Log-Bodyrawsize"), 10, 64)
		raw += size
		wire += int64(w.n)
	}
	reportThroughput(b, raw, wire, cpuTime()-cpuStart)
}

// BenchmarkPullLogsHTTP measures serving over loopback HTTP, client reads included.
func BenchmarkPullLogsHTTP(b *testing.B) {
	srv := fuzzServer(b)
	if err := srv.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	seedAccessLogs(b, srv, 400, 500)
	cursors := newCursorCycle(srv)
	client := srv.HTTPClient()
	buf := make([]byte, 1<<20)
	var raw, wire int64
	b.ResetTimer()
	cpuStart := cpuTime()
	for b.Loop() {
		resp, err := client.Do(pullRequest(b, cursors.next()))
		if err != nil {
			b.Fatal(err)
		}
		for {
			n, err := resp.Body.Read(buf)
			wire += int64(n)
			if err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		resp.Body.Close()
		cursors.advance(resp.Header.Get("X-Log-Cursor"))
		size, _ := strconv.ParseInt(resp.Header.Get("X-Log-Bodyrawsize"), 10, 64)
		raw += size
	}
	reportThroughput(b, raw, wire, cpuTime()-cpuStart)
}

// cursorCycle walks shard 0 from begin to end and starts over, so every
// pull serves different groups, as a consumer catching up would.
type cursorCycle struct{ begin, end, cursor string }

func newCursorCycle(srv *Server) *cursorCycle {
	sh := srv.projects["proj"].logstores["store"].shards[0]
	begin, _ := sh.cursorAt("begin")
	end, _ := sh.cursorAt("end")
	return &cursorCycle{begin, end, begin}
}

func (c *cursorCycle) next() string { return c.cursor }

func (c *cursorCycle) advance(next string) {
	c.cursor = next
	if next == c.end {
		c.cursor = c.begin
	}
}

func pullRequest(b *testing.B, cursor string) *http.Request {
	return signedRequest(b, http.MethodGet, "/logstores/store/shards/0?count=1000&cursor="+url.QueryEscape(cursor)+"&type=logs",
		map[string]string{"x-log-bodyrawsize": "0", "Accept-Encoding": "lz4"}, nil)
}

func reportThroughput(b *testing.B, raw, wire int64, cpu time.Duration) {
	if cpu <= 0 {
		return
	}
	b.ReportMetric(float64(raw)/1e6/cpu.Seconds(), "rawMB/cpu-s")
	b.ReportMetric(float64(raw)/float64(max(wire, 1)), "compression-ratio")
	b.ReportMetric(float64(raw)/float64(b.N)/1e6, "rawMB/op")
}
