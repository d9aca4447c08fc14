// Throughput of the per-batch work: the SDK's decode of a pulled body, and matching and counting it.
package consumer

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/pierrec/lz4/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// pulledBody is what one PullLogs returns for 100 groups of 100 access logs:
// the lz4-compressed LogGroupList and its raw size.
func pulledBody(b *testing.B) (compressed []byte, raw int) {
	gen := slsemu.NewAccessLogGenerator(1)
	list := &sls.LogGroupList{}
	for range 100 {
		list.LogGroups = append(list.LogGroups, gen.Group(100, time.Now(), 0.05))
	}
	body, err := list.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, lz4.CompressBlockBound(len(body)))
	n, err := lz4.CompressBlock(body, out, nil)
	if err != nil {
		b.Fatal(err)
	}
	return out[:n], len(body)
}

// BenchmarkSDKDecode is what the SDK does to every pulled body: lz4, then
// protobuf into *sls.LogGroupList.
func BenchmarkSDKDecode(b *testing.B) {
	compressed, raw := pulledBody(b)
	buf := make([]byte, raw)
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := lz4.UncompressBlock(compressed, buf); err != nil {
			b.Fatal(err)
		}
		if _, err := sls.LogsBytesDecode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatchAndCount is the exporter's own work on a decoded batch with
// three rules (two on one field, one full-text).
func BenchmarkMatchAndCount(b *testing.B) {
	compressed, raw := pulledBody(b)
	buf := make([]byte, raw)
	_, _ = lz4.UncompressBlock(compressed, buf)
	list, err := sls.LogsBytesDecode(buf)
	if err != nil {
		b.Fatal(err)
	}
	set, err := match.Compile([]match.Spec{
		{Name: "http_5xx", Field: "status", Regex: `^5\d{2}$`},
		{Name: "http_503", Field: "status", Regex: `^503$`},
		{Name: "oom", Field: "*", Regex: `OutOfMemory`},
	})
	if err != nil {
		b.Fatal(err)
	}
	labels := []collector.RuleLabels{{Name: "http_5xx", Field: "status"}, {Name: "http_503", Field: "status"}, {Name: "oom", Field: "*"}}
	rules := &atomic.Pointer[compiledRules]{}
	rules.Store(&compiledRules{set: set, labels: labels})
	tg := newTarget(config.Target{Region: "r", Project: "p", Logstore: "l"}, Settings{SampleMaxLength: 200}, rules,
		collector.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	p := newProcessor(tg)
	work := p.work(0)
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	for b.Loop() {
		p.count(work, work.batch.reset(list))
	}
}
