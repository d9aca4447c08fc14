// make bench: the exporter beside a do-nothing client on the SDK's consumer library, on the same emulator data in the same run.
package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// buildBaseline builds the SDK consumer-library baseline once.
var buildBaseline = sync.OnceValue(func() error {
	cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "sdkconsumer"), "../internal/benchtools/sdkconsumer")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
})

// procUsage is a process's CPU time so far and its memory, from /proc.
type procUsage struct {
	cpu     time.Duration
	rss     int64 // bytes now
	peakRSS int64 // bytes, high-water mark
}

func usageOf(t testing.TB, p *proc) procUsage {
	t.Helper()
	pid := p.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which may hold spaces: state is field 3,
	// utime and stime are fields 14 and 15 (clock ticks of 1/100 s on Linux).
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	u := procUsage{cpu: time.Duration(utime+stime) * 10 * time.Millisecond}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, value, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch key {
		case "VmRSS":
			u.rss = kb << 10
		case "VmHWM":
			u.peakRSS = kb << 10
		}
	}
	return u
}

// getText fetches a URL's body.
func getText(t testing.TB, url string, header http.Header) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// promHeader is what Prometheus sends: a scrape with it acknowledges counts.
var promHeader = http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"1"}}

// sumFiltered sums one metric family from a /metrics?name[]= request, which
// costs the exporter little and acknowledges nothing.
func sumFiltered(t testing.TB, base, name string, subset ...string) float64 {
	body := getText(t, base+"/metrics?name[]="+name, nil)
	total := 0.0
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, s := range subset {
			ok = ok && strings.Contains(line, s)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

const (
	throughputLogs   = 400_000
	throughputGroups = 400 // of 1,000 logs each
	throughputShards = 8
)

// BenchmarkEngineThroughput: one 8-shard logstore holding 400,000 access logs
// (about 172 MB raw), read from the beginning with one field rule by the
// exporter and by the SDK's consumer library doing nothing: raw MB per
// CPU-second of each process, and its peak RSS.
func BenchmarkEngineThroughput(b *testing.B) {
	if err := buildBaseline(); err != nil {
		b.Fatal(err)
	}
	world := `access_keys: [{id: ` + testAK + `, secret: ` + testSecret + `}]
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    projects:
      - name: bench
        logstores: [{name: access, shards: ` + strconv.Itoa(throughputShards) + `}]
retention: {max_bytes_per_shard: 268435456}
`
	emu := startEmulator(b, world)
	rawBytes := preloadAccessLogs(b, emu)
	rawMB := float64(rawBytes) / 1e6
	b.Logf("preloaded %d logs, %.1f MB raw, into %d shards", throughputLogs, rawMB, throughputShards)

	for i := 0; i < b.N; i++ {
		// The exporter with the rule of the measurement, then with a
		// full-text alternation beside it.
		runExporter := func(name, rules string) (procUsage, time.Duration) {
			addr := freeAddr(b)
			cfg := writeFile(b, "exporter.yml", fmt.Sprintf(`consumer_group: bench-%s-%d
cursor_start: begin
credentials: {access_key_id: %s, access_key_secret: %s}
regions:
  - endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects: [{name: bench, logstores: [access]}]
rules:
%s`, name, i, testAK, testSecret, emu, rules))
			start := time.Now()
			exporter := startProc(b, "sls_keyword_exporter", "--config.file="+cfg, "--web.listen-address="+addr)
			waitFor(b, 5*time.Minute, "the exporter to count every log", func() bool {
				return sumFiltered(b, "http://"+addr, "sls_consumer_logs_total") >= throughputLogs
			})
			wall := time.Since(start)
			u := usageOf(b, exporter)
			exporter.kill()
			return u, wall
		}
		// Each three times, each run in a group of its own: the median run counts.
		median := func(name, rules string) (procUsage, time.Duration) {
			type result struct {
				u    procUsage
				wall time.Duration
			}
			var runs []result
			for r := range 3 {
				u, wall := runExporter(fmt.Sprintf("%s-%d", name, r), rules)
				runs = append(runs, result{u, wall})
			}
			sort.Slice(runs, func(a, b int) bool { return runs[a].u.cpu < runs[b].u.cpu })
			return runs[1].u, runs[1].wall
		}
		statusRule := "  - {name: http_5xx, field: status, regex: '5\\d{2}'}\n"
		ex, wall := median("status", statusRule)
		exFull, wallFull := median("fulltext", statusRule+"  - {name: crash, field: \"*\", regex: 'OutOfMemory|panic: runtime error'}\n")

		// The baseline: the SDK's consumer library counting logs.
		countAddr := freeAddr(b)
		worldFile := writeFile(b, "world.yml", world)
		start := time.Now()
		baseline := startProc(b, filepath.Join(binDir, "sdkconsumer"), "--world="+worldFile, "--proxy="+emu, "--begin",
			fmt.Sprintf("--group=bench-sdk-%d", i), "--listen="+countAddr)
		waitFor(b, 5*time.Minute, "the baseline to count every log", func() bool {
			n, _ := strconv.Atoi(strings.TrimSpace(getText(b, "http://"+countAddr+"/count", nil)))
			return n >= throughputLogs
		})
		baseWall := time.Since(start)
		base := usageOf(b, baseline)
		baseline.kill()

		exRate, fullRate, baseRate := rawMB/ex.cpu.Seconds(), rawMB/exFull.cpu.Seconds(), rawMB/base.cpu.Seconds()
		b.Logf("exporter, status rule (median of 3): %.0f raw MB per CPU-second (%.2f CPU-s, %.1f s wall), peak RSS %.0f MiB", exRate, ex.cpu.Seconds(), wall.Seconds(), mib(ex.peakRSS))
		b.Logf("exporter, status rule + full-text alternation (median of 3): %.0f raw MB per CPU-second (%.2f CPU-s, %.1f s wall), peak RSS %.0f MiB", fullRate, exFull.cpu.Seconds(), wallFull.Seconds(), mib(exFull.peakRSS))
		b.Logf("SDK consumer library doing nothing: %.0f raw MB per CPU-second (%.2f CPU-s, %.1f s wall), peak RSS %.0f MiB", baseRate, base.cpu.Seconds(), baseWall.Seconds(), mib(base.peakRSS))
		b.Logf("ratio: the exporter reads %.1fx faster per CPU-second with %.1fx less peak memory", exRate/baseRate, float64(base.peakRSS)/float64(ex.peakRSS))
		b.ReportMetric(exRate, "exporter-MB/cpu-s")
		b.ReportMetric(mib(ex.peakRSS), "exporter-peak-MiB")
		b.ReportMetric(fullRate, "exporter-fulltext-MB/cpu-s")
		b.ReportMetric(baseRate, "sdk-MB/cpu-s")
		b.ReportMetric(mib(base.peakRSS), "sdk-peak-MiB")
	}
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// startProc runs a binary with no extra environment.
func startProc(t testing.TB, name string, args ...string) *proc { return start(t, nil, name, args...) }

// preloadAccessLogs writes throughputLogs generated access logs, spread over
// the shards, and returns their raw size as the exporter will count it (the
// protobuf LogGroupList bytes).
func preloadAccessLogs(b *testing.B, emu string) int64 {
	c := sdkClient(emu, "cn-hangzhou.log.aliyuncs.com")
	shards, err := c.ListShards("bench", "access")
	if err != nil {
		b.Fatal(err)
	}
	var raw int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	groups := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			gen := slsemu.NewAccessLogGenerator(uint64(w + 1))
			for i := range groups {
				g := gen.Group(throughputLogs/throughputGroups, time.Now(), 0.02)
				enrich(g, i)
				key := shards[i%len(shards)].InclusiveBeginKey
				if err := c.PostLogStoreLogs("bench", "access", g, &key); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				raw += int64((&sls.LogGroupList{LogGroups: []*sls.LogGroup{g}}).Size())
				mu.Unlock()
			}
		})
	}
	for i := range throughputGroups {
		groups <- i
	}
	close(groups)
	wg.Wait()
	return raw
}

// enrich gives generated access logs the fields of a typical nginx JSON log
// line (about 430 raw bytes each, as the issue's 172 MB of 400,000 logs).
func enrich(g *sls.LogGroup, seed int) {
	rng := rand.New(rand.NewPCG(uint64(seed), 17))
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	for _, l := range g.Logs {
		for _, kv := range [][2]string{
			{"host", "shop-api.example.com"},
			{"request_id", hex(32)},
			{"referer", "https://www.example.com/products/" + strconv.Itoa(rng.IntN(100000)) + "?ref=mail"},
			{"upstream_addr", "10.1." + strconv.Itoa(rng.IntN(256)) + "." + strconv.Itoa(rng.IntN(256)) + ":8080"},
			{"upstream_response_time", strconv.FormatFloat(rng.Float64(), 'f', 3, 64)},
			{"protocol", "HTTP/1.1"},
		} {
			k, v := kv[0], kv[1]
			l.Contents = append(l.Contents, &sls.LogContent{Key: &k, Value: &v})
		}
	}
}

const (
	idleRegions   = 3
	idleLogstores = 334 // per region, of 2 shards: 2,004 shards
)

// BenchmarkIdleShards: 2,004 quiet shards (3 regions × 334 logstores × 2),
// default heartbeat, a scrape every second with Prometheus's header: the
// exporter's CPU and RSS while nothing arrives, then how long single writes
// take to show on /metrics; the same idle measurement for the SDK's consumer
// library doing nothing.
func BenchmarkIdleShards(b *testing.B) {
	if err := buildBaseline(); err != nil {
		b.Fatal(err)
	}
	var world, config strings.Builder
	world.WriteString("access_keys: [{id: " + testAK + ", secret: " + testSecret + "}]\nregions:\n")
	emuAddr := freeAddr(b)
	emu := "http://" + emuAddr
	fmt.Fprintf(&config, "credentials: {access_key_id: %s, access_key_secret: %s}\nrules:\n  - {name: http_5xx, field: status, regex: '5\\d{2}'}\nregions:\n", testAK, testSecret)
	var targets [][2]string // endpoint, logstore
	for r := range idleRegions {
		endpoint := fmt.Sprintf("cn-region%d.log.aliyuncs.com", r)
		fmt.Fprintf(&world, "  - name: cn-region%d\n    endpoint: %s\n    projects:\n      - name: project%d\n        logstores:\n", r, endpoint, r)
		fmt.Fprintf(&config, "  - endpoint: %s\n    proxy_url: %s\n    projects:\n      - name: project%d\n        logstores:\n", endpoint, emu, r)
		for l := range idleLogstores {
			fmt.Fprintf(&world, "          - {name: logstore%03d, shards: 2}\n", l)
			fmt.Fprintf(&config, "          - logstore%03d\n", l)
			targets = append(targets, [2]string{endpoint, fmt.Sprintf("logstore%03d", l)})
		}
	}
	worldFile := writeFile(b, "world.yml", world.String())
	start(b, nil, "slsemu", "--config.file="+worldFile, "--web.listen-address="+emuAddr)
	waitHTTP(b, emu+"/_slsemu/state", 10*time.Second)
	const window = 20 * time.Second

	for i := 0; i < b.N; i++ {
		addr := freeAddr(b)
		cfg := writeFile(b, "exporter.yml", fmt.Sprintf("consumer_group: idle-exporter-%d\n", i)+config.String())
		exporter := startProc(b, "sls_keyword_exporter", "--config.file="+cfg, "--web.listen-address="+addr)
		base := "http://" + addr
		stopScraper := scrapeEverySecond(b, base)
		waitFor(b, 2*time.Minute, "all 2,004 shards held", func() bool {
			return sumFiltered(b, base, "sls_consumer_shards_held") == 2*idleRegions*idleLogstores
		})
		time.Sleep(5 * time.Second) // settle: first polls and commits
		before := usageOf(b, exporter)
		time.Sleep(window)
		after := usageOf(b, exporter)
		idleCPU := (after.cpu - before.cpu).Seconds() / window.Seconds()

		latencies := singleWriteLatencies(b, emu, base, targets, 10)
		stopScraper()
		exporter.kill()

		countAddr := freeAddr(b)
		baseline := startProc(b, filepath.Join(binDir, "sdkconsumer"), "--world="+worldFile, "--proxy="+emu,
			fmt.Sprintf("--group=idle-sdk-%d", i), "--listen="+countAddr)
		time.Sleep(25 * time.Second) // its workers start, join and take their shards
		baseBefore := usageOf(b, baseline)
		time.Sleep(window)
		baseAfter := usageOf(b, baseline)
		baseline.kill()
		baseCPU := (baseAfter.cpu - baseBefore.cpu).Seconds() / window.Seconds()

		b.Logf("exporter, 2,004 idle shards scraped every second: %.1f%% of a core, RSS %.0f MiB (peak %.0f MiB)", 100*idleCPU, mib(after.rss), mib(after.peakRSS))
		b.Logf("exporter, single write to /metrics: %s", describe(latencies))
		b.Logf("SDK consumer library doing nothing on the same shards: %.1f%% of a core, RSS %.0f MiB (peak %.0f MiB)", 100*baseCPU, mib(baseAfter.rss), mib(baseAfter.peakRSS))
		b.Logf("ratio: %.1fx less CPU, %.1fx less memory", baseCPU/idleCPU, float64(baseAfter.rss)/float64(after.rss))
		b.ReportMetric(100*idleCPU, "exporter-idle-%cpu")
		b.ReportMetric(mib(after.rss), "exporter-idle-MiB")
		b.ReportMetric(latencies[len(latencies)-1].Seconds(), "write-to-metrics-max-s")
		b.ReportMetric(100*baseCPU, "sdk-idle-%cpu")
		b.ReportMetric(mib(baseAfter.rss), "sdk-idle-MiB")
	}
}

// scrapeEverySecond scrapes like Prometheus until the returned func is called.
func scrapeEverySecond(t testing.TB, base string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				getText(t, base+"/metrics", promHeader)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// singleWriteLatencies writes n single status=500 logs, one at a time, into
// random logstores and times each until its counter moves on /metrics.
func singleWriteLatencies(b *testing.B, emu, base string, targets [][2]string, n int) []time.Duration {
	rng := rand.New(rand.NewPCG(3, 5))
	var out []time.Duration
	for range n {
		target := targets[rng.IntN(len(targets))]
		selector := `logstore="` + target[1] + `"`
		project := "project" + strings.TrimSuffix(strings.TrimPrefix(target[0], "cn-region"), ".log.aliyuncs.com")
		region := strings.TrimSuffix(target[0], ".log.aliyuncs.com")
		before := sumFiltered(b, base, "sls_keyword_matches_total", selector, `region="`+region+`"`)
		c := sdkClient(emu, target[0])
		written := time.Now()
		putLogs(b, c, project, target[1], rng.IntN(2), written, "500")
		waitFor(b, 10*time.Second, "the write on /metrics", func() bool {
			return sumFiltered(b, base, "sls_keyword_matches_total", selector, `region="`+region+`"`) > before
		})
		out = append(out, time.Since(written))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func describe(d []time.Duration) string {
	return fmt.Sprintf("n=%d min=%s p50=%s max=%s", len(d), d[0].Round(time.Millisecond), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
}
