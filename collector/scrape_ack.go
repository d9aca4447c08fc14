// Scrape acknowledgement: which counts a Prometheus scrape has served, so checkpoints never run ahead of them.
package collector

import (
	"net/http"
	"sync/atomic"
	"time"
)

// ScrapeTimeoutHeader is sent by Prometheus with every scrape. Only requests
// carrying it acknowledge counts: a curl, the status page or a benchmark's
// poller must not let checkpoints move past what Prometheus has stored.
const ScrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// ScrapeAcks numbers scrapes in epochs. A consumer reads Epoch right after it
// has added a batch's counts; those counts are acknowledged once Acked
// reaches that epoch, i.e. once a scrape that gathered after them was served.
type ScrapeAcks struct {
	epoch   atomic.Uint64 // current epoch; a scrape advances it before gathering
	acked   atomic.Uint64 // counts recorded at an epoch ≤ acked were served
	lastAck atomic.Int64  // unix nanoseconds of the last acknowledging scrape
	served  atomic.Uint64 // acknowledging scrapes served
}

// NewScrapeAcks starts at epoch 1 with nothing acknowledged.
func NewScrapeAcks() *ScrapeAcks {
	a := &ScrapeAcks{}
	a.epoch.Store(1)
	return a
}

// Epoch is the current epoch. Read it after the counts it labels are added:
// a scrape that advances the epoch past it gathers after those counts.
func (a *ScrapeAcks) Epoch() uint64 { return a.epoch.Load() }

// Acked is the newest epoch whose counts a served scrape included.
func (a *ScrapeAcks) Acked() uint64 { return a.acked.Load() }

// LastAck is when a scrape last acknowledged counts (zero if never).
func (a *ScrapeAcks) LastAck() time.Time {
	if n := a.lastAck.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Served counts the scrapes that acknowledged counts.
func (a *ScrapeAcks) Served() uint64 { return a.served.Load() }

// begin opens a scrape: everything recorded at the returned epoch or before
// is in the gather that follows.
func (a *ScrapeAcks) begin() uint64 { return a.epoch.Add(1) - 1 }

// done acknowledges a served scrape that began at epoch.
func (a *ScrapeAcks) done(epoch uint64) {
	for {
		cur := a.acked.Load()
		if cur >= epoch || a.acked.CompareAndSwap(cur, epoch) {
			break
		}
	}
	a.lastAck.Store(time.Now().UnixNano())
	a.served.Add(1)
}

// Handler wraps the metrics handler: a complete GET with Prometheus's
// scrape header and no name[] filter acknowledges every count gathered.
func (a *ScrapeAcks) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get(ScrapeTimeoutHeader) == "" || r.URL.Query().Has("name[]") {
			next.ServeHTTP(w, r)
			return
		}
		epoch := a.begin()
		rec := &ackWriter{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if (rec.status == 0 || rec.status == http.StatusOK) && rec.err == nil && r.Context().Err() == nil {
			a.done(epoch)
		}
	})
}

// ackWriter notes the status and whether writing the body failed.
type ackWriter struct {
	http.ResponseWriter
	status int
	err    error
}

func (w *ackWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *ackWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *ackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
