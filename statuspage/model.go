// The page's view: gathered metric families grouped by region, project and logstore, with nothing computed from any other source.
package statuspage

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The families the page reads, by name: the same ones /metrics serves.
const (
	famUp             = "sls_up"
	famShardsHeld     = "sls_consumer_shards_held"
	famReadonlyHeld   = "sls_consumer_readonly_shards_held"
	famLogstoreShards = "sls_logstore_shards"
	famGroupTimeout   = "sls_consumer_group_timeout_seconds"
	famLag            = "sls_consumer_lag_seconds"
	famLastPull       = "sls_consumer_last_pull_timestamp_seconds"
	famLogs           = "sls_consumer_logs_total"
	famBytes          = "sls_consumer_bytes_total"
	famMatches        = "sls_keyword_matches_total"
	famLastMatchInfo  = "sls_keyword_last_match_info"
	famLastMatchTime  = "sls_keyword_last_match_timestamp_seconds"
	famErrors         = "sls_consumer_errors_total"
	famCanary         = "sls_canary_latency_seconds"
	famUnscraped      = "sls_consumer_unscraped_commits_total"
	famReloadOK       = "sls_keyword_exporter_config_last_reload_successful"
	famReloadTime     = "sls_keyword_exporter_config_last_reload_success_timestamp_seconds"
	famLastScrapeAck  = "sls_keyword_exporter_last_scrape_acknowledged_timestamp_seconds"
	famScrapesAcked   = "sls_keyword_exporter_scrapes_acknowledged_total"
)

// A logstore's state: sls_up 1, sls_up 0, or no sls_up series.
const (
	stateUp      = "up"
	stateDown    = "down"
	stateUnknown = "unknown"
)

// value is a sample that may be absent from the families.
type value struct {
	V  float64
	OK bool
}

// Raw is the value as the text exposition writes it ("" when absent), for
// the data- attributes a test compares with /metrics.
func (v value) Raw() string {
	if !v.OK {
		return ""
	}
	return strconv.FormatFloat(v.V, 'g', -1, 64)
}

func (v *value) add(x float64) { v.V += x; v.OK = true }

func (v *value) set(x float64) { v.V = x; v.OK = true }

// view is everything the template shows.
type view struct {
	Build       BuildInfo
	Now         time.Time
	MetricsPath string
	Refresh     int
	GatherError string

	ReloadOK        value // 1 or 0
	ReloadTime      value
	LastScrapeAck   value
	ScrapesAcked    value
	Regions         []*region
	Failing         []*logstore // not up, in page order
	Logstores, Up   int
	Down, Unknown   int
	ShardsHeld      value
	LogstoreShards  value
	MaxLag          value
	TotalErrorCount value
}

type region struct {
	Name      string
	Logstores []*logstore
	Failing   int // logstores not up
}

type logstore struct {
	Region, Project, Name string

	Up             value
	ShardsHeld     value
	ReadonlyHeld   value
	LogstoreShards value
	GroupTimeout   value
	Canary         value
	Unscraped      value
	Logs           value
	Bytes          value

	Shards []*shard
	Errors []*errorCount
	Rules  []*rule

	MaxLag     value
	OldestPull value // the oldest last pull among held shards that have one
	NeverPull  int   // held shards with no successful pull yet
	ErrorTotal value
}

type shard struct {
	ID       string
	Lag      value
	LastPull value
	Logs     value
	Bytes    value
	Matches  value // over every rule
}

type errorCount struct {
	Operation, Code string
	Count           float64
}

type rule struct {
	Name, Field string
	Matches     value // summed over the logstore's shards
	Sample      string
	HasSample   bool
	SampleTime  value
}

// State is "up", "down" or "unknown" (no sls_up series).
func (l *logstore) State() string {
	switch {
	case !l.Up.OK:
		return stateUnknown
	case l.Up.V == 1:
		return stateUp
	}
	return stateDown
}

// gauge is the per-logstore value of family name.
func (l *logstore) gauge(name string) *value {
	switch name {
	case famUp:
		return &l.Up
	case famShardsHeld:
		return &l.ShardsHeld
	case famReadonlyHeld:
		return &l.ReadonlyHeld
	case famLogstoreShards:
		return &l.LogstoreShards
	case famGroupTimeout:
		return &l.GroupTimeout
	case famCanary:
		return &l.Canary
	}
	return &l.Unscraped
}

// Codes lists the error codes counted for the logstore, most counted first.
func (l *logstore) Codes() []string {
	byCode := map[string]float64{}
	for _, e := range l.Errors {
		byCode[e.Code] += e.Count
	}
	codes := make([]string, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	slices.SortFunc(codes, func(a, b string) int {
		return cmp.Or(cmp.Compare(byCode[b], byCode[a]), cmp.Compare(a, b))
	})
	return codes
}

type targetKey struct{ region, project, logstore string }

// buildView groups the families; now is the render time.
func buildView(families []*dto.MetricFamily, now time.Time) *view {
	v := &view{Now: now}
	stores := map[targetKey]*logstore{}
	shards := map[targetKey]map[string]*shard{}
	rules := map[targetKey]map[[2]string]*rule{}
	errs := map[targetKey]map[[2]string]*errorCount{}

	get := func(m *dto.Metric) (*logstore, targetKey, bool) {
		k := targetKey{label(m, "region"), label(m, "project"), label(m, "logstore")}
		if k.logstore == "" {
			return nil, k, false
		}
		l, ok := stores[k]
		if !ok {
			l = &logstore{Region: k.region, Project: k.project, Name: k.logstore}
			stores[k] = l
		}
		return l, k, true
	}
	getShard := func(m *dto.Metric) *shard {
		_, k, ok := get(m)
		if !ok {
			return nil
		}
		id := label(m, "shard")
		byID := shards[k]
		if byID == nil {
			byID = map[string]*shard{}
			shards[k] = byID
		}
		s, ok := byID[id]
		if !ok {
			s = &shard{ID: id}
			byID[id] = s
		}
		return s
	}
	getRule := func(m *dto.Metric) *rule {
		_, k, ok := get(m)
		if !ok {
			return nil
		}
		key := [2]string{label(m, "rule"), label(m, "field")}
		byRule := rules[k]
		if byRule == nil {
			byRule = map[[2]string]*rule{}
			rules[k] = byRule
		}
		r, ok := byRule[key]
		if !ok {
			r = &rule{Name: key[0], Field: key[1]}
			byRule[key] = r
		}
		return r
	}

	for _, f := range families {
		for _, m := range f.GetMetric() {
			x := sampleValue(m)
			switch f.GetName() {
			case famUp, famShardsHeld, famReadonlyHeld, famLogstoreShards, famGroupTimeout, famCanary, famUnscraped:
				if l, _, ok := get(m); ok {
					l.gauge(f.GetName()).set(x)
				}
			case famLag, famLastPull, famLogs, famBytes:
				s := getShard(m)
				if s == nil {
					continue
				}
				switch f.GetName() {
				case famLag:
					s.Lag.set(x)
				case famLastPull:
					s.LastPull.set(x)
				case famLogs:
					s.Logs.set(x)
				case famBytes:
					s.Bytes.set(x)
				}
			case famMatches:
				if s := getShard(m); s != nil {
					s.Matches.add(x)
				}
				if r := getRule(m); r != nil {
					r.Matches.add(x)
				}
			case famLastMatchInfo:
				if r := getRule(m); r != nil {
					r.Sample, r.HasSample = label(m, "sample"), true
				}
			case famLastMatchTime:
				if r := getRule(m); r != nil {
					r.SampleTime.set(x)
				}
			case famErrors:
				_, k, ok := get(m)
				if !ok {
					continue
				}
				key := [2]string{label(m, "operation"), label(m, "code")}
				if errs[k] == nil {
					errs[k] = map[[2]string]*errorCount{}
				}
				e, ok := errs[k][key]
				if !ok {
					e = &errorCount{Operation: key[0], Code: key[1]}
					errs[k][key] = e
				}
				e.Count += x
			case famReloadOK:
				v.ReloadOK.set(x)
			case famReloadTime:
				v.ReloadTime.set(x)
			case famLastScrapeAck:
				v.LastScrapeAck.set(x)
			case famScrapesAcked:
				v.ScrapesAcked.set(x)
			}
		}
	}

	byRegion := map[string]*region{}
	for k, l := range stores {
		for _, s := range shards[k] {
			l.Shards = append(l.Shards, s)
			if s.Lag.OK && (!l.MaxLag.OK || s.Lag.V > l.MaxLag.V) {
				l.MaxLag.set(s.Lag.V)
			}
			switch {
			case !s.LastPull.OK:
				if s.Lag.OK { // held: it has a lag series
					l.NeverPull++
				}
			case !l.OldestPull.OK || s.LastPull.V < l.OldestPull.V:
				l.OldestPull.set(s.LastPull.V)
			}
			if s.Logs.OK {
				l.Logs.add(s.Logs.V)
			}
			if s.Bytes.OK {
				l.Bytes.add(s.Bytes.V)
			}
		}
		slices.SortFunc(l.Shards, func(a, b *shard) int { return compareNumeric(a.ID, b.ID) })
		for _, r := range rules[k] {
			l.Rules = append(l.Rules, r)
		}
		slices.SortFunc(l.Rules, func(a, b *rule) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Field, b.Field)) })
		for _, e := range errs[k] {
			l.Errors = append(l.Errors, e)
			l.ErrorTotal.add(e.Count)
		}
		slices.SortFunc(l.Errors, func(a, b *errorCount) int {
			return cmp.Or(cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Code, b.Code))
		})
		r, ok := byRegion[l.Region]
		if !ok {
			r = &region{Name: l.Region}
			byRegion[l.Region] = r
			v.Regions = append(v.Regions, r)
		}
		r.Logstores = append(r.Logstores, l)
	}
	slices.SortFunc(v.Regions, func(a, b *region) int { return cmp.Compare(a.Name, b.Name) })
	for _, r := range v.Regions {
		slices.SortFunc(r.Logstores, func(a, b *logstore) int {
			return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Name, b.Name))
		})
		for _, l := range r.Logstores {
			v.Logstores++
			switch l.State() {
			case stateUp:
				v.Up++
			case stateDown:
				v.Down++
			default:
				v.Unknown++
			}
			if l.State() != stateUp {
				r.Failing++
				v.Failing = append(v.Failing, l)
			}
			if l.ShardsHeld.OK {
				v.ShardsHeld.add(l.ShardsHeld.V)
			}
			if l.LogstoreShards.OK {
				v.LogstoreShards.add(l.LogstoreShards.V)
			}
			if l.MaxLag.OK && (!v.MaxLag.OK || l.MaxLag.V > v.MaxLag.V) {
				v.MaxLag.set(l.MaxLag.V)
			}
			if l.ErrorTotal.OK {
				v.TotalErrorCount.add(l.ErrorTotal.V)
			}
		}
	}
	return v
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return math.NaN()
}

// compareNumeric orders shard IDs as numbers, anything else after them as text.
func compareNumeric(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(x, y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return cmp.Compare(a, b)
}
