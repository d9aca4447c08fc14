// Counts of refreshes and refresh failures by credentials type, as a Prometheus collector that main may register.
package credentials

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// counts are kept for the life of the process, whoever registers them.
var counts = struct {
	mu        sync.Mutex
	refreshes map[string]uint64
	failures  map[string]uint64
}{refreshes: map[string]uint64{}, failures: map[string]uint64{}}

func count(e Event) {
	counts.mu.Lock()
	defer counts.mu.Unlock()
	if e.Err != nil {
		counts.failures[e.Type]++
	} else {
		counts.refreshes[e.Type]++
	}
}

var (
	refreshesDesc = prometheus.NewDesc("sls_credentials_refreshes_total",
		"Temporary credentials obtained (first and renewed) by credentials type.", []string{"type"}, nil)
	failuresDesc = prometheus.NewDesc("sls_credentials_refresh_failures_total",
		"Failed attempts to obtain or renew temporary credentials (and credentials near expiry that were not renewed) by credentials type.", []string{"type"}, nil)
)

// Collector exposes sls_credentials_refreshes_total and
// sls_credentials_refresh_failures_total: registry.MustRegister(credentials.Collector{}).
type Collector struct{}

// Describe implements prometheus.Collector.
func (Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- refreshesDesc
	ch <- failuresDesc
}

// Collect implements prometheus.Collector.
func (Collector) Collect(ch chan<- prometheus.Metric) {
	counts.mu.Lock()
	defer counts.mu.Unlock()
	for _, m := range []struct {
		desc   *prometheus.Desc
		values map[string]uint64
	}{{refreshesDesc, counts.refreshes}, {failuresDesc, counts.failures}} {
		types := make([]string, 0, len(m.values))
		for t := range m.values {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.values[t]), t)
		}
	}
}
