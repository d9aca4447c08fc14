// Package e2e runs the real binaries (slsemu, sls_keyword_exporter, Prometheus, Alertmanager) on loopback.
package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/go-kit/log"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/testkit"
)

// binDir holds the binaries built once for the package.
var binDir string

func TestMain(m *testing.M) {
	sls.Logger = log.NewNopLogger()
	dir, err := os.MkdirTemp("", "e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for _, b := range []struct{ name, pkg string }{{"sls_keyword_exporter", ".."}, {"slsemu", "../cmd/slsemu"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.name), b.pkg)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b.name, "failed:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testAK     = "e2e-ak"
	testSecret = "e2e-secret-never-logged"
)

// seedWorldYAML is the seed topology for the slsemu binary.
const seedWorldYAML = `access_keys:
  - id: ` + testAK + `
    secret: ` + testSecret + `
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    projects:
      - name: project1
        logstores: [{name: logstore1, shards: 2}]
  - name: cn-beijing
    endpoint: cn-beijing.log.aliyuncs.com
    projects:
      - name: project2
        logstores: [{name: logstore2, shards: 2}]
  - name: cn-qingdao
    endpoint: cn-qingdao.log.aliyuncs.com
    projects:
      - name: project3
        logstores: [{name: logstore3_1, shards: 2}, {name: logstore3_2, shards: 2}]
`

var seedLogstores = []struct{ region, endpoint, project, logstore string }{
	{"cn-hangzhou", "cn-hangzhou.log.aliyuncs.com", "project1", "logstore1"},
	{"cn-beijing", "cn-beijing.log.aliyuncs.com", "project2", "logstore2"},
	{"cn-qingdao", "cn-qingdao.log.aliyuncs.com", "project3", "logstore3_1"},
	{"cn-qingdao", "cn-qingdao.log.aliyuncs.com", "project3", "logstore3_2"},
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// proc is a started binary whose output is kept for failure reports.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testkit.SyncBuffer
	done chan struct{}
}

// start runs a binary (from binDir when not an absolute path) until the test ends.
func start(t testing.TB, env []string, name string, args ...string) *proc {
	t.Helper()
	path := name
	if !filepath.IsAbs(name) {
		path = filepath.Join(binDir, name)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: filepath.Base(name), cmd: cmd, out: &testkit.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", p.name, tail(p.out.String(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// signal sends sig and waits up to timeout for the process to exit.
func (p *proc) signal(sig syscall.Signal, timeout time.Duration) (exited bool, took time.Duration) {
	start := time.Now()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true, time.Since(start)
	case <-time.After(timeout):
		return false, time.Since(start)
	}
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s (last: %v)", url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startEmulator runs the slsemu binary on a world and returns its URL.
func startEmulator(t testing.TB, worldYAML string) string {
	addr := freeAddr(t)
	start(t, nil, "slsemu", "--config.file="+writeFile(t, "world.yml", worldYAML), "--web.listen-address="+addr)
	url := "http://" + addr
	waitHTTP(t, url+"/_slsemu/state", 10*time.Second)
	return url
}

// scrape fetches and parses a /metrics page.
func scrape(t testing.TB, url string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return families, string(body)
}

// value returns the sample of family name whose labels are exactly labels
// ("k=v,k=v" sorted), or -1.
func value(families map[string]*dto.MetricFamily, name, labels string) float64 {
	f, ok := families[name]
	if !ok {
		return -1
	}
	for _, m := range f.Metric {
		var parts []string
		for _, l := range m.Label {
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(parts)
		if strings.Join(parts, ",") == labels {
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return -1
}

// sum adds every sample of name whose labels contain all pairs of subset ("k=v").
func sum(families map[string]*dto.MetricFamily, name string, subset ...string) float64 {
	f, ok := families[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range f.Metric {
		have := map[string]bool{}
		for _, l := range m.Label {
			have[l.GetName()+"="+l.GetValue()] = true
		}
		match := true
		for _, s := range subset {
			match = match && have[s]
		}
		if match {
			if m.Counter != nil {
				total += m.Counter.GetValue()
			} else {
				total += m.Gauge.GetValue()
			}
		}
	}
	return total
}

// logstore1Config is an exporter config reading project1/logstore1 through
// the emulator at emu, with settings (top-level YAML lines) and rules (list items).
func logstore1Config(emu, settings, rules string) string {
	return settings + fmt.Sprintf(`heartbeat_interval: 1s
consumer_timeout: 3s
credentials:
  access_key_id: %s
  access_key_secret: %s
regions:
  - endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects:
      - name: project1
        logstores: [logstore1]
rules:
`, testAK, testSecret, emu) + rules
}

// sdkClient talks to the emulator binary through it as HTTP proxy.
func sdkClient(emulatorURL, endpoint string) sls.ClientInterface {
	c := sls.CreateNormalInterface(endpoint, testAK, testSecret, "")
	proxy, _ := http.NewRequest(http.MethodGet, emulatorURL, nil)
	c.SetHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy.URL)}})
	return c
}

// putLogs writes logs with the given statuses into one shard of a logstore.
func putLogs(t testing.TB, c sls.ClientInterface, project, logstore string, shard int, at time.Time, statuses ...string) {
	t.Helper()
	shards, err := c.ListShards(project, logstore)
	if err != nil {
		t.Fatal(err)
	}
	sec := uint32(at.Unix())
	lg := &sls.LogGroup{}
	for _, s := range statuses {
		k, v, pk, pv := "status", s, "path", "/e2e"
		lg.Logs = append(lg.Logs, &sls.Log{Time: &sec, Contents: []*sls.LogContent{{Key: &k, Value: &v}, {Key: &pk, Value: &pv}}})
	}
	key := shards[shard].InclusiveBeginKey
	if err := c.PostLogStoreLogs(project, logstore, lg, &key); err != nil {
		t.Fatal(err)
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

var waitFor = testkit.WaitFor

// postReload asks the exporter at base to reload its config, fails the
// test unless it answers 200, and returns how long the reload took.
func postReload(t testing.TB, base string) time.Duration {
	t.Helper()
	sent := time.Now()
	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(sent)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /-/reload: %s %s", resp.Status, body)
	}
	return took
}
