// The exporter binary: seed environment, scrape hygiene, lifecycle endpoints, signals and restarts.
package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSeedEnvironmentAloneStartsAWorkingExporter(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	addr := freeAddr(t)
	start(t, []string{
		"SLS_ENDPOINTS=cn-hangzhou.log.aliyuncs.com;cn-beijing.log.aliyuncs.com;cn-qingdao.log.aliyuncs.com",
		"SLS_PROJECTS=project1;project2;project3",
		"SLS_LOGSTORES=logstore1;logstore2;logstore3_1,logstore3_2",
		"SLS_AK_ID=" + testAK, "SLS_AK_KEY=" + testSecret, "SLS_CG=seed-cg",
		"ALIBABA_CLOUD_ACCESS_KEY_ID=", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=",
		// The seed reached SLS directly; here the emulator is the HTTP proxy.
		"HTTP_PROXY=" + emu, "http_proxy=" + emu, "NO_PROXY=", "no_proxy=",
	}, "sls_keyword_exporter", "--web.listen-address="+addr)
	base := "http://" + addr
	waitHTTP(t, base+"/-/ready", 15*time.Second)
	waitFor(t, 15*time.Second, "all 8 shards held", func() bool {
		m, _ := scrape(t, base+"/metrics")
		return sum(m, "sls_consumer_shards_held") == 8
	})

	for _, s := range seedLogstores {
		c := sdkClient(emu, s.endpoint)
		putLogs(t, c, s.project, s.logstore, 0, time.Now(), "500", "500", "200", "503")
		putLogs(t, c, s.project, s.logstore, 1, time.Now(), "500", "200", "200", "504")
	}
	for _, s := range seedLogstores {
		waitFor(t, 10*time.Second, "counts of "+s.logstore, func() bool {
			m, _ := scrape(t, base+"/metrics")
			return sum(m, "sls_consumer_logs_total", "logstore="+s.logstore) == 8
		})
	}
	m, body := scrape(t, base+"/metrics")
	for _, s := range seedLogstores {
		for shard, want := range []float64{3, 2} {
			labels := fmt.Sprintf("field=status,logstore=%s,project=%s,region=%s,rule=status,shard=%d", s.logstore, s.project, s.region, shard)
			if got := value(m, "sls_keyword_matches_total", labels); got != want {
				t.Errorf("sls_keyword_matches_total{%s} = %v, want %v", labels, got, want)
			}
		}
	}
	if strings.Contains(body, testSecret) {
		t.Fatal("the secret appears on /metrics")
	}

	// promtool lints the real scrape.
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	for path, want := range map[string]string{"/-/healthy": "Healthy", "/-/ready": "Ready", "/": "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, tail(string(b), 200))
		}
	}
}

// exporterConfig reads project1/logstore1 with the http_5xx rule and extraRules.
func exporterConfig(emu, consumerName, extraRules string) string {
	settings := "consumer_group: restart-cg\nconsumer_name: " + consumerName + "\ncursor_start: begin\ncommit_interval: 1s\n"
	return logstore1Config(emu, settings, "  - name: http_5xx\n    field: status\n    regex: '^5\\d{2}$'\n"+extraRules)
}

func TestReloadEndpointAndSIGHUP(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	cfgFile := writeFile(t, "exporter.yml", exporterConfig(emu, "reloader", ""))
	addr := freeAddr(t)
	p := start(t, nil, "sls_keyword_exporter", "--config.file="+cfgFile, "--web.listen-address="+addr)
	base := "http://" + addr
	waitHTTP(t, base+"/-/ready", 15*time.Second)
	reloadOK := func() float64 {
		m, _ := scrape(t, base+"/metrics")
		return value(m, "sls_keyword_exporter_config_last_reload_successful", "")
	}

	if resp, _ := http.Get(base + "/-/reload"); resp == nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /-/reload: %v", resp)
	}
	if err := os.WriteFile(cfgFile, []byte(exporterConfig(emu, "reloader", "  - name: broken\n    field: msg\n    regex: '(unclosed'\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), "exporter.yml:22: rule broken: invalid regex") || reloadOK() != 0 {
		t.Fatalf("broken reload: %d %q, successful=%v", resp.StatusCode, body, reloadOK())
	}
	// The running consumers keep going on the old configuration.
	m, _ := scrape(t, base+"/metrics")
	if value(m, "sls_up", "logstore=logstore1,project=project1,region=cn-hangzhou") != 1 {
		t.Fatal("a failed reload must keep the old consumers")
	}
	if err := os.WriteFile(cfgFile, []byte(exporterConfig(emu, "reloader", "  - name: http_404\n    field: status\n    regex: '^404$'\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "SIGHUP reload", func() bool {
		m, _ := scrape(t, base+"/metrics")
		return reloadOK() == 1 && value(m, "sls_keyword_matches_total", "field=status,logstore=logstore1,project=project1,region=cn-hangzhou,rule=http_404,shard=0") == 0
	})
}
