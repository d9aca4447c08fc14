// The status page in headless Chromium: its figures equal a /metrics snapshot of the same moment, and a broken target shows DOWN with its error code.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	dto "github.com/prometheus/client_model/go"
)

// Environment of TestStatusPage (both set by `make screenshot`).
const (
	// screenshotEnv names a PNG file the test writes the page into
	// (relative paths are from the repository root).
	screenshotEnv = "STATUS_PAGE_SCREENSHOT"
	// exporterEnv names the exporter binary to run instead of the one built
	// for the tests (the Makefile's has its version stamped in).
	exporterEnv = "STATUS_PAGE_EXPORTER"
	// chromiumEnv overrides where Chromium is.
	chromiumEnv = "CHROMIUM"
)

// statusPageConfig reads two good logstores and one that does not exist.
func statusPageConfig(emu string) string {
	return fmt.Sprintf(`consumer_group: status-page-cg
consumer_name: status-page
cursor_start: begin
heartbeat_interval: 1s
consumer_timeout: 3s
commit_interval: 1s
credentials:
  access_key_id: %[1]s
  access_key_secret: %[2]s
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %[3]s
    projects: [{name: project1, logstores: [logstore1]}]
  - name: cn-beijing
    endpoint: cn-beijing.log.aliyuncs.com
    proxy_url: %[3]s
    projects: [{name: project2, logstores: [logstore2]}]
  - name: cn-qingdao
    endpoint: cn-qingdao.log.aliyuncs.com
    proxy_url: %[3]s
    projects: [{name: project3, logstores: [no_such_logstore]}]
rules:
  - name: http_5xx
    field: status
    regex: '^5\d{2}$'
  - name: not_found
    field: status
    regex: '^404$'
  - name: markup
    field: status
    regex: '<'
`, testAK, testSecret, emu)
}

// chromiumPath is the browser to drive, or "" when there is none.
func chromiumPath() string {
	if p := os.Getenv(chromiumEnv); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	p, _ := exec.LookPath("chromium")
	return p
}

// pageData is what the test reads off the rendered page (the script's keys
// are these field names).
type pageData struct {
	Title, Failing string
	Links          []string
	Build, Reload  map[string]string
	Rows           []struct {
		Region, Project, Logstore, RowClass   string
		Up, StateText, StateClass, StateColor string
		Codes, Held, Total, ShardsText        string
		Lag, LastPull, Logs                   string
		Shards                                []struct{ ID, Lag, LastPull, Logs string }
		Errors                                []struct{ Operation, Code, Count, Text string }
		Rules                                 []struct {
			Rule, Field, Matches, SampleTs, CountText string
			Sample                                    *string
			SampleChildren                            int
		}
	}
}

// extractJS reads the page's cells through their data- attributes and texts.
const extractJS = `(() => {
  const text = el => el ? el.textContent : "";
  const rows = [...document.querySelectorAll("tbody.logstore")].map(tr => {
    const cell = t => tr.querySelector('[data-test="' + t + '"]');
    const badge = cell("state").querySelector(".state");
    return {
      Region: tr.dataset.region, Project: tr.dataset.project, Logstore: tr.dataset.logstore,
      RowClass: tr.className, Up: cell("state").dataset.up,
      StateText: text(badge), StateClass: badge.className, StateColor: getComputedStyle(badge).backgroundColor,
      Codes: text(cell("state").querySelector(".codes")),
      Held: cell("shards").dataset.held, Total: cell("shards").dataset.total, ShardsText: text(cell("shards")),
      Lag: cell("lag").dataset.value, LastPull: cell("last-pull").dataset.value, Logs: cell("logs").dataset.value,
      Shards: [...tr.querySelectorAll("tr[data-shard]")].map(s => ({ID: s.dataset.shard, Lag: s.dataset.lag, LastPull: s.dataset.lastPull, Logs: s.dataset.logs})),
      Errors: [...tr.querySelectorAll("li[data-operation]")].map(e => ({Operation: e.dataset.operation, Code: e.dataset.code, Count: e.dataset.count, Text: e.textContent})),
      Rules: [...tr.querySelectorAll("li[data-rule]")].map(r => {
        const code = r.querySelector("code.sample");
        return {Rule: r.dataset.rule, Field: r.dataset.field, Matches: r.dataset.matches, SampleTs: r.dataset.sampleTs,
          Sample: code ? code.textContent : null, SampleChildren: code ? code.children.length : 0, CountText: text(r.querySelector(".count"))};
      }),
    };
  });
  return {Title: document.title, Links: [...document.querySelectorAll("nav a")].map(a => a.getAttribute("href")),
    Build: {...document.querySelector('[data-test="version"]').dataset}, Reload: {...document.querySelector("#reload").dataset},
    Failing: text(document.querySelector("#failing")), Rows: rows};
})()`

// figures flattens the page to "region/project/logstore/what" → value, in
// the exposition's number format.
func (p *pageData) figures() map[string]string {
	out := map[string]string{}
	for _, r := range p.Rows {
		k := r.Region + "/" + r.Project + "/" + r.Logstore + "/"
		out[k+"up"], out[k+"held"], out[k+"total"] = r.Up, r.Held, r.Total
		out[k+"lag"], out[k+"lastPull"], out[k+"logs"] = r.Lag, r.LastPull, r.Logs
		for _, s := range r.Shards {
			out[k+"shard/"+s.ID+"/lag"], out[k+"shard/"+s.ID+"/lastPull"], out[k+"shard/"+s.ID+"/logs"] = s.Lag, s.LastPull, s.Logs
		}
		for _, e := range r.Errors {
			out[k+"error/"+e.Operation+"/"+e.Code] = e.Count
		}
		for _, ru := range r.Rules {
			rk := k + "rule/" + ru.Rule + "/" + ru.Field + "/"
			out[rk+"matches"] = ru.Matches
			if ru.Sample != nil {
				out[rk+"sample"] = *ru.Sample
			}
			if ru.SampleTs != "" {
				out[rk+"sampleTs"] = ru.SampleTs
			}
		}
	}
	return out
}

// metricFigures computes the same flattening from a parsed /metrics page,
// independently of the status page's code.
func metricFigures(families map[string]*dto.MetricFamily) map[string]string {
	out := map[string]string{}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	agg := map[string]float64{}
	aggregate := func(key string, v float64, f func(old, v float64) float64) {
		if old, ok := agg[key]; ok {
			v = f(old, v)
		}
		agg[key] = v
	}
	sumF := func(a, b float64) float64 { return a + b }
	for name, f := range families {
		for _, m := range f.Metric {
			l := map[string]string{}
			for _, p := range m.Label {
				l[p.GetName()] = p.GetValue()
			}
			if l["logstore"] == "" {
				continue
			}
			k := l["region"] + "/" + l["project"] + "/" + l["logstore"] + "/"
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			switch name {
			case "sls_up":
				out[k+"up"] = num(v)
			case "sls_consumer_shards_held":
				out[k+"held"] = num(v)
			case "sls_logstore_shards":
				out[k+"total"] = num(v)
			case "sls_consumer_lag_seconds":
				out[k+"shard/"+l["shard"]+"/lag"] = num(v)
				aggregate(k+"lag", v, math.Max)
			case "sls_consumer_last_pull_timestamp_seconds":
				out[k+"shard/"+l["shard"]+"/lastPull"] = num(v)
				aggregate(k+"lastPull", v, math.Min)
			case "sls_consumer_logs_total":
				out[k+"shard/"+l["shard"]+"/logs"] = num(v)
				aggregate(k+"logs", v, sumF)
			case "sls_keyword_matches_total":
				aggregate(k+"rule/"+l["rule"]+"/"+l["field"]+"/matches", v, sumF)
			case "sls_keyword_last_match_info":
				out[k+"rule/"+l["rule"]+"/"+l["field"]+"/sample"] = l["sample"]
			case "sls_keyword_last_match_timestamp_seconds":
				out[k+"rule/"+l["rule"]+"/"+l["field"]+"/sampleTs"] = num(v)
			case "sls_consumer_errors_total":
				out[k+"error/"+l["operation"]+"/"+l["code"]] = num(v)
			}
		}
	}
	for k, v := range agg {
		out[k] = num(v)
	}
	return out
}

// compareSnapshot checks the page against /metrics scraped just before and
// just after it. Last-pull times move between the two and must lie between
// them; anything else must equal both (absent is ""). stable is false when some other
// figure changed between the two scrapes (then the caller tries again).
func compareSnapshot(page, before, after map[string]string) (problems []string, stable bool) {
	stable = true
	keys := map[string]bool{}
	for _, m := range []map[string]string{page, before, after} {
		for k := range m {
			keys[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		b, a, p := before[k], after[k], page[k]
		if strings.HasSuffix(k, "lastPull") {
			bf, errB := strconv.ParseFloat(b, 64)
			af, errA := strconv.ParseFloat(a, 64)
			pf, errP := strconv.ParseFloat(p, 64)
			if b == p || a == p || errB == nil && errA == nil && errP == nil && bf <= pf && pf <= af {
				continue
			}
			problems = append(problems, fmt.Sprintf("%s = %q on the page, not within /metrics' %q…%q", k, p, b, a))
			continue
		}
		if b != a {
			stable = false
			continue
		}
		if p != b {
			problems = append(problems, fmt.Sprintf("%s = %q on the page, %q on /metrics", k, p, b))
		}
	}
	return problems, stable
}

func TestStatusPage(t *testing.T) {
	chromium := chromiumPath()
	if chromium == "" {
		t.Skipf("Chromium not found (looked at $%s, /usr/bin/chromium and PATH): run scripts/install-test-deps.sh (Debian package chromium), as `make test` does", chromiumEnv)
	}
	exporter := "sls_keyword_exporter"
	if p := os.Getenv(exporterEnv); p != "" {
		exporter, _ = filepath.Abs(p)
	}

	emu := startEmulator(t, seedWorldYAML)
	addr := freeAddr(t)
	start(t, nil, exporter, "--config.file="+writeFile(t, "exporter.yml", statusPageConfig(emu)), "--web.listen-address="+addr)
	base := "http://" + addr
	waitHTTP(t, base+"/-/ready", 20*time.Second)

	hz, bj := sdkClient(emu, "cn-hangzhou.log.aliyuncs.com"), sdkClient(emu, "cn-beijing.log.aliyuncs.com")
	now := time.Now()
	putLogs(t, hz, "project1", "logstore1", 0, now.Add(-90*time.Second), "500", "500", "200", "404")
	putLogs(t, hz, "project1", "logstore1", 1, now.Add(-30*time.Second), "503", "200")
	putLogs(t, bj, "project2", "logstore2", 0, now.Add(-20*time.Second), "502", `<b onmouseover="alert(1)">oops</b>`)
	putLogs(t, bj, "project2", "logstore2", 1, now.Add(-5*time.Second), "200", "404", "404")
	broken := "cn-qingdao/project3/no_such_logstore/"
	waitFor(t, 20*time.Second, "every log read, both good logstores holding 2 shards, the broken one down with errors", func() bool {
		m, _ := scrape(t, base+"/metrics")
		f := metricFigures(m)
		return f["cn-hangzhou/project1/logstore1/logs"] == "6" && f["cn-beijing/project2/logstore2/logs"] == "5" &&
			f["cn-hangzhou/project1/logstore1/held"] == "2" && f["cn-beijing/project2/logstore2/held"] == "2" &&
			f["cn-hangzhou/project1/logstore1/lag"] == "0" && f["cn-beijing/project2/logstore2/lag"] == "0" &&
			f[broken+"up"] == "0" && sum(m, "sls_consumer_errors_total", "logstore=no_such_logstore") > 0
	})

	// A fresh profile in a folder of our own, removed after Chromium has
	// stopped (its children may still write for a moment).
	profile, err := os.MkdirTemp("", "status-page-chromium")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		// The network is closed: nothing but the page may be fetched.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1200, 900)); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}

	var page *pageData
	var before, after map[string]*dto.MetricFamily
	for attempt := 1; ; attempt++ {
		before, _ = scrape(t, base+"/metrics")
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#logstores")); err != nil {
			t.Fatal(err)
		}
		page, err = chromedp.Run(ctx, chromedp.Evaluate[*pageData](extractJS))
		if err != nil {
			t.Fatal(err)
		}
		after, _ = scrape(t, base+"/metrics")
		problems, stable := compareSnapshot(page.figures(), metricFigures(before), metricFigures(after))
		for _, p := range problems {
			t.Error(p)
		}
		if len(problems) > 0 {
			t.FailNow()
		}
		if stable {
			t.Logf("attempt %d: %d figures equal /metrics", attempt, len(page.figures()))
			break
		}
		if attempt == 10 {
			t.Fatal("/metrics kept changing between the scrapes around the page")
		}
		time.Sleep(300 * time.Millisecond)
	}

	// The rows: region, then project and logstore, in name order; the good
	// ones up and reading, the broken one visibly DOWN with its error code.
	var order []string
	for _, r := range page.Rows {
		order = append(order, r.Region+"/"+r.Project+"/"+r.Logstore)
	}
	if want := []string{"cn-beijing/project2/logstore2", "cn-hangzhou/project1/logstore1", "cn-qingdao/project3/no_such_logstore"}; !slices.Equal(order, want) {
		t.Fatalf("rows %v, want %v", order, want)
	}
	for _, r := range page.Rows[:2] {
		if r.StateText != "UP" || r.StateClass != "state up" || r.ShardsText != "2 / 2" || len(r.Errors) != 0 {
			t.Errorf("%s: state %q (%s), shards %q, errors %v", r.Logstore, r.StateText, r.StateClass, r.ShardsText, r.Errors)
		}
	}
	down := page.Rows[2]
	var codes []string
	for _, e := range down.Errors {
		codes = append(codes, e.Code)
		if want := e.Operation + " " + e.Code + " ×" + e.Count; e.Text != want {
			t.Errorf("error cell %q, want %q", e.Text, want)
		}
	}
	if down.StateText != "DOWN" || down.StateClass != "state down" || down.RowClass != "logstore down" ||
		down.StateColor != "rgb(198, 40, 40)" || len(codes) == 0 || !strings.Contains(down.Codes, codes[0]) {
		t.Errorf("broken target: state %q (%s, %s, row %s), codes %q, errors %v", down.StateText, down.StateClass, down.StateColor, down.RowClass, down.Codes, down.Errors)
	}
	if !strings.Contains(page.Failing, "cn-qingdao / project3 / no_such_logstore: DOWN") || !strings.HasPrefix(page.Title, "(1 failing)") {
		t.Errorf("failing section %q, title %q", page.Failing, page.Title)
	}
	t.Logf("broken target: %s %s", down.StateText, down.Codes)

	// Matches and last samples, as written; the markup in a sample is text.
	wantRules := map[string]struct{ matches, sample string }{
		"logstore1/http_5xx":  {"3", "path=/e2e status=503"},
		"logstore1/not_found": {"1", "path=/e2e status=404"},
		"logstore1/markup":    {"0", ""},
		"logstore2/http_5xx":  {"1", "path=/e2e status=502"},
		"logstore2/not_found": {"2", "path=/e2e status=404"},
		"logstore2/markup":    {"1", `path=/e2e status="<b onmouseover=\"alert(1)\">oops</b>"`},
	}
	for _, r := range page.Rows[:2] {
		for _, ru := range r.Rules {
			want, ok := wantRules[r.Logstore+"/"+ru.Rule]
			sample := ""
			if ru.Sample != nil {
				sample = *ru.Sample
			}
			if !ok || ru.Matches != want.matches || ru.CountText != want.matches || sample != want.sample || ru.SampleChildren != 0 {
				t.Errorf("%s rule %s: matches %q (shown %q), sample %q (%d child elements), want %+v", r.Logstore, ru.Rule, ru.Matches, ru.CountText, sample, ru.SampleChildren, want)
			}
		}
		if len(r.Rules) != 3 {
			t.Errorf("%s: %d rules on the page, want 3", r.Logstore, len(r.Rules))
		}
	}

	// Build and reload state as /metrics has them; the links work.
	for _, m := range before["sls_keyword_exporter_build_info"].GetMetric() {
		for _, l := range m.Label {
			if want, ok := page.Build[l.GetName()]; ok && want != l.GetValue() {
				t.Errorf("build %s: page %q, /metrics %q", l.GetName(), want, l.GetValue())
			}
		}
	}
	if _, ok := page.Build["branch"]; !ok || page.Build["revision"] == "" || page.Build["goversion"] == "" {
		t.Errorf("build info on the page: %v", page.Build)
	}
	if page.Reload["ok"] != "1" || page.Reload["ok"] != fmt.Sprint(value(before, "sls_keyword_exporter_config_last_reload_successful", "")) {
		t.Errorf("reload state %v", page.Reload)
	}
	if !slices.Equal(page.Links, []string{"/metrics", "/-/healthy", "/-/ready"}) {
		t.Errorf("links %v", page.Links)
	}
	for _, path := range append(page.Links, "/nowhere") {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want := map[bool]int{true: 404, false: 200}[path == "/nowhere"]; resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	if out := os.Getenv(screenshotEnv); out != "" {
		writeScreenshot(t, ctx, out)
	}
}

// writeScreenshot saves the whole page, logstore1's shards opened, as a
// recompressed PNG 1200 pixels wide.
func writeScreenshot(t *testing.T, ctx context.Context, out string) {
	if !filepath.IsAbs(out) {
		out = filepath.Join("..", out) // go test runs in e2e/
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('tbody[data-logstore="logstore1"] details').open = true`)); err != nil {
		t.Fatal(err)
	}
	// The page grew: let it lay out again before its size is measured.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`tbody[data-logstore="logstore1"] table.shards`), chromedp.Sleep(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %dx%d, %d bytes", out, img.Bounds().Dx(), img.Bounds().Dy(), buf.Len())
}
