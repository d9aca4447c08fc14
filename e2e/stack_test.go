// The full alerting stack on loopback: emulator, exporter, Debian's Prometheus and Alertmanager, and a webhook.
package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// webhookAlert is one alert of an Alertmanager webhook notification.
type webhookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// webhook records notifications with their arrival time.
type webhook struct {
	srv      *httptest.Server
	mu       sync.Mutex
	received []received
}

type received struct {
	at    time.Time
	alert webhookAlert
}

func newWebhook(t testing.TB) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		at := time.Now()
		var msg struct {
			Alerts []webhookAlert `json:"alerts"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Errorf("webhook body: %v: %s", err, body)
		}
		w.mu.Lock()
		for _, a := range msg.Alerts {
			w.received = append(w.received, received{at, a})
		}
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// find returns the first firing alert matching every label given, and when it arrived.
func (w *webhook) find(labels map[string]string) (webhookAlert, time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.received {
		ok := r.alert.Status == "firing"
		for k, v := range labels {
			ok = ok && r.alert.Labels[k] == v
		}
		if ok {
			return r.alert, r.at, true
		}
	}
	return webhookAlert{}, time.Time{}, false
}

// stack is everything a log travels through on its way to a notification.
type stack struct {
	emulator   string // base URL
	exporter   string // base URL
	prometheus string // base URL
	webhook    *webhook
}

// repoFile returns a path in the repository (tests run in e2e/).
func repoFile(name string) string {
	abs, _ := filepath.Abs(filepath.Join("..", name))
	return abs
}

// rewriteYAML loads a shipped example, lets edit change it, and writes it to a temp file.
func rewriteYAML(t testing.TB, example string, edit func(doc map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile(repoFile(example))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, filepath.Base(example), string(out))
}

// startStack runs emulator, exporter (with exporterExtra appended to its
// config), Alertmanager and Prometheus, configured from examples/.
func startStack(t testing.TB, exporterYAML func(emulatorURL string) string) *stack {
	t.Helper()
	for _, bin := range []string{"prometheus", "prometheus-alertmanager"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (Debian packages prometheus and prometheus-alertmanager; .ci/run installs them)", bin)
		}
	}
	s := &stack{webhook: newWebhook(t)}
	s.emulator = startEmulator(t, seedWorldYAML)

	exporterAddr := freeAddr(t)
	start(t, nil, "sls_keyword_exporter", "--config.file="+writeFile(t, "exporter.yml", exporterYAML(s.emulator)),
		"--web.listen-address="+exporterAddr)
	s.exporter = "http://" + exporterAddr
	waitHTTP(t, s.exporter+"/-/ready", 15*time.Second)

	amAddr := freeAddr(t)
	amConfig := rewriteYAML(t, "examples/alertmanager.yml", func(doc map[string]any) {
		for _, r := range doc["receivers"].([]any) {
			rec := r.(map[string]any)
			if hooks, ok := rec["webhook_configs"].([]any); ok {
				hooks[0].(map[string]any)["url"] = s.webhook.srv.URL + "/alerts"
			}
		}
	})
	start(t, nil, "/usr/bin/prometheus-alertmanager", "--config.file="+amConfig, "--web.listen-address="+amAddr,
		"--storage.path="+t.TempDir(), "--cluster.listen-address=")
	waitHTTP(t, "http://"+amAddr+"/-/ready", 20*time.Second)

	promAddr := freeAddr(t)
	promConfig := rewriteYAML(t, "examples/prometheus.yml", func(doc map[string]any) {
		doc["rule_files"] = []any{repoFile("alerts.rules.yml")}
		am := doc["alerting"].(map[string]any)["alertmanagers"].([]any)[0].(map[string]any)
		am["static_configs"].([]any)[0].(map[string]any)["targets"] = []any{amAddr}
		job := doc["scrape_configs"].([]any)[0].(map[string]any)
		job["static_configs"].([]any)[0].(map[string]any)["targets"] = []any{exporterAddr}
	})
	start(t, nil, "/usr/bin/prometheus", "--config.file="+promConfig, "--web.listen-address="+promAddr,
		"--storage.tsdb.path="+t.TempDir(), "--web.enable-lifecycle")
	s.prometheus = "http://" + promAddr
	waitHTTP(t, s.prometheus+"/-/ready", 30*time.Second)
	waitFor(t, 20*time.Second, "Prometheus to scrape the exporter", func() bool {
		res, err := s.query(`up{job="sls_keyword_exporter"} == 1`)
		return err == nil && len(res) == 1
	})
	return s
}

// promSample is one element of an instant query's vector result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant PromQL query against the stack's Prometheus.
func (s *stack) query(expr string) ([]promSample, error) {
	resp, err := http.Get(s.prometheus + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, out.Error)
	}
	if out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %s", expr, out.Data.ResultType)
	}
	var samples []promSample
	err = json.Unmarshal(out.Data.Result, &samples)
	return samples, err
}

// stackExporterConfig reads the seed topology with the demo rules and a
// 1s canary; extraRules is appended under rules:.
func stackExporterConfig(extraRules string) func(string) string {
	return func(emu string) string {
		var regions strings.Builder
		seen := map[string]bool{}
		for _, s := range seedLogstores {
			if seen[s.region] {
				continue
			}
			seen[s.region] = true
			fmt.Fprintf(&regions, "  - endpoint: %s\n    proxy_url: %s\n    projects:\n", s.endpoint, emu)
			for _, l := range seedLogstores {
				if l.region == s.region {
					fmt.Fprintf(&regions, "      - name: %s\n        logstores: [%s]\n", l.project, l.logstore)
				}
			}
		}
		return fmt.Sprintf(`consumer_group: stack-cg
cursor_start: end
heartbeat_interval: 1s
consumer_timeout: 3s
lag_interval: 500ms
credentials:
  access_key_id: %s
  access_key_secret: %s
canary:
  enabled: true
  interval: 1s
regions:
%srules:
  - name: http_5xx
    field: status
    regex: '^5\d{2}$'
%s`, testAK, testSecret, regions.String(), extraRules)
	}
}
