// Throughput of the per-batch work: the SDK's decode of a pulled body, and matching and counting it.
package consumer

import (
	"log/slog"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/pierrec/lz4/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer/logwire"
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

// benchWork is a shard's match loop with three rules (two on one field,
// one full-text), outside any member.
func benchWork(b *testing.B) *shardWork {
	set, err := match.Compile([]match.Spec{
		{Name: "http_5xx", Field: "status", Regex: `^5\d{2}$`},
		{Name: "http_503", Field: "status", Regex: `^503$`},
		{Name: "oom", Field: "*", Regex: `OutOfMemory`},
	})
	if err != nil {
		b.Fatal(err)
	}
	labels := []collector.RuleLabels{{Name: "http_5xx", Field: "status"}, {Name: "http_503", Field: "status"}, {Name: "oom", Field: "*"}}
	mgr := NewManager(slog.New(slog.DiscardHandler), collector.New(prometheus.NewRegistry()), time.Second)
	m := &member{eng: mgr, labels: collector.Target{Region: "r", Project: "p", Logstore: "l"}, settings: Settings{SampleMaxLength: 200}}
	m.rules.Store(&compiledRules{set: set, labels: labels})
	return mgr.newShardWork(m, 0)
}

// BenchmarkMatchAndCount is the exporter's own work on an already decoded
// batch: matching, samples and counters.
func BenchmarkMatchAndCount(b *testing.B) {
	compressed, raw := pulledBody(b)
	buf := make([]byte, raw)
	_, _ = lz4.UncompressBlock(compressed, buf)
	list, err := sls.LogsBytesDecode(buf)
	if err != nil {
		b.Fatal(err)
	}
	work := benchWork(b)
	var batch sdkBatch
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	for b.Loop() {
		if err := work.count(batch.reset(list)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPullToCounts is everything a pull costs after the body arrived,
// both ways: path=sdk decodes with the SDK (what the consumer library did),
// path=raw is the engine's: lz4 into a pooled buffer, walked in place.
func BenchmarkPullToCounts(b *testing.B) {
	compressed, raw := pulledBody(b)
	b.Run("path=sdk", func(b *testing.B) {
		work := benchWork(b)
		var batch sdkBatch
		b.SetBytes(int64(raw))
		b.ReportAllocs()
		for b.Loop() {
			buf := make([]byte, raw)
			if _, err := lz4.UncompressBlock(compressed, buf); err != nil {
				b.Fatal(err)
			}
			list, err := sls.LogsBytesDecode(buf)
			if err != nil {
				b.Fatal(err)
			}
			if err := work.count(batch.reset(list)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("path=raw", func(b *testing.B) {
		work := benchWork(b)
		batch := &rawBatch{walker: &logwire.Walker{}}
		b.SetBytes(int64(raw))
		b.ReportAllocs()
		for b.Loop() {
			body, err := decompress("lz4", compressed, raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := work.count(batch.reset(body)); err != nil {
				b.Fatal(err)
			}
			putBuffer(body)
		}
	})
}
