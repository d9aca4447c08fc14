// Package statuspage serves the exporter's HTML status page, rendered from the same gathered metric families as /metrics.
package statuspage

import (
	"bytes"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"
)

//go:embed status.html
var pageSource string

var pageTemplate = template.Must(template.New("status").Funcs(funcs).Parse(pageSource))

// BuildInfo is what the page says about the binary.
type BuildInfo struct {
	Version, Revision, Branch, BuildUser, BuildDate, GoVersion string
}

// CurrentBuild is this binary's build info as github.com/prometheus/common/version
// holds it (set by the Makefile's -X flags; the same values as
// sls_keyword_exporter_build_info).
func CurrentBuild() BuildInfo {
	return BuildInfo{
		Version:   version.Version,
		Revision:  version.GetRevision(),
		Branch:    version.Branch,
		BuildUser: version.BuildUser,
		BuildDate: version.BuildDate,
		GoVersion: runtime.Version(),
	}
}

// Options are the page's optional settings.
type Options struct {
	// MetricsPath is where the page links for /metrics (default "/metrics").
	MetricsPath string
	// Logger receives gathering errors (default: discarded).
	Logger *slog.Logger
	// Now is the render time, for tests (default time.Now).
	Now func() time.Time
}

// Page is the status page handler. It gathers on each request and keeps
// nothing between requests; requests render one at a time.
type Page struct {
	gatherer prometheus.Gatherer
	build    BuildInfo
	opts     Options
	// one is a token: at most one render gathers at a time, so a page left
	// open in many tabs costs no more than one.
	one chan struct{}
}

// New returns the page for the families of g, normally
// collector.Metrics.Gatherer(registry): the page then shows exactly the
// values /metrics serves.
func New(g prometheus.Gatherer, build BuildInfo, opts Options) *Page {
	if opts.MetricsPath == "" {
		opts.MetricsPath = "/metrics"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Page{gatherer: g, build: build, opts: opts, one: make(chan struct{}, 1)}
}

// Refresh bounds for ?refresh=N (seconds): the page reloads itself with a
// meta refresh, no script.
const (
	minRefresh = 5
	maxRefresh = 3600
)

// ServeHTTP renders the page for GET and HEAD.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Only GET and HEAD requests allowed", http.StatusMethodNotAllowed)
		return
	}
	select {
	case p.one <- struct{}{}:
		defer func() { <-p.one }()
	case <-r.Context().Done():
		return
	}
	body, err := p.render(refreshParam(r))
	if err != nil {
		p.opts.Logger.Error("Error rendering the status page", "err", err)
		http.Error(w, "Error rendering the status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func (p *Page) render(refresh int) ([]byte, error) {
	families, err := p.gatherer.Gather()
	v := buildView(families, p.opts.Now())
	if err != nil {
		// Gatherers return what they could gather with the error: show both.
		p.opts.Logger.Warn("Error gathering metrics for the status page", "err", err)
		v.GatherError = err.Error()
	}
	v.Build = p.build
	v.MetricsPath = p.opts.MetricsPath
	v.Refresh = refresh
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// refreshParam is ?refresh=N clamped to [minRefresh, maxRefresh], or 0.
func refreshParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("refresh"))
	if err != nil || n <= 0 {
		return 0
	}
	return min(max(n, minRefresh), maxRefresh)
}
