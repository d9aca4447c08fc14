// The direct text exposition equals what client_golang renders of the same state, compressed or not, filtered or not.
package collector

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// populated is a Metrics with every family present, odd label values included.
func populated(t *testing.T) (*Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	odd := Target{Region: `cn"x`, Project: "p\\1", Logstore: "l\nx"}
	rules := []RuleLabels{{"http_5xx", "status"}, {"oom", "*"}, {`quote"rule`, `a\b`}}
	for shard := range 3 {
		sc := m.ShardCounters(hz, shard, rules)
		sc.Matches[0].Add(uint64(10 * shard))
		sc.Matches[1].Add(1 << 40)
		sc.Logs.Add(1_000_000)
		sc.Bytes.Add(uint64(123456789 * (shard + 1)))
	}
	m.ShardCounters(odd, 7, rules[:1]).Matches[0].Add(2)
	m.SetStateSource(fixedStates{
		{Target: hz, Up: true, ReadwriteShards: 4, GroupTimeout: 60 * time.Second, Held: []ShardState{
			{ID: 0, LagSeconds: 0.25, LastPull: time.UnixMilli(1_800_000_000_123)}, {ID: 9, Readonly: true, LagSeconds: 1e-7}}},
		{Target: odd, Up: false, ReadwriteShards: -1},
	})
	m.RecordLastMatch(hz, rules[0], "status=500 msg=\"a\\b\"\nnext", 1.5, 0)
	m.CountError(hz, "PullLogs", "ReadQuotaExceed")
	return m, reg
}

// parse reads a text exposition into families keyed by name.
func parse(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing:\n%s\n%v", body, err)
	}
	return families
}

// flatten renders families as sorted "name{labels} type value help" lines.
func flatten(families map[string]*dto.MetricFamily) []string {
	var out []string
	for name, mf := range families {
		for _, m := range mf.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			value := 0.0
			switch {
			case m.Counter != nil:
				value = m.Counter.GetValue()
			case m.Gauge != nil:
				value = m.Gauge.GetValue()
			case m.Untyped != nil:
				value = m.Untyped.GetValue()
			}
			out = append(out, name+"{"+strings.Join(labels, ",")+"} "+mf.GetType().String()+" "+
				strings.TrimSpace(strings.Join([]string{model.SampleValue(value).String(), mf.GetHelp()}, " ")))
		}
	}
	sort.Strings(out)
	return out
}

func serve(t *testing.T, h http.Handler, target string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header = header
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
	}
	return rec
}

func TestDirectExpositionEqualsTheRegistry(t *testing.T) {
	m, reg := populated(t)
	h := m.Handler(reg, promhttp.HandlerOpts{})
	prometheusAccept := http.Header{"Accept": {"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"}}

	plain := serve(t, h, "/metrics", prometheusAccept)
	if ct := plain.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
	fast := parse(t, plain.Body.Bytes())

	// The reference: client_golang gathering the same state.
	gathered, err := m.Gatherer(reg).Gather()
	if err != nil {
		t.Fatal(err)
	}
	slow := map[string]*dto.MetricFamily{}
	for _, mf := range gathered {
		slow[mf.GetName()] = mf
	}
	got, want := flatten(fast), flatten(slow)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("direct exposition differs from the registry's\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, name := range []string{"sls_keyword_matches_total", "sls_consumer_readonly_shards_held", "sls_consumer_last_pull_timestamp_seconds", "sls_keyword_last_match_info"} {
		if fast[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}

	// gzip when asked for, and the same content.
	gzHeader := prometheusAccept.Clone()
	gzHeader.Set("Accept-Encoding", "gzip")
	zipped := serve(t, h, "/metrics", gzHeader)
	if zipped.Header().Get("Content-Encoding") != "gzip" {
		t.Fatal("no gzip")
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, plain.Body.Bytes()) {
		t.Fatal("the gzipped page differs")
	}

	// name[] filters both kinds of family.
	filtered := parse(t, serve(t, h, "/metrics?name[]=sls_consumer_logs_total&name[]=sls_consumer_errors_total", prometheusAccept).Body.Bytes())
	if len(filtered) != 2 || filtered["sls_consumer_logs_total"] == nil || filtered["sls_consumer_errors_total"] == nil {
		t.Fatalf("filtered families: %v", keys(filtered))
	}

	// Protobuf goes through promhttp with everything.
	proto := serve(t, h, "/metrics", http.Header{"Accept": {"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"}})
	if !strings.Contains(proto.Header().Get("Content-Type"), "protobuf") {
		t.Fatalf("protobuf content type %q", proto.Header().Get("Content-Type"))
	}
	if n := countDelimited(t, proto.Body.Bytes()); n != len(slow) {
		t.Fatalf("protobuf page has %d families, want %d", n, len(slow))
	}
}

func keys(m map[string]*dto.MetricFamily) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func countDelimited(t *testing.T, body []byte) int {
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeProtoDelim))
	n := 0
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			return n
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"gzip": true, "deflate, gzip;q=1.0, *;q=0.5": true, "gzip;q=0": false, "gzip;q=0.000": false,
		"gzip;q=0.5": true, "identity": false, "": false, "GZIP": true,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Encoding", header)
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: %v, want %v", header, got, want)
		}
	}
}
