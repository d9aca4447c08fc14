// Test harness: the exporter's consumers on a fresh registry against an in-process emulator.
package consumer_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/testkit"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

func init() { sls.Logger = log.NewNopLogger() }

const (
	testAK     = "test-ak"
	testSecret = "test-secret-do-not-leak"
)

// seedTopology is the seed scenario: three regions, four logstores of two shards.
var seedTopology = []struct{ region, endpoint, project, logstore string }{
	{"cn-hangzhou", "cn-hangzhou.log.aliyuncs.com", "project1", "logstore1"},
	{"cn-beijing", "cn-beijing.log.aliyuncs.com", "project2", "logstore2"},
	{"cn-qingdao", "cn-qingdao.log.aliyuncs.com", "project3", "logstore3_1"},
	{"cn-qingdao", "cn-qingdao.log.aliyuncs.com", "project3", "logstore3_2"},
}

func seedWorld() *slsemu.World {
	w := &slsemu.World{AccessKeys: []slsemu.AccessKey{{ID: testAK, Secret: testSecret}}}
	for _, s := range seedTopology {
		var region *slsemu.RegionConfig
		for i := range w.Regions {
			if w.Regions[i].Name == s.region {
				region = &w.Regions[i]
			}
		}
		if region == nil {
			w.Regions = append(w.Regions, slsemu.RegionConfig{Name: s.region, Endpoint: s.endpoint})
			region = &w.Regions[len(w.Regions)-1]
		}
		var project *slsemu.ProjectConfig
		for i := range region.Projects {
			if region.Projects[i].Name == s.project {
				project = &region.Projects[i]
			}
		}
		if project == nil {
			region.Projects = append(region.Projects, slsemu.ProjectConfig{Name: s.project})
			project = &region.Projects[len(region.Projects)-1]
		}
		project.Logstores = append(project.Logstores, slsemu.LogstoreConfig{Name: s.logstore, Shards: 2})
	}
	return w
}

// seedConfigYAML configures the seed topology through the emulator as proxy,
// with timings short enough for tests.
func seedConfigYAML(proxyURL, rules string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `consumer_group: test-group
consumer_name: test-consumer
cursor_start: begin
heartbeat_interval: 1s
consumer_timeout: 3s
commit_interval: 300ms
lag_interval: 200ms
sample_max_length: 120
credentials:
  access_key_id: %s
  access_key_secret: %s
regions:
`, testAK, testSecret)
	byRegion := map[string][]string{}
	var order []string
	for _, s := range seedTopology {
		if _, ok := byRegion[s.region]; !ok {
			order = append(order, s.region)
		}
		byRegion[s.region] = append(byRegion[s.region], s.project+"/"+s.logstore)
	}
	for _, r := range order {
		endpoint := ""
		for _, s := range seedTopology {
			if s.region == r {
				endpoint = s.endpoint
			}
		}
		fmt.Fprintf(&b, "  - name: %s\n    endpoint: %s\n    proxy_url: %s\n    projects:\n", r, endpoint, proxyURL)
		projects := map[string][]string{}
		var porder []string
		for _, pl := range byRegion[r] {
			p, l, _ := strings.Cut(pl, "/")
			if _, ok := projects[p]; !ok {
				porder = append(porder, p)
			}
			projects[p] = append(projects[p], l)
		}
		for _, p := range porder {
			fmt.Fprintf(&b, "      - name: %s\n        logstores: [%s]\n", p, strings.Join(projects[p], ", "))
		}
	}
	b.WriteString(rules)
	return b.String()
}

const threeRules = `rules:
  - name: http_5xx
    field: status
    regex: '^5\d{2}$'
  - name: http_503
    field: status
    regex: '^503$'
  - name: oom
    field: "*"
    regex: OutOfMemory
`

func mustParse(t testing.TB, yamlText string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yamlText), "test.yml")
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yamlText)
	}
	return cfg
}

// exporter is the exporter's consumer side on its own registry, scraped
// like Prometheus would (with its scrape header) every 100 ms, so that
// checkpoints advance.
type exporter struct {
	reg     *prometheus.Registry
	metrics *collector.Metrics
	manager *consumer.Manager
	logs    *testkit.SyncBuffer
	handler http.Handler
}

func startExporter(t testing.TB, cfg *config.Config) *exporter {
	t.Helper()
	e := &exporter{reg: prometheus.NewRegistry(), logs: &testkit.SyncBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.metrics = collector.New(e.reg)
	e.manager = consumer.NewManager(logger, e.metrics, 10*time.Second)
	e.metrics.SetStateSource(e.manager)
	e.handler = e.metrics.Acks.Handler(e.metrics.Handler(e.reg, promhttp.HandlerOpts{}))
	stopScraper := make(chan struct{})
	scraperDone := make(chan struct{})
	go func() {
		defer close(scraperDone)
		for {
			select {
			case <-stopScraper:
				return
			case <-time.After(100 * time.Millisecond):
				e.scrape()
			}
		}
	}()
	t.Cleanup(func() { close(stopScraper); <-scraperDone })
	if err := e.manager.Apply(cfg, consumer.SettingsFrom(cfg, "unused")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.manager.Stop)
	return e
}

// scrape serves /metrics to a request carrying Prometheus's scrape header.
func (e *exporter) scrape() {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set(collector.ScrapeTimeoutHeader, "1")
	e.handler.ServeHTTP(httptest.NewRecorder(), req)
}

// series returns every sample of a metric family as "label=value,..." -> value.
func (e *exporter) series(t testing.TB, name string) map[string]float64 {
	t.Helper()
	families, err := e.metrics.Gatherer(e.reg).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			out[labelKey(m)] = metricValue(m)
		}
	}
	return out
}

func labelKey(m *dto.Metric) string {
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// sum adds the samples of name whose labels include every pair in subset.
func (e *exporter) sum(t testing.TB, name string, subset ...string) float64 {
	total := 0.0
	for key, v := range e.series(t, name) {
		if hasLabels(key, subset) {
			total += v
		}
	}
	return total
}

func hasLabels(key string, subset []string) bool {
	labels := "," + key + ","
	for i := 0; i+1 < len(subset); i += 2 {
		if !strings.Contains(labels, ","+subset[i]+"="+subset[i+1]+",") {
			return false
		}
	}
	return true
}

// writer puts logs into a logstore shard through the real SDK.
type writer struct {
	t      testing.TB
	client sls.ClientInterface
}

func newWriter(t testing.TB, srv *slsemu.Server, endpoint string) *writer {
	c := sls.CreateNormalInterface(endpoint, testAK, testSecret, "")
	c.SetHTTPClient(srv.HTTPClient())
	return &writer{t, c}
}

// put writes logs into one shard (chosen by its hash key) as one group.
func (w *writer) put(project, logstore string, shard int, logs ...*sls.Log) {
	w.t.Helper()
	shards, err := w.client.ListShards(project, logstore)
	if err != nil {
		w.t.Fatal(err)
	}
	key := shards[shard].InclusiveBeginKey
	if err := w.client.PostLogStoreLogs(project, logstore, &sls.LogGroup{Logs: logs}, &key); err != nil {
		w.t.Fatal(err)
	}
}

var (
	waitFor       = testkit.WaitFor
	newLog        = testkit.Log
	startEmulator = testkit.StartEmulator
)
