// The /metrics handler: the hot families written directly in the text format, the rest through client_golang, any other format through promhttp.
package collector

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Gatherer gathers every family: others and the hot ones (slow but
// complete, for tests and tools).
func (m *Metrics) Gatherer(others ...prometheus.Gatherer) prometheus.Gatherers {
	return append(prometheus.Gatherers(slices.Clone(others)), m.hotRegistry)
}

// scrapeBuffer is kept between scrapes (a sync.Pool would lose it at every
// GC, and the page of thousands of shards is megabytes); a concurrent scrape
// allocates its own.
type scrapeBuffer struct {
	mu  sync.Mutex
	buf []byte
}

// get returns the kept buffer and true, or nil and false while another
// scrape uses it.
func (b *scrapeBuffer) get() ([]byte, bool) {
	if b.mu.TryLock() {
		return b.buf[:0], true
	}
	return nil, false
}

func (b *scrapeBuffer) put(buf []byte, locked bool) {
	if !locked {
		return
	}
	if cap(buf) <= 64<<20 {
		b.buf = buf[:0]
	}
	b.mu.Unlock()
}

// Handler serves the metrics page. Prometheus asks for the text format
// (0.0.4): the hot families are then written from the counters and states
// directly; any other format (protobuf, OpenMetrics) goes through promhttp
// with everything gathered. The name[] filter works on both paths.
func (m *Metrics) Handler(others prometheus.Gatherer, opts promhttp.HandlerOpts) http.Handler {
	slow := promhttp.HandlerFor(m.Gatherer(others), opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.Negotiate(r.Header)
		if format.FormatType() != expfmt.TypeTextPlain {
			slow.ServeHTTP(w, r)
			return
		}
		names := r.URL.Query()["name[]"]
		want := func(name string) bool { return len(names) == 0 || slices.Contains(names, name) }

		families, err := others.Gather()
		if err != nil {
			if opts.ErrorLog != nil {
				opts.ErrorLog.Println("error gathering metrics:", err)
			}
			if opts.ErrorHandling == promhttp.HTTPErrorOnError {
				http.Error(w, "An error has occurred while gathering metrics:\n\n"+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		kept, locked := m.scrapeBuf.get()
		out := bytes.NewBuffer(m.appendHot(kept, want))
		enc := expfmt.NewEncoder(out, format)
		for _, mf := range families {
			if want(mf.GetName()) {
				if err := enc.Encode(mf); err != nil && opts.ErrorLog != nil {
					opts.ErrorLog.Println("error encoding metric family", mf.GetName()+":", err)
				}
			}
		}
		body := out.Bytes()
		defer m.scrapeBuf.put(body, locked)

		h := w.Header()
		h.Set("Content-Type", string(format))
		if !opts.DisableCompression && acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			h.Del("Content-Length")
			gz := gzipWriters.Get().(*gzip.Writer)
			gz.Reset(w)
			_, _ = gz.Write(body)
			_ = gz.Close()
			gzipWriters.Put(gz)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
}

// acceptsGzip reports whether the request accepts gzip (q > 0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.TrimSpace(params)
		return !strings.HasPrefix(q, "q=0") || strings.HasPrefix(q, "q=0.") && strings.Trim(q[4:], "0") != ""
	}
	return false
}
