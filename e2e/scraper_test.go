// A Prometheus-like scraper for the e2e tests: its scrape header, targets followed until their process is gone, counters summed per series segment as increase() would.
package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// promScrapeHeader is the header Prometheus sends with every scrape; only
// scrapes carrying it acknowledge the exporter's counts.
const promScrapeHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// promScraper scrapes every target on its own schedule, like a Prometheus
// scrape pool whose targets come and go.
type promScraper struct {
	interval time.Duration
	client   *http.Client
	quit     chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex
	targets []*scrapeTarget
}

// newPromScraper returns a scraper that stops when the test ends.
func newPromScraper(t testing.TB, interval time.Duration) *promScraper {
	s := &promScraper{
		interval: interval,
		client:   &http.Client{Timeout: interval, Transport: &http.Transport{}},
		quit:     make(chan struct{}),
	}
	t.Cleanup(func() {
		close(s.quit)
		s.wg.Wait()
		s.client.CloseIdleConnections()
	})
	return s
}

// scrapeTarget is one exporter process as the scraper saw it.
type scrapeTarget struct {
	name string
	url  string
	gone <-chan struct{} // closed once the process has exited
	done chan struct{}   // closed once the scrape loop has ended

	mu       sync.Mutex
	series   map[string]*seriesSegments
	scrapes  []scrapeTimes // successful scrapes, oldest first
	failures int
	lastErr  error
}

// scrapeTimes is when a successful scrape was sent and when its body was
// read, and every counter series' segment total right after it.
type scrapeTimes struct {
	sent, served time.Time
	totals       map[string]float64 // by series key
}

// seriesSegments follows one counter series of one process as increase()
// sees it: a segment ends only when the value drops (a reset). A series that
// leaves the page and comes back is the same series across the gap, since
// PromQL skips staleness markers: it must come back at its old value or
// more, or at less (which reads as a reset).
type seriesSegments struct {
	name     string
	labels   map[string]string
	closed   float64 // sum of the last values of ended segments
	current  float64 // last value of the open segment
	open     bool    // on the page in the last scrape
	segments int
	resets   int // drops
	gaps     int // times the series left the page
}

func (ss *seriesSegments) total() float64 { return ss.closed + ss.current }

// add starts scraping url at once and then every interval, until gone is
// closed (the process exited) or the test ends.
func (s *promScraper) add(name, url string, gone <-chan struct{}) *scrapeTarget {
	tg := &scrapeTarget{name: name, url: url, gone: gone, done: make(chan struct{}), series: map[string]*seriesSegments{}}
	s.mu.Lock()
	s.targets = append(s.targets, tg)
	s.mu.Unlock()
	s.wg.Go(func() {
		defer close(tg.done)
		ticker := time.NewTicker(s.interval)
		defer ticker.Stop()
		for {
			s.scrapeOnce(tg)
			select {
			case <-ticker.C:
			case <-tg.gone:
				return
			case <-s.quit:
				return
			}
		}
	})
	return tg
}

// scrapeOnce scrapes tg as Prometheus would; failures leave the series as they were.
func (s *promScraper) scrapeOnce(tg *scrapeTarget) {
	sent := time.Now()
	families, err := s.fetch(tg.url)
	served := time.Now()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if err != nil {
		tg.failures++
		tg.lastErr = err
		return
	}
	seen := map[string]bool{}
	for name, f := range families {
		if f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			key := seriesKey(name, labels)
			v := m.GetCounter().GetValue()
			seen[key] = true
			ss := tg.series[key]
			if ss == nil {
				ss = &seriesSegments{name: name, labels: labels}
				tg.series[key] = ss
			}
			switch {
			case ss.segments == 0:
				ss.current = v
				ss.segments++
			case v < ss.current:
				ss.closed += ss.current
				ss.current = v
				ss.segments++
				ss.resets++
			default:
				ss.current = v
			}
			ss.open = true
		}
	}
	totals := make(map[string]float64, len(tg.series))
	for key, ss := range tg.series {
		if ss.open && !seen[key] {
			ss.open = false
			ss.gaps++
		}
		totals[key] = ss.total()
	}
	tg.scrapes = append(tg.scrapes, scrapeTimes{sent: sent, served: served, totals: totals})
}

func (s *promScraper) fetch(url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(promScrapeHeader, strconv.FormatFloat(s.interval.Seconds(), 'f', -1, 64))
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(body))
}

func seriesKey(name string, labels map[string]string) string {
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// matchesSubset reports whether labels hold every "k=v" of subset.
func matchesSubset(labels map[string]string, subset []string) bool {
	for _, s := range subset {
		k, v, _ := strings.Cut(s, "=")
		if labels[k] != v {
			return false
		}
	}
	return true
}

// total sums, over every series of name whose labels contain subset, the
// last value of each of its segments (what increase() adds up).
func (tg *scrapeTarget) total(name string, subset ...string) float64 {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	sum := 0.0
	for _, ss := range tg.series {
		if ss.name == name && matchesSubset(ss.labels, subset) {
			sum += ss.total()
		}
	}
	return sum
}

// totalAt is total as it stood right after successful scrape i (0-based).
func (tg *scrapeTarget) totalAt(i int, name string, subset ...string) float64 {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	sum := 0.0
	for key, v := range tg.scrapes[i].totals {
		if ss := tg.series[key]; ss.name == name && matchesSubset(ss.labels, subset) {
			sum += v
		}
	}
	return sum
}

// lastScrapeBefore is the index of the newest successful scrape served before at (-1 if none).
func (tg *scrapeTarget) lastScrapeBefore(at time.Time) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	i := -1
	for j, s := range tg.scrapes {
		if s.served.Before(at) {
			i = j
		}
	}
	return i
}

// segments counts the segments, resets and gaps of name's series with
// labels containing subset.
func (tg *scrapeTarget) segments(name string, subset ...string) (segments, resets, gaps int) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for _, ss := range tg.series {
		if ss.name == name && matchesSubset(ss.labels, subset) {
			segments += ss.segments
			resets += ss.resets
			gaps += ss.gaps
		}
	}
	return segments, resets, gaps
}

// present lists the values of label among name's series in the last scrape.
func (tg *scrapeTarget) present(name, label string) []string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	var out []string
	for _, ss := range tg.series {
		if ss.name == name && ss.open {
			out = append(out, ss.labels[label])
		}
	}
	sort.Strings(out)
	return out
}

// scrapeCount is the number of successful scrapes so far.
func (tg *scrapeTarget) scrapeCount() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return len(tg.scrapes)
}

// firstScrape is when the first successful scrape was sent (zero if none).
func (tg *scrapeTarget) firstScrape() time.Time {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if len(tg.scrapes) == 0 {
		return time.Time{}
	}
	return tg.scrapes[0].sent
}

// firstScrapeSentAfter is the first successful scrape sent after at.
func (tg *scrapeTarget) firstScrapeSentAfter(at time.Time) (scrapeTimes, bool) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for _, s := range tg.scrapes {
		if s.sent.After(at) {
			return s, true
		}
	}
	return scrapeTimes{}, false
}

// waitScrapes waits for n more successful scrapes of tg.
func (tg *scrapeTarget) waitScrapes(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	want := tg.scrapeCount() + n
	waitFor(t, timeout, fmt.Sprintf("%d more scrapes of %s", n, tg.name), func() bool { return tg.scrapeCount() >= want })
}

// total sums tg.total over every target.
func (s *promScraper) total(name string, subset ...string) float64 {
	s.mu.Lock()
	targets := append([]*scrapeTarget(nil), s.targets...)
	s.mu.Unlock()
	sum := 0.0
	for _, tg := range targets {
		sum += tg.total(name, subset...)
	}
	return sum
}
