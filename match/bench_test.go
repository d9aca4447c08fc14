// Match-only throughput on generated access logs, plain regexp against RuleSet, as raw protobuf bytes per second.
package match

import (
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// benchLogs is a pull's worth of access logs (100 groups of 100) with each
// log's fields extracted as consumer/batch.go does: contents, then
// __topic__, __source__ and __tag__:<key>; raw is the marshalled
// LogGroupList's size, what throughput is counted in.
var benchLogs = sync.OnceValues(func() ([][]Field, int) {
	gen := slsemu.NewAccessLogGenerator(1)
	list := &sls.LogGroupList{}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 100 {
		list.LogGroups = append(list.LogGroups, gen.Group(100, at, 0.05))
	}
	body, err := list.Marshal()
	if err != nil {
		panic(err)
	}
	var logs [][]Field
	for _, g := range list.LogGroups {
		var meta []Field
		if g.GetTopic() != "" {
			meta = append(meta, Field{Key: []byte("__topic__"), Value: []byte(g.GetTopic())})
		}
		if g.GetSource() != "" {
			meta = append(meta, Field{Key: []byte("__source__"), Value: []byte(g.GetSource())})
		}
		for _, tag := range g.LogTags {
			meta = append(meta, Field{Key: []byte("__tag__:" + tag.GetKey()), Value: []byte(tag.GetValue())})
		}
		for _, l := range g.Logs {
			var fields []Field
			for _, c := range l.Contents {
				fields = append(fields, Field{Key: []byte(c.GetKey()), Value: []byte(c.GetValue())})
			}
			logs = append(logs, append(fields, meta...))
		}
	}
	return logs, len(body)
})

var (
	benchStatus      = Spec{Name: "http_5xx", Field: "status", Regex: `5\d{2}`}
	benchNoCase      = Spec{Name: "error", Field: FullText, Regex: `(?i)error|exception`}
	benchAlternation = Spec{Name: "crash", Field: FullText, Regex: `OutOfMemory|panic: runtime error`}
	benchSlow        = Spec{Name: "slow", Field: "latency_ms", Regex: `^[0-9]{4,}`}
	benchBots        = Spec{Name: "bots", Field: "user_agent", Regex: `(?i)bot|crawler|spider`}
)

// matcher is what both implementations offer.
type matcher interface {
	Match(fields []Field, matched []bool) bool
}

// BenchmarkMatch reports, per rule set, plain regexp.Match on every
// relevant value (impl=regexp) and RuleSet (impl=prefilter); MB/s is raw
// protobuf bytes of the batch matched per second, hits/op the logs matched.
func BenchmarkMatch(b *testing.B) {
	logs, raw := benchLogs()
	sets := []struct {
		name  string
		specs []Spec
	}{
		{"status_5xx", []Spec{benchStatus}},
		{"fulltext_nocase", []Spec{benchNoCase}},
		{"fulltext_alternation", []Spec{benchAlternation}},
		{"five_rules", []Spec{benchStatus, benchNoCase, benchAlternation, benchSlow, benchBots}},
	}
	for _, set := range sets {
		ref, err := newRefMatcher(set.specs)
		if err != nil {
			b.Fatal(err)
		}
		rs, err := Compile(set.specs)
		if err != nil {
			b.Fatal(err)
		}
		want := countHits(ref, logs, len(set.specs))
		if got := countHits(rs, logs, len(set.specs)); got != want {
			b.Fatalf("set %s: RuleSet matched %d logs, regexp %d", set.name, got, want)
		}
		for _, impl := range []struct {
			name string
			m    matcher
		}{{"regexp", ref}, {"prefilter", rs}} {
			b.Run("set="+set.name+"/impl="+impl.name, func(b *testing.B) {
				matched := make([]bool, len(set.specs))
				b.SetBytes(int64(raw))
				b.ReportAllocs()
				for b.Loop() {
					for _, log := range logs {
						if impl.m.Match(log, matched) {
							clear(matched)
						}
					}
				}
				b.ReportMetric(float64(want), "hits/op")
			})
		}
	}
}

// countHits is the number of logs m matches with any rule.
func countHits(m matcher, logs [][]Field, rules int) int {
	matched := make([]bool, rules)
	n := 0
	for _, log := range logs {
		if m.Match(log, matched) {
			n++
			clear(matched)
		}
	}
	return n
}

// redactBenchValues are values a sample shows besides access-log fields:
// structured bodies, headers and messages, with and without secrets.
var redactBenchValues = struct{ clean, secret [][2]string }{
	clean: [][2]string{
		{"body", `{"user":"alice","action":"login","ok":false,"items":[{"id":1,"sku":"A-1"},{"id":2,"sku":"B-2"}],"ts":"2025-01-01T10:15:30Z"}`},
		{"body", `<Response><RequestId>5F1C-22</RequestId><Code>Throttling</Code><Message>Request was denied due to flow control.</Message></Response>`},
		{"headers", "Host: api.example.com\r\nAccept: application/json\r\nUser-Agent: curl/8.5.0\r\nX-Request-Id: 5f1c22"},
		{"msg", `upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.0.1, server: _, request: "GET /api/v1/orders HTTP/1.1"`},
		{"msg", `{:user=>"alice", :action=>"login", :at=>"10:15:30"}`},
	},
	secret: [][2]string{
		{"body", `{"user":"alice","password" : "hunter2","token":{"value":"abc","exp":3600},"n":1}`},
		{"body", `<Credentials><AccessKeyId>LTAI5t</AccessKeyId><AccessKeySecret>s3cr3t</AccessKeySecret></Credentials>`},
		{"headers", "Host: api.example.com\r\nAuthorization :  Bearer eyJhbGciOi.x.y\r\nCookie: sid=abc; theme=dark"},
		{"msg", `params {"user"=>"alice", "password"=>"hunter2"} secretkey=abc&apikeyid=k1`},
		{"msg", "login with password:\n  hunter2\nfrom https://alice:pa55@db.example.com/x"},
	},
}

// BenchmarkRedact reports DefaultRedactor on every field of 1,000 access
// logs (clean_logs), on structured values without secrets (clean_values)
// and with them (secret_values): a value without secrets costs no
// allocation.
func BenchmarkRedact(b *testing.B) {
	logs, _ := benchLogs()
	logs = logs[:1000]
	r := DefaultRedactor()
	b.Run("input=clean_logs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, log := range logs {
				for _, f := range log {
					r.Redact(f.Key, f.Value)
				}
			}
		}
	})
	for _, set := range []struct {
		name   string
		values [][2]string
	}{{"clean_values", redactBenchValues.clean}, {"secret_values", redactBenchValues.secret}} {
		keys, values := make([][]byte, len(set.values)), make([][]byte, len(set.values))
		for i, kv := range set.values {
			keys[i], values[i] = []byte(kv[0]), []byte(kv[1])
		}
		b.Run("input="+set.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i := range values {
					r.Redact(keys[i], values[i])
				}
			}
		})
	}
}
