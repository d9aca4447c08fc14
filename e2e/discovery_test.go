// Logstores by pattern with the real binaries: a project listed over more than one page, a logstore created while the exporter runs, one deleted, and a listing that fails.
package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	dto "github.com/prometheus/client_model/go"
)

const (
	discoveryProject  = "apps"
	discoveryEndpoint = "cn-hangzhou.log.aliyuncs.com"
	discoveryGroup    = "discovery-cg"
	discoveryInterval = time.Second
	// discoveryAllowance is the setup allowance on top of one discovery
	// interval, from a logstore's creation to its series on /metrics: the
	// listing itself (two pages), starting the member, and the 25 ms between
	// our polls of /metrics.
	discoveryAllowance = 500 * time.Millisecond
	// discoveryFillers logstores sort before every "web-" one, so that those
	// are all on the second listing page (ListLogStoreV2 pages hold 500).
	discoveryFillers = 520
)

// discoveryWorldYAML is one project of discoveryFillers non-matching
// logstores and web-access (2 shards), web-static (1), web-test (excluded)
// and webapp (not matched by "web-*").
func discoveryWorldYAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, `access_keys:
  - id: %s
    secret: %s
regions:
  - name: cn-hangzhou
    endpoint: %s
    projects:
      - name: %s
        logstores:
`, testAK, testSecret, discoveryEndpoint, discoveryProject)
	for i := range discoveryFillers {
		fmt.Fprintf(&b, "          - {name: filler-%03d, shards: 1}\n", i)
	}
	b.WriteString(`          - {name: web-access, shards: 2}
          - {name: web-static, shards: 1}
          - {name: web-test, shards: 1}
          - {name: webapp, shards: 1}
`)
	return b.String()
}

// discoveryConfig consumes every "web-*" logstore of the project but "*-test",
// from cursor_start end (the default).
func discoveryConfig(emu string) string {
	return fmt.Sprintf(`consumer_group: %s
consumer_name: discoverer
heartbeat_interval: 1s
consumer_timeout: 3s
commit_interval: 1s
discovery_interval: %s
credentials:
  access_key_id: %s
  access_key_secret: %s
regions:
  - name: cn-hangzhou
    endpoint: %s
    proxy_url: %s
    projects:
      - name: %s
        logstores: ["web-*"]
        exclude: ["*-test"]
rules:
`, discoveryGroup, discoveryInterval, testAK, testSecret, discoveryEndpoint, emu, discoveryProject) + http5xxRule
}

// perLogstoreFamilies are the families a consumed logstore with matches and
// one failed call has series in.
var perLogstoreFamilies = []string{
	"sls_keyword_matches_total", "sls_keyword_last_match_info", "sls_keyword_last_match_timestamp_seconds",
	"sls_consumer_logs_total", "sls_consumer_bytes_total", "sls_consumer_errors_total", "sls_up",
	"sls_consumer_shards_held", "sls_logstore_shards", "sls_consumer_group_timeout_seconds",
	"sls_consumer_lag_seconds", "sls_consumer_last_pull_timestamp_seconds",
}

// seriesOfLogstore lists every series of a parsed page, whatever its family,
// that carries logstore="logstore", as family{labels}.
func seriesOfLogstore(families map[string]*dto.MetricFamily, logstore string) []string {
	var out []string
	for name, f := range families {
		for _, m := range f.Metric {
			var pairs []string
			mine := false
			for _, l := range m.Label {
				pairs = append(pairs, l.GetName()+"="+l.GetValue())
				mine = mine || (l.GetName() == "logstore" && l.GetValue() == logstore)
			}
			if mine {
				sort.Strings(pairs)
				out = append(out, name+"{"+strings.Join(pairs, ",")+"}")
			}
		}
	}
	sort.Strings(out)
	return out
}

// familiesIn is the set of families among series from seriesOfLogstore.
func familiesIn(series []string) map[string]bool {
	out := map[string]bool{}
	for _, s := range series {
		out[s[:strings.Index(s, "{")]] = true
	}
	return out
}

// logstoresOnPage lists the distinct logstore labels of a parsed page.
func logstoresOnPage(families map[string]*dto.MetricFamily) []string {
	seen := map[string]bool{}
	for _, f := range families {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "logstore" {
					seen[l.GetValue()] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for ls := range seen {
		out = append(out, ls)
	}
	sort.Strings(out)
	return out
}

// waitAllSeries waits until logstore has a series in every family of perLogstoreFamilies.
func waitAllSeries(t testing.TB, r *exporterRun, logstore string, timeout time.Duration) {
	t.Helper()
	var missing []string
	deadline := time.Now().Add(timeout)
	for {
		m, _ := scrape(t, r.base+"/metrics")
		have := familiesIn(seriesOfLogstore(m, logstore))
		missing = missing[:0]
		for _, f := range perLogstoreFamilies {
			if !have[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s %s still has no series in %v", timeout, logstore, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSeriesGone waits until no series of logstore is on the page and returns how long that took.
func waitSeriesGone(t testing.TB, r *exporterRun, logstore string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	var left []string
	deadline := time.Now().Add(timeout)
	for {
		m, _ := scrape(t, r.base+"/metrics")
		if left = seriesOfLogstore(m, logstore); len(left) == 0 {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after it went, %d series of %s remain:\n%s", time.Since(since).Round(time.Millisecond), len(left), logstore, strings.Join(left, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// staysGone reads the page every 100 ms until the scraper (scraping every
// interval) has made scrapes more Prometheus scrapes of r, and fails if a
// series of logstore comes back.
func staysGone(t testing.TB, r *exporterRun, logstore string, scrapes int, interval time.Duration) {
	t.Helper()
	want := r.target.scrapeCount() + scrapes
	// Generous: on a busy machine a scrape may take longer than its interval and fail.
	deadline := time.Now().Add(time.Duration(scrapes)*interval + 15*time.Second)
	for r.target.scrapeCount() < want {
		m, _ := scrape(t, r.base+"/metrics")
		if left := seriesOfLogstore(m, logstore); len(left) > 0 {
			t.Fatalf("series of %s came back:\n%s", logstore, strings.Join(left, "\n"))
		}
		if time.Now().After(deadline) {
			r.target.mu.Lock()
			failures, lastErr := r.target.failures, r.target.lastErr
			r.target.mu.Unlock()
			t.Fatalf("the scraper did not make %d more scrapes of %s (%d failed scrapes so far, the last: %v)", scrapes, r.name, failures, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ledger is what was written into each logstore: the exact counts expected.
type ledger struct {
	c             sls.ClientInterface
	project       string
	logs, matches map[string]int
}

func newLedger(c sls.ClientInterface, project string) *ledger {
	return &ledger{c: c, project: project, logs: map[string]int{}, matches: map[string]int{}}
}

// put writes statuses into one shard of logstore and records them when counted says so.
func (l *ledger) put(t testing.TB, logstore string, shard int, counted bool, statuses ...string) {
	t.Helper()
	putLogs(t, l.c, l.project, logstore, shard, time.Now(), statuses...)
	if counted {
		l.logs[logstore] += len(statuses)
		for _, s := range statuses {
			if http5xx.MatchString(s) {
				l.matches[logstore]++
			}
		}
	}
}

// counts is what the page shows of a logstore: logs and matches summed over its shards.
func counts(m map[string]*dto.MetricFamily, logstore string) (logs, matches float64) {
	return sum(m, "sls_consumer_logs_total", "logstore="+logstore), sum(m, "sls_keyword_matches_total", "logstore="+logstore)
}

// waitExact waits until every logstore's counts on the page equal the ledger's.
func (l *ledger) waitExact(t testing.TB, r *exporterRun, timeout time.Duration, logstores ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, _ := scrape(t, r.base+"/metrics")
		var wrong []string
		for _, ls := range logstores {
			logs, matches := counts(m, ls)
			if logs != float64(l.logs[ls]) || matches != float64(l.matches[ls]) {
				wrong = append(wrong, fmt.Sprintf("%s: %v logs and %v matches counted, %d and %d written", ls, logs, matches, l.logs[ls], l.matches[ls]))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s:\n%s", timeout, strings.Join(wrong, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// groupsOnLogstores maps each logstore of project that has a consumer group
// named group in the emulator to true.
func groupsOnLogstores(t testing.TB, emu, project, group string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, ls := range emulatorState(t, emu) {
		for _, g := range ls.ConsumerGroups {
			if ls.Project == project && g.Name == group {
				out[ls.Logstore] = true
			}
		}
	}
	return out
}

// removeFault deletes one fault over the emulator's admin API.
func removeFault(t testing.TB, emu, id string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, emu+"/_slsemu/faults/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("removing fault %s: %s", id, resp.Status)
	}
}

// onlyConsumes fails unless the page's logstores are all among allowed.
func onlyConsumes(t testing.TB, r *exporterRun, allowed ...string) {
	t.Helper()
	m, _ := scrape(t, r.base+"/metrics")
	ok := map[string]bool{}
	for _, ls := range allowed {
		ok[ls] = true
	}
	for _, ls := range logstoresOnPage(m) {
		if !ok[ls] {
			t.Errorf("series of logstore %s, which no pattern selects (only %v should be consumed)", ls, allowed)
		}
	}
}

func TestDiscoveryFollowsLogstoresCreatedAndDeleted(t *testing.T) {
	began := time.Now()
	emu := startEmulator(t, discoveryWorldYAML())
	c := sdkClient(emu, discoveryEndpoint)
	l := newLedger(c, discoveryProject)
	// Logs already there: cursor_start is end, so they are not counted.
	l.put(t, "web-access", 0, false, "500", "500", "200")
	l.put(t, "web-static", 0, false, "503")
	// One refused pull of web-access, so that it has an error series too.
	injectFault(t, emu, `{"route":"PullLogs","project":"apps","logstore":"web-access","status":403,"code":"ReadQuotaExceed","times":1}`)
	// Requests of the consumer protocol on logstores never to be consumed
	// are counted (a latency of 1 µs changes nothing else).
	neverConsumed := []string{"web-test", "webapp", "filler-000", fmt.Sprintf("filler-%03d", discoveryFillers-1)}
	var counters []string
	for _, ls := range neverConsumed {
		for _, route := range []string{"CreateConsumerGroup", "ListConsumerGroup", "HeartBeat", "GetCheckpoint", "GetCursor", "PullLogs"} {
			counters = append(counters, injectFault(t, emu, `{"route":"`+route+`","project":"apps","logstore":"`+ls+`","latency":"1us"}`))
		}
	}

	// Listings are counted too: two requests each (pages of 500).
	listings := injectFault(t, emu, `{"route":"ListLogStores","project":"apps","latency":"1us"}`)

	sc := newPromScraper(t, time.Second)
	r := startExporterRun(t, sc, "discoverer", writeFile(t, "discovery.yml", discoveryConfig(emu)))
	held := func(m map[string]*dto.MetricFamily, ls string) float64 {
		return value(m, "sls_consumer_shards_held", "logstore="+ls+",project=apps,region=cn-hangzhou")
	}
	discovered := func(m map[string]*dto.MetricFamily) float64 {
		return value(m, "sls_discovery_logstores", "project=apps,region=cn-hangzhou")
	}
	// Every shard pulled once: from here on, what is written is counted.
	waitFor(t, 20*time.Second, "a successful pull of each shard of web-access and web-static", func() bool {
		m, _ := scrape(t, r.base+"/metrics")
		return len(m["sls_consumer_last_pull_timestamp_seconds"].GetMetric()) == 3 && held(m, "web-access") == 2 && held(m, "web-static") == 1
	})
	m, _ := scrape(t, r.base+"/metrics")
	if n := discovered(m); n != 2 {
		t.Errorf("sls_discovery_logstores = %v, want 2: web-access and web-static (web-test excluded, webapp and %d fillers not matched)", n, discoveryFillers)
	}
	onlyConsumes(t, r, "web-access", "web-static")
	l.put(t, "web-access", 0, true, "500", "200", "404")
	l.put(t, "web-access", 1, true, "502", "503")
	l.put(t, "web-static", 0, true, "200", "504")
	for _, ls := range neverConsumed {
		l.put(t, ls, 0, false, "500", "500", "500")
	}
	l.waitExact(t, r, 10*time.Second, "web-access", "web-static")

	// A logstore created while the exporter runs, as a client would, and
	// written into at once: it is read from its beginning, so logs written
	// before the exporter noticed it are counted too. It is created right
	// after a listing has read its last page, the worst moment: only the
	// next listing, one discovery interval later, can find it.
	h0, waitStart := faultHits(t, emu)[listings], time.Now()
	for {
		h := faultHits(t, emu)[listings]
		if h > h0 && h%2 == 0 {
			break
		}
		if time.Since(waitStart) > 5*discoveryInterval {
			t.Fatalf("no listing of the project for %s (%d requests so far)", 5*discoveryInterval, h)
		}
		time.Sleep(5 * time.Millisecond)
	}
	created := time.Now()
	if err := c.CreateLogStore(discoveryProject, "web-new", 1, 2, false, 16); err != nil {
		t.Fatal(err)
	}
	l.put(t, "web-new", 0, true, "500", "500", "200")
	l.put(t, "web-new", 1, true, "503", "404")
	written := time.Since(created)
	// And two that must not be consumed: excluded, and not matched.
	for _, ls := range []string{"web-new-test", "api-new"} {
		if err := c.CreateLogStore(discoveryProject, ls, 1, 1, false, 16); err != nil {
			t.Fatal(err)
		}
		l.put(t, ls, 0, false, "500")
	}
	var appeared time.Duration
	for {
		m, _ := scrape(t, r.base+"/metrics")
		if held(m, "web-new") >= 0 {
			appeared = time.Since(created)
			break
		}
		if time.Since(created) > 10*time.Second {
			t.Fatalf("web-new not consumed %s after its creation", time.Since(created))
		}
		time.Sleep(25 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "both shards of web-new held", func() bool {
		m, _ := scrape(t, r.base+"/metrics")
		return held(m, "web-new") == 2
	})
	holding := time.Since(created)
	l.waitExact(t, r, 10*time.Second, "web-new")
	t.Logf("web-new: its first logs written %s after its creation; its sls_consumer_shards_held appeared after %s, both shards held after %s, every log counted after %s (discovery_interval %s + allowance %s)",
		written.Round(time.Millisecond), appeared.Round(time.Millisecond), holding.Round(time.Millisecond), time.Since(created).Round(time.Millisecond), discoveryInterval, discoveryAllowance)
	if written >= appeared {
		t.Errorf("web-new's first logs were written %s after its creation, not before the exporter picked it up (%s): reading from its beginning is not shown", written, appeared)
	}
	if appeared > discoveryInterval+discoveryAllowance {
		t.Errorf("web-new was picked up %s after its creation, more than one discovery interval (%s) + %s", appeared.Round(time.Millisecond), discoveryInterval, discoveryAllowance)
	}
	l.put(t, "web-new", 1, true, "500", "200")
	l.put(t, "web-access", 1, true, "500")
	l.waitExact(t, r, 10*time.Second, "web-new", "web-access", "web-static")
	m, _ = scrape(t, r.base+"/metrics")
	if n := discovered(m); n != 3 {
		t.Errorf("sls_discovery_logstores = %v, want 3: web-access, web-static, web-new (web-test and web-new-test excluded, webapp and api-new not matched)", n)
	}
	onlyConsumes(t, r, "web-access", "web-static", "web-new")

	// A deleted logstore: every series of it goes, in every family.
	waitAllSeries(t, r, "web-access", 10*time.Second)
	deleted := time.Now()
	if err := c.DeleteLogStore(discoveryProject, "web-access"); err != nil {
		t.Fatal(err)
	}
	gone := waitSeriesGone(t, r, "web-access", deleted, 10*time.Second)
	t.Logf("web-access: every series gone %s after its deletion", gone.Round(time.Millisecond))
	staysGone(t, r, "web-access", 3, time.Second)
	m, _ = scrape(t, r.base+"/metrics")
	if n := discovered(m); n != 2 {
		t.Errorf("sls_discovery_logstores = %v after the delete, want 2: web-static, web-new", n)
	}
	l.put(t, "web-new", 0, true, "504")
	l.put(t, "web-static", 0, true, "500", "200")
	l.waitExact(t, r, 10*time.Second, "web-new", "web-static")

	// A failed listing changes nothing: the consumed logstores go on
	// counting exactly, one created meanwhile is not found yet, and every
	// failed listing is counted.
	errs := func(m map[string]*dto.MetricFamily) float64 {
		return value(m, "sls_discovery_errors_total", "code=InternalServerError,project=apps,region=cn-hangzhou")
	}
	// (The fault below would have to come first to refuse listings.)
	removeFault(t, emu, listings)
	listFault := injectFault(t, emu, `{"route":"ListLogStores","project":"apps","status":500,"code":"InternalServerError"}`)
	waitFor(t, 10*time.Second, "a failed listing counted", func() bool {
		m, _ := scrape(t, r.base+"/metrics")
		return errs(m) >= 1
	})
	if err := c.CreateLogStore(discoveryProject, "web-late", 1, 1, false, 16); err != nil {
		t.Fatal(err)
	}
	l.put(t, "web-late", 0, true, "500", "503", "200")
	m, _ = scrape(t, r.base+"/metrics")
	errsAtCreation := errs(m)
	l.put(t, "web-new", 0, true, "500", "200")
	l.put(t, "web-new", 1, true, "502")
	l.put(t, "web-static", 0, true, "503", "503")
	l.waitExact(t, r, 10*time.Second, "web-new", "web-static")
	waitFor(t, 10*time.Second, "two more failed listings", func() bool {
		m, _ := scrape(t, r.base+"/metrics")
		return errs(m) >= errsAtCreation+2
	})
	m, _ = scrape(t, r.base+"/metrics")
	if held(m, "web-new") != 2 || held(m, "web-static") != 1 || discovered(m) != 2 {
		t.Errorf("during failed listings: web-new holds %v shards (want 2), web-static %v (want 1), sls_discovery_logstores = %v (want 2)", held(m, "web-new"), held(m, "web-static"), discovered(m))
	}
	onlyConsumes(t, r, "web-static", "web-new")
	// Every failed listing, and only those, counted: the failed
	// ListLogStores requests (one per listing, its first page) are the fault's hits.
	var hits int
	var counted float64
	waitFor(t, 5*time.Second, "sls_discovery_errors_total to equal the refused listings", func() bool {
		hits = faultHits(t, emu)[listFault]
		m, _ := scrape(t, r.base+"/metrics")
		counted = errs(m)
		return counted == float64(hits)
	})
	t.Logf("sls_discovery_errors_total = %v after %d refused listings", counted, hits)
	removeFault(t, emu, listFault)
	l.waitExact(t, r, 10*time.Second, "web-late")
	waitFor(t, 5*time.Second, "sls_discovery_logstores back at 3", func() bool {
		m, _ := scrape(t, r.base+"/metrics")
		return discovered(m) == 3
	})
	l.put(t, "web-late", 0, true, "500")
	l.put(t, "web-static", 0, true, "500")
	l.waitExact(t, r, 10*time.Second, "web-late", "web-static", "web-new")
	m, _ = scrape(t, r.base+"/metrics")
	if got := errs(m); got != counted {
		t.Errorf("sls_discovery_errors_total = %v after the listings succeeded again, want it to have stayed at %v", got, counted)
	}

	// Never consumed: no series, no consumer group, no call of the
	// consumer protocol on any logstore the patterns do not select.
	onlyConsumes(t, r, "web-static", "web-new", "web-late")
	groups := groupsOnLogstores(t, emu, discoveryProject, discoveryGroup)
	if want := map[string]bool{"web-static": true, "web-new": true, "web-late": true}; fmt.Sprint(groups) != fmt.Sprint(want) {
		t.Errorf("consumer group %s exists on %v; want exactly on %v", discoveryGroup, groups, want)
	}
	hitsByID := faultHits(t, emu)
	for _, id := range counters {
		if hitsByID[id] != 0 {
			t.Errorf("fault %s: %d consumer requests on a logstore never to be consumed", id, hitsByID[id])
		}
	}
	t.Logf("took %s", time.Since(began).Round(time.Millisecond))
}
