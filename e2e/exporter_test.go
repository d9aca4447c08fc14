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

func TestSignalsFlushCheckpointsAndCrashesRecountAtMostOneCommitInterval(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	c := sdkClient(emu, "cn-hangzhou.log.aliyuncs.com")
	cfgFile := writeFile(t, "exporter.yml", exporterConfig(emu, "replica-a", ""))
	run := func() (*proc, string) {
		addr := freeAddr(t)
		p := start(t, nil, "sls_keyword_exporter", "--config.file="+cfgFile, "--web.listen-address="+addr, "--log.level=debug")
		waitHTTP(t, "http://"+addr+"/-/ready", 15*time.Second)
		return p, "http://" + addr + "/metrics"
	}
	logsCounted := func(url string) float64 {
		m, _ := scrape(t, url)
		return sum(m, "sls_consumer_logs_total")
	}

	// 1. SIGTERM stops promptly and saves every shard's checkpoint at the end.
	p, url := run()
	putLogs(t, c, "project1", "logstore1", 0, time.Now(), repeat("500", 20)...)
	putLogs(t, c, "project1", "logstore1", 1, time.Now(), repeat("200", 20)...)
	waitFor(t, 15*time.Second, "40 logs", func() bool { return logsCounted(url) == 40 })
	exited, took := p.signal(syscall.SIGTERM, 15*time.Second)
	if !exited || p.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("SIGTERM: exited %v after %s with %v", exited, took, p.cmd.ProcessState)
	}
	t.Logf("SIGTERM to exit: %s", took.Round(time.Millisecond))
	cps, err := c.GetCheckpoint("project1", "logstore1", "restart-cg")
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range cps {
		end, _ := c.GetCursor("project1", "logstore1", cp.ShardID, "end")
		if cp.CheckPoint != end || cp.Consumer != "replica-a" {
			t.Fatalf("shard %d checkpoint %q by %q, want the end cursor %q by replica-a", cp.ShardID, cp.CheckPoint, cp.Consumer, end)
		}
	}

	// 2. A restart after SIGTERM recounts nothing.
	p, url = run()
	putLogs(t, c, "project1", "logstore1", 0, time.Now(), repeat("503", 10)...)
	waitFor(t, 15*time.Second, "10 new logs", func() bool { return logsCounted(url) >= 10 })
	time.Sleep(2500 * time.Millisecond) // idle pulls would show a recount; the commit interval passes
	if n := logsCounted(url); n != 10 {
		t.Fatalf("after a graceful restart %v logs counted, want exactly 10", n)
	}

	// 3. A crash recounts at most what arrived within the last commit interval.
	putLogs(t, c, "project1", "logstore1", 1, time.Now(), repeat("500", 30)...)
	waitFor(t, 15*time.Second, "30 more logs", func() bool { return logsCounted(url) == 40 })
	if exited, _ := p.signal(syscall.SIGKILL, 5*time.Second); !exited {
		t.Fatal("SIGKILL did not stop the exporter")
	}
	p, url = run()
	putLogs(t, c, "project1", "logstore1", 0, time.Now(), repeat("200", 5)...)
	waitFor(t, 15*time.Second, "5 new logs", func() bool { return logsCounted(url) >= 5 })
	time.Sleep(1500 * time.Millisecond)
	recounted := logsCounted(url) - 5
	t.Logf("after SIGKILL, %v logs were counted again (bound: the 30 of the last commit interval)", recounted)
	if recounted < 0 || recounted > 30 {
		t.Fatalf("recounted %v logs after a crash; at most the 30 uncommitted ones may be", recounted)
	}
	p.signal(syscall.SIGTERM, 15*time.Second)
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
