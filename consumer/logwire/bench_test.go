// Throughput of a walk against the SDK's decode of the same raw PullLogs body.
package logwire

import (
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// benchBody is the uncompressed body of a pull of 100 groups of 100 access
// logs, as the consumer's process benchmark builds it.
func benchBody(b *testing.B) []byte {
	gen := slsemu.NewAccessLogGenerator(1)
	list := &sls.LogGroupList{}
	for range 100 {
		list.LogGroups = append(list.LogGroups, gen.Group(100, time.Unix(1_700_000_000, 0), 0.05))
	}
	body, err := list.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkWalk walks the body with a reused Walker; MB/s is of raw
// protobuf bytes, and allocs/op must be 0.
func BenchmarkWalk(b *testing.B) {
	body := benchBody(b)
	var w Walker
	var n int
	fn := func(_ LogRef, fields []match.Field, _ float64) { n += len(fields) }
	if _, err := w.Walk(body, fn); err != nil { // grow the buffers once
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Walk(body, fn); err != nil {
			b.Fatal(err)
		}
	}
	if n == 0 {
		b.Fatal("no fields")
	}
}

// BenchmarkSDKDecode is sls.LogsBytesDecode on the same bytes: what the
// walker replaces (before any flattening).
func BenchmarkSDKDecode(b *testing.B) {
	body := benchBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sls.LogsBytesDecode(body); err != nil {
			b.Fatal(err)
		}
	}
}
