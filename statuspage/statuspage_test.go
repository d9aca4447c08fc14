// Tests of the status page: exact figures from known families, escaping, the same values as the collector's /metrics, and the handler's edges.
package statuspage

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/net/html"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
)

// knownExposition is a /metrics page of three logstores in three regions,
// one of them refused (sls_up 0), with a sample that tries to be HTML.
const knownExposition = `
# TYPE sls_up gauge
sls_up{logstore="logstore1",project="project1",region="cn-hangzhou"} 1
sls_up{logstore="logstore2",project="project2",region="cn-beijing"} 0
sls_up{logstore="logstore3_1",project="project3",region="cn-qingdao"} 1
# TYPE sls_consumer_shards_held gauge
sls_consumer_shards_held{logstore="logstore1",project="project1",region="cn-hangzhou"} 2
sls_consumer_shards_held{logstore="logstore2",project="project2",region="cn-beijing"} 0
sls_consumer_shards_held{logstore="logstore3_1",project="project3",region="cn-qingdao"} 2
# TYPE sls_consumer_readonly_shards_held gauge
sls_consumer_readonly_shards_held{logstore="logstore1",project="project1",region="cn-hangzhou"} 1
# TYPE sls_logstore_shards gauge
sls_logstore_shards{logstore="logstore1",project="project1",region="cn-hangzhou"} 4
sls_logstore_shards{logstore="logstore3_1",project="project3",region="cn-qingdao"} 2
# TYPE sls_consumer_group_timeout_seconds gauge
sls_consumer_group_timeout_seconds{logstore="logstore1",project="project1",region="cn-hangzhou"} 8
# TYPE sls_consumer_lag_seconds gauge
sls_consumer_lag_seconds{logstore="logstore1",project="project1",region="cn-hangzhou",shard="0"} 0
sls_consumer_lag_seconds{logstore="logstore1",project="project1",region="cn-hangzhou",shard="3"} 12.5
sls_consumer_lag_seconds{logstore="logstore1",project="project1",region="cn-hangzhou",shard="10"} 0
sls_consumer_lag_seconds{logstore="logstore3_1",project="project3",region="cn-qingdao",shard="0"} 0
sls_consumer_lag_seconds{logstore="logstore3_1",project="project3",region="cn-qingdao",shard="1"} 0
# TYPE sls_consumer_last_pull_timestamp_seconds gauge
sls_consumer_last_pull_timestamp_seconds{logstore="logstore1",project="project1",region="cn-hangzhou",shard="0"} 1.700000097e+09
sls_consumer_last_pull_timestamp_seconds{logstore="logstore1",project="project1",region="cn-hangzhou",shard="3"} 1.70000009025e+09
sls_consumer_last_pull_timestamp_seconds{logstore="logstore3_1",project="project3",region="cn-qingdao",shard="0"} 1.7000000995e+09
sls_consumer_last_pull_timestamp_seconds{logstore="logstore3_1",project="project3",region="cn-qingdao",shard="1"} 1.7000000985e+09
# TYPE sls_consumer_logs_total counter
sls_consumer_logs_total{logstore="logstore1",project="project1",region="cn-hangzhou",shard="0"} 100
sls_consumer_logs_total{logstore="logstore1",project="project1",region="cn-hangzhou",shard="3"} 50
sls_consumer_logs_total{logstore="logstore3_1",project="project3",region="cn-qingdao",shard="0"} 7
sls_consumer_logs_total{logstore="logstore3_1",project="project3",region="cn-qingdao",shard="1"} 0
# TYPE sls_consumer_bytes_total counter
sls_consumer_bytes_total{logstore="logstore1",project="project1",region="cn-hangzhou",shard="0"} 2048
sls_consumer_bytes_total{logstore="logstore1",project="project1",region="cn-hangzhou",shard="3"} 1024
# TYPE sls_keyword_matches_total counter
sls_keyword_matches_total{field="status",logstore="logstore1",project="project1",region="cn-hangzhou",rule="http_5xx",shard="0"} 3
sls_keyword_matches_total{field="status",logstore="logstore1",project="project1",region="cn-hangzhou",rule="http_5xx",shard="3"} 2
sls_keyword_matches_total{field="*",logstore="logstore1",project="project1",region="cn-hangzhou",rule="oom",shard="0"} 0
sls_keyword_matches_total{field="*",logstore="logstore1",project="project1",region="cn-hangzhou",rule="oom",shard="3"} 1
sls_keyword_matches_total{field="status",logstore="logstore3_1",project="project3",region="cn-qingdao",rule="http_5xx",shard="0"} 0
sls_keyword_matches_total{field="status",logstore="logstore3_1",project="project3",region="cn-qingdao",rule="http_5xx",shard="1"} 0
# TYPE sls_keyword_last_match_info gauge
sls_keyword_last_match_info{field="status",logstore="logstore1",project="project1",region="cn-hangzhou",rule="http_5xx",sample="path=/<script>alert(\"x\")</script> status=502"} 1
# TYPE sls_keyword_last_match_timestamp_seconds gauge
sls_keyword_last_match_timestamp_seconds{field="status",logstore="logstore1",project="project1",region="cn-hangzhou",rule="http_5xx"} 1.70000004e+09
# TYPE sls_consumer_errors_total counter
sls_consumer_errors_total{code="ClientError",logstore="logstore1",operation="PullLogs",project="project1",region="cn-hangzhou"} 2
sls_consumer_errors_total{code="Unauthorized",logstore="logstore2",operation="ListShards",project="project2",region="cn-beijing"} 7
sls_consumer_errors_total{code="ClientError",logstore="logstore2",operation="HeartBeat",project="project2",region="cn-beijing"} 1
# TYPE sls_keyword_exporter_config_last_reload_successful gauge
sls_keyword_exporter_config_last_reload_successful 1
# TYPE sls_keyword_exporter_config_last_reload_success_timestamp_seconds gauge
sls_keyword_exporter_config_last_reload_success_timestamp_seconds 1.7e+09
# TYPE sls_keyword_exporter_last_scrape_acknowledged_timestamp_seconds gauge
sls_keyword_exporter_last_scrape_acknowledged_timestamp_seconds 1.700000099e+09
`

var renderTime = time.Unix(1_700_000_100, 0)

func parseExposition(t *testing.T, text string) []*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var families []*dto.MetricFamily
	for _, f := range byName {
		families = append(families, f)
	}
	return families
}

func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func knownPage(t *testing.T, extra string) *Page {
	families := parseExposition(t, knownExposition+extra)
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return families, nil })
	build := BuildInfo{Version: "1.2.3", Revision: "0123456789abcdef0123", Branch: "main", BuildUser: "ci@host", BuildDate: "20260101-10:00:00", GoVersion: "go1.26.8"}
	return New(g, build, Options{Now: func() time.Time { return renderTime }})
}

func TestKnownFamiliesRenderExactFigures(t *testing.T) {
	code, body := get(t, knownPage(t, ""), "/")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`<title>(1 failing) SLS Keyword Exporter</title>`,
		`<a href="/metrics">Metrics</a><a href="/-/healthy">Health</a><a href="/-/ready">Readiness</a>`,
		`data-version="1.2.3" data-revision="0123456789abcdef0123" data-branch="main" data-goversion="go1.26.8">1.2.3 <span class="muted">(revision <span title="0123456789abcdef0123">0123456789ab</span>, branch main, built 20260101-10:00:00 by ci@host)</span>`,
		`<dd data-test="goversion">go1.26.8</dd>`,
		`data-ok="1" data-success-ts="1.7e&#43;09"><span class="ok">last reload successful</span>; last success <span title="2023-11-14 22:13:20 UTC">1 min 40 s ago</span>`,
		`last acknowledged scrape <span title="2023-11-14 22:14:59 UTC">1 s ago</span>`,
		// Tiles: 4 of 6 readwrite shards (logstore2's total is unknown), lag 12.5 s, 10 errors.
		`<b data-test="logstores">3</b>`, `<b data-test="up">2</b>`, `<b data-test="down">1</b>`,
		`<b data-test="shards">4 / 6</b>`, `<b data-test="max-lag">12 s</b>`, `<b data-test="errors">10</b>`,
		`<li><span class="name">cn-beijing / project2 / logstore2</span>: DOWN; errors: HeartBeat ClientError ×1, ListShards Unauthorized ×7</li>`,
		// The refused logstore: DOWN with its codes, most counted first.
		`<td data-test="state" data-up="0"><span class="state down">DOWN</span><span class="codes">Unauthorized, ClientError</span></td>`,
		`<td class="num" data-test="shards" data-held="0" data-total="">0 / ?</td>`,
		`<li data-operation="ListShards" data-code="Unauthorized" data-count="7">ListShards <b>Unauthorized</b> <span class="count">×7</span></li>`,
		// logstore1: held, readonly, per-shard lag in numeric shard order, the shard never pulled.
		`<td data-test="state" data-up="1"><span class="state up">UP</span></td>`,
		`data-held="2" data-total="4">2 / 4<br><span class="muted" data-test="readonly" data-value="1">+1 readonly</span></td>`,
		`<span class="muted" data-test="group-timeout" data-value="8">group timeout 8 s</span>`,
		`<td class="num" data-test="lag" data-value="12.5">12 s</td>`,
		`<details><summary>3 shards held here: lag, last pull, logs and matches of each</summary>`,
		`<tr data-shard="0" data-lag="0" data-last-pull="1.700000097e&#43;09" data-logs="100"><td>0</td><td>0 s</td><td><span title="2023-11-14 22:14:57 UTC">3 s ago</span></td><td>100</td><td>3</td></tr>
<tr data-shard="3" data-lag="12.5" data-last-pull="1.70000009025e&#43;09" data-logs="50"><td>3</td><td>12 s</td><td><span title="2023-11-14 22:14:50 UTC">9.8 s ago</span></td><td>50</td><td>3</td></tr>
<tr data-shard="10" data-lag="0" data-last-pull="" data-logs=""><td>10</td><td>0 s</td><td>never</td><td></td><td></td></tr>`,
		`<td class="num" data-test="last-pull" data-value="1.70000009025e&#43;09"><span title="2023-11-14 22:14:50 UTC">9.8 s ago</span><br><span class="warn">1 never</span></td>`,
		`<td class="num" data-test="logs" data-value="150">150<br><span class="muted">3 KiB</span></td>`,
		// Rules in name order, summed over shards; the sample escaped.
		`<li class="rule" data-rule="http_5xx" data-field="status" data-matches="5" data-sample-ts="1.70000004e&#43;09"><span class="name">http_5xx</span> <span class="field">(status)</span> <span class="count">5</span> matches · last <span title="2023-11-14 22:14:00 UTC">1 min 00 s ago</span>: <code class="sample">path=/&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; status=502</code></li>`,
		`<li class="rule" data-rule="oom" data-field="*" data-matches="1" data-sample-ts=""><span class="name">oom</span> <span class="field">(*)</span> <span class="count">1</span> match <span class="muted">· no match yet</span></li>`,
		`<span class="muted" data-test="rules">No shard held here, so no match series.</span>`,
		`data-held="2" data-total="2">2 / 2</td>`,
		`<td class="num" data-test="last-pull" data-value="1.7000000985e&#43;09"><span title="2023-11-14 22:14:58 UTC">1.5 s ago</span></td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks\n%s", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("an unescaped <script> reached the page")
	}
	// Regions in name order.
	b, h, q := strings.Index(body, `<tbody class="region" data-region="cn-beijing">`), strings.Index(body, `<tbody class="region" data-region="cn-hangzhou">`), strings.Index(body, `<tbody class="region" data-region="cn-qingdao">`)
	if b < 0 || !(b < h && h < q) {
		t.Errorf("regions out of order: %d %d %d", b, h, q)
	}
	if t.Failed() {
		t.Log(body)
	}
}

func TestFailedReloadAndNoScrapeShow(t *testing.T) {
	families := parseExposition(t, `
# TYPE sls_keyword_exporter_config_last_reload_successful gauge
sls_keyword_exporter_config_last_reload_successful 0
# TYPE sls_keyword_exporter_config_last_reload_success_timestamp_seconds gauge
sls_keyword_exporter_config_last_reload_success_timestamp_seconds 1.7e+09
# TYPE sls_keyword_exporter_last_scrape_acknowledged_timestamp_seconds gauge
sls_keyword_exporter_last_scrape_acknowledged_timestamp_seconds 0
`)
	p := New(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return families, nil }), BuildInfo{}, Options{MetricsPath: "/m", Now: func() time.Time { return renderTime }})
	_, body := get(t, p, "/")
	for _, want := range []string{
		`<span class="bad">LAST RELOAD FAILED</span>`,
		`<span class="warn">none acknowledged yet</span>`,
		`<p class="muted" id="no-logstores">`,
		`<a href="/m">Metrics</a>`,
		`<title>SLS Keyword Exporter</title>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestGatherErrorShowsWithWhatWasGathered(t *testing.T) {
	families := parseExposition(t, knownExposition)
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return families, errors.New("collected metric x was collected before with the same name and label values")
	})
	code, body := get(t, New(g, BuildInfo{}, Options{}), "/")
	if code != 200 || !strings.Contains(body, `id="gather-error"`) || !strings.Contains(body, "collected before") ||
		!strings.Contains(body, `data-logstore="logstore1"`) {
		t.Fatalf("%d\n%s", code, body)
	}
}

func TestHandlerEdges(t *testing.T) {
	p := knownPage(t, "")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %s", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
	rec = httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	h := rec.Header()
	if h.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", h)
	}
	for query, want := range map[string]string{
		"?refresh=1":    `<meta http-equiv="refresh" content="5">`,
		"?refresh=30":   `<meta http-equiv="refresh" content="30">`,
		"?refresh=1e9":  `<a href="?refresh=10">`,
		"?refresh=9999": `<meta http-equiv="refresh" content="3600">`,
		"":              `<a href="?refresh=10">10 s</a>`,
	} {
		if _, body := get(t, p, "/"+query); !strings.Contains(body, want) {
			t.Errorf("%q: page lacks %s", query, want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[float64]string{0: "0 s", 0.04: "0 s", 0.25: "0.3 s", 2.5: "2.5 s", 9.96: "10 s", 42.9: "42 s", 185: "3 min 05 s",
		7620: "2 h 07 min", 273600: "3 d 04 h", -3: "-3 s"} {
		if got := formatDuration(in); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{0: "0", 12345678: "12345678", 1.5: "1.5", 1e20: "1e+20"} {
		if got := formatCount(in); got != want {
			t.Errorf("formatCount(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{512: "512 B", 1536: "1.5 KiB", 3 << 20: "3 MiB", 5 << 30: "5 GiB"} {
		if got := formatBytes(in); got != want {
			t.Errorf("formatBytes(%v) = %q, want %q", in, got, want)
		}
	}
	if got := ago(1_700_000_102, renderTime); got != "in 2 s" {
		t.Errorf("a time ahead: %q", got)
	}
}

// fixedStates is a collector.StateSource with set states.
type fixedStates []collector.LogstoreState

func (f fixedStates) LogstoreStates() []collector.LogstoreState { return f }

// TestSameFiguresAsMetrics renders the page from the real collector and
// compares every figure with the collector's own /metrics text.
func TestSameFiguresAsMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := collector.New(reg)
	hz := collector.Target{Region: "cn-hangzhou", Project: "project1", Logstore: "logstore1"}
	bj := collector.Target{Region: "cn-beijing", Project: "project2", Logstore: "logstore2"}
	m.SetStateSource(fixedStates{
		{Target: hz, Up: true, ReadwriteShards: 2, GroupTimeout: 8 * time.Second, Held: []collector.ShardState{
			{ID: 0, LastPull: time.UnixMilli(1_700_000_098_250)}, {ID: 1, LagSeconds: 3.25, LastPull: time.UnixMilli(1_700_000_095_500)}}},
		{Target: bj, Up: false, ReadwriteShards: -1},
	})
	rules := []collector.RuleLabels{{Name: "http_5xx", Field: "status"}, {Name: "oom", Field: "*"}}
	s0, s1 := m.ShardCounters(hz, 0, rules), m.ShardCounters(hz, 1, rules)
	s0.Matches[0].Add(4)
	s1.Matches[0].Add(2)
	s1.Matches[1].Add(1)
	s0.Logs.Add(40)
	s1.Logs.Add(21)
	m.RecordLastMatch(hz, rules[0], "status=503 path=/x & <y>", 1_700_000_050, 0)
	m.CountError(bj, "ListShards", "ProjectNotExist")
	m.CountError(bj, "ListShards", "ProjectNotExist")
	m.CountError(hz, "PullLogs", "ClientError")
	m.SetReloadResult(true, 1_700_000_000)

	metricsText := httptest.NewRecorder()
	m.Handler(reg, promhttp.HandlerOpts{}).ServeHTTP(metricsText, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	metrics := parseExposition(t, metricsText.Body.String())
	_, body := get(t, New(m.Gatherer(reg), CurrentBuild(), Options{Now: func() time.Time { return renderTime }}), "/")

	rows := pageRows(t, body)
	if len(rows) != 2 {
		t.Fatalf("%d logstore rows, want 2", len(rows))
	}
	for _, r := range rows {
		want := expected(metrics, r.key)
		if r.up != want.up || r.held != want.held || r.total != want.total || r.lag != want.lag || r.lastPull != want.lastPull || r.logs != want.logs {
			t.Errorf("%v: page %+v, /metrics %+v", r.key, r.figures, want.figures)
		}
		if !equalMaps(r.matches, want.matches) || !equalMaps(r.samples, want.samples) || !equalMaps(r.errors, want.errors) || !equalMaps(r.shardLag, want.shardLag) {
			t.Errorf("%v: page %+v %v %v %v, /metrics %+v %v %v %v", r.key, r.matches, r.samples, r.errors, r.shardLag, want.matches, want.samples, want.errors, want.shardLag)
		}
	}
	if rows[0].key != [3]string{"cn-beijing", "project2", "logstore2"} || rows[0].state != "DOWN" || rows[1].state != "UP" {
		t.Errorf("rows: %+v", rows)
	}
	if rows[1].samples["http_5xx/status"] != "status=503 path=/x & <y>" {
		t.Errorf("sample text %q", rows[1].samples["http_5xx/status"])
	}
}

// figures are one logstore's values as strings, "" when absent.
type figures struct {
	up, held, total, lag, lastPull, logs string
}

type row struct {
	key   [3]string
	state string
	figures
	matches, samples, errors, shardLag map[string]string
}

// pageRows extracts each logstore row's data- attributes and sample texts.
func pageRows(t *testing.T, page string) []row {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	var cur *row
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			a := map[string]string{}
			for _, at := range n.Attr {
				a[at.Key] = at.Val
			}
			switch {
			case n.Data == "tbody" && strings.Contains(a["class"], "logstore"):
				rows = append(rows, row{key: [3]string{a["data-region"], a["data-project"], a["data-logstore"]},
					matches: map[string]string{}, samples: map[string]string{}, errors: map[string]string{}, shardLag: map[string]string{}})
				cur = &rows[len(rows)-1]
			case cur == nil:
			case a["data-test"] == "state":
				cur.up, cur.state = a["data-up"], strings.TrimSpace(text(n.FirstChild))
			case a["data-test"] == "shards":
				cur.held, cur.total = a["data-held"], a["data-total"]
			case a["data-test"] == "lag":
				cur.lag = a["data-value"]
			case a["data-test"] == "last-pull":
				cur.lastPull = a["data-value"]
			case a["data-test"] == "logs":
				cur.logs = a["data-value"]
			case a["data-shard"] != "":
				cur.shardLag[a["data-shard"]] = a["data-lag"]
			case a["data-operation"] != "":
				cur.errors[a["data-operation"]+"/"+a["data-code"]] = a["data-count"]
			case a["data-rule"] != "":
				key := a["data-rule"] + "/" + a["data-field"]
				cur.matches[key] = a["data-matches"]
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Data == "code" {
						cur.samples[key] = text(c)
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return rows
}

func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(text(c))
	}
	return b.String()
}

// expected computes a logstore's figures from a parsed /metrics page
// independently of the page's code: the values an operator would read there.
func expected(families []*dto.MetricFamily, key [3]string) row {
	r := row{key: key, matches: map[string]string{}, samples: map[string]string{}, errors: map[string]string{}, shardLag: map[string]string{}}
	format := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	var lagMax, pullMin, logs float64
	var haveLag, havePull, haveLogs bool
	sums := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if label(m, "region") != key[0] || label(m, "project") != key[1] || label(m, "logstore") != key[2] {
				continue
			}
			v := sampleValue(m)
			switch f.GetName() {
			case "sls_up":
				r.up = format(v)
			case "sls_consumer_shards_held":
				r.held = format(v)
			case "sls_logstore_shards":
				r.total = format(v)
			case "sls_consumer_lag_seconds":
				r.shardLag[label(m, "shard")] = format(v)
				if !haveLag || v > lagMax {
					lagMax, haveLag = v, true
				}
			case "sls_consumer_last_pull_timestamp_seconds":
				if !havePull || v < pullMin {
					pullMin, havePull = v, true
				}
			case "sls_consumer_logs_total":
				logs, haveLogs = logs+v, true
			case "sls_keyword_matches_total":
				sums[label(m, "rule")+"/"+label(m, "field")] += v
			case "sls_keyword_last_match_info":
				r.samples[label(m, "rule")+"/"+label(m, "field")] = label(m, "sample")
			case "sls_consumer_errors_total":
				r.errors[label(m, "operation")+"/"+label(m, "code")] = format(v)
			}
		}
	}
	for k, v := range sums {
		r.matches[k] = format(v)
	}
	if haveLag {
		r.lag = format(lagMax)
	}
	if havePull {
		r.lastPull = format(pullMin)
	}
	if haveLogs {
		r.logs = format(logs)
	}
	return r
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
