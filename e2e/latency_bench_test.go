// make bench-latency: 200 spaced matching logs into four logstores, timed from the SDK write to /metrics and to the Alertmanager webhook.
package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

const latencyProbes = 200

// latencyExporterConfig reads the four seed logstores with one rule per
// probe, so that every probe log raises an alert of its own (its own
// Alertmanager group).
func latencyExporterConfig(emu string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "consumer_group: latency-cg\ncursor_start: end\nheartbeat_interval: 1s\nconsumer_timeout: 3s\n")
	fmt.Fprintf(&b, "credentials: {access_key_id: %s, access_key_secret: %s}\nregions:\n", testAK, testSecret)
	for _, s := range seedLogstores {
		fmt.Fprintf(&b, "  - {name: %s, endpoint: %s, proxy_url: %q, projects: [{name: %s, logstores: [%s]}]}\n", s.region, s.endpoint, emu, s.project, s.logstore)
	}
	b.WriteString("rules:\n")
	for i := range latencyProbes {
		fmt.Fprintf(&b, "  - name: probe_%03d\n    field: probe\n    regex: '^%03d$'\n", i, i)
	}
	return b.String()
}

func BenchmarkLogToAlert(b *testing.B) {
	s := startStack(b, latencyExporterConfig)
	waitFor(b, 15*time.Second, "the exporter to hold all 8 shards", func() bool {
		m, _ := scrape(b, s.exporter+"/metrics")
		return sum(m, "sls_consumer_shards_held") == 8
	})
	for i := 0; i < b.N; i++ {
		toMetrics, toWebhook := runLatencyProbes(b, s)
		report(b, "write->/metrics", toMetrics)
		report(b, "write->webhook", toWebhook)
	}
}

// runLatencyProbes writes latencyProbes matching logs 400-800 ms apart (a
// random phase against scrape and evaluation ticks) and times each.
func runLatencyProbes(b *testing.B, s *stack) (toMetrics, toWebhook []time.Duration) {
	var clients []sls.ClientInterface
	for _, l := range seedLogstores {
		clients = append(clients, sdkClient(s.emulator, l.endpoint))
	}
	written := make([]time.Time, latencyProbes)
	seen := make([]time.Time, latencyProbes)
	var mu sync.Mutex
	stop := make(chan struct{})
	var pollers sync.WaitGroup
	pollers.Go(func() { // watch /metrics every 20ms for each probe's counter
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			m, _ := scrape(b, s.exporter+"/metrics")
			now := time.Now()
			mu.Lock()
			for i := range latencyProbes {
				if seen[i].IsZero() && !written[i].IsZero() && sum(m, "sls_keyword_matches_total", fmt.Sprintf("rule=probe_%03d", i)) >= 1 {
					seen[i] = now
				}
			}
			mu.Unlock()
		}
	})

	rng := rand.New(rand.NewPCG(7, 11))
	for i := range latencyProbes {
		mu.Lock()
		written[i] = time.Now()
		mu.Unlock()
		putProbe(b, clients[i%len(clients)], seedLogstores[i%len(seedLogstores)], i/len(seedLogstores)%2, fmt.Sprintf("%03d", i))
		time.Sleep(time.Duration(400+rng.IntN(400)) * time.Millisecond)
	}
	waitFor(b, 30*time.Second, "every probe's notification", func() bool {
		for i := range latencyProbes {
			if _, _, ok := s.webhook.find(map[string]string{"alertname": "SLSKeywordMatch", "rule": fmt.Sprintf("probe_%03d", i)}); !ok {
				return false
			}
		}
		return true
	})
	close(stop)
	pollers.Wait()
	for i := range latencyProbes {
		_, at, _ := s.webhook.find(map[string]string{"alertname": "SLSKeywordMatch", "rule": fmt.Sprintf("probe_%03d", i)})
		if seen[i].IsZero() {
			b.Fatalf("probe %d never showed on /metrics", i)
		}
		toMetrics = append(toMetrics, seen[i].Sub(written[i]))
		toWebhook = append(toWebhook, at.Sub(written[i]))
	}
	return toMetrics, toWebhook
}

// putProbe writes one log with field probe=value into a shard of a seed logstore.
func putProbe(b *testing.B, c sls.ClientInterface, l struct{ region, endpoint, project, logstore string }, shard int, value string) {
	keys := []string{"00000000000000000000000000000000", "80000000000000000000000000000000"}
	sec := uint32(time.Now().Unix())
	k, v := "probe", value
	lg := &sls.LogGroup{Logs: []*sls.Log{{Time: &sec, Contents: []*sls.LogContent{{Key: &k, Value: &v}}}}}
	if err := c.PostLogStoreLogs(l.project, l.logstore, lg, &keys[shard]); err != nil {
		b.Fatal(err)
	}
}

// percentile returns the nearest-rank percentile p (0-100) of sorted d.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func report(b *testing.B, what string, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	p50, p99 := percentile(d, 50), percentile(d, 99)
	b.Logf("%-16s n=%d p50=%s p99=%s max=%s", what, len(d), p50.Round(time.Millisecond), p99.Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	unit := strings.NewReplacer("->", "-to-", "/", "").Replace(what)
	b.ReportMetric(p50.Seconds(), unit+"-p50-s")
	b.ReportMetric(p99.Seconds(), unit+"-p99-s")
}
