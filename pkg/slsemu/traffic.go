// Built-in traffic generator: realistic web access logs with occasional bursts of 5xx.
package slsemu

import (
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// TrafficConfig sets the generator's pace; it writes into every logstore.
type TrafficConfig struct {
	LogsPerSecond   float64       `yaml:"logs_per_second"`   // per logstore; default 20
	Interval        time.Duration `yaml:"interval"`          // one log group per logstore per interval; default 250ms
	ErrorRatio      float64       `yaml:"error_ratio"`       // share of 5xx outside bursts; default 0.01
	BurstEvery      time.Duration `yaml:"burst_every"`       // default 40s
	BurstDuration   time.Duration `yaml:"burst_duration"`    // default 5s
	BurstErrorRatio float64       `yaml:"burst_error_ratio"` // share of 5xx during a burst; default 0.4
	Seed            uint64        `yaml:"seed"`              // 0 picks one at random
}

func (t *TrafficConfig) validate() error {
	if t.LogsPerSecond == 0 {
		t.LogsPerSecond = 20
	}
	if t.Interval == 0 {
		t.Interval = 250 * time.Millisecond
	}
	if t.ErrorRatio == 0 {
		t.ErrorRatio = 0.01
	}
	if t.BurstEvery == 0 {
		t.BurstEvery = 40 * time.Second
	}
	if t.BurstDuration == 0 {
		t.BurstDuration = 5 * time.Second
	}
	if t.BurstErrorRatio == 0 {
		t.BurstErrorRatio = 0.4
	}
	switch {
	case t.LogsPerSecond < 0 || t.LogsPerSecond > 1e6:
		return errors.New("logs_per_second must be in [0, 1e6]")
	case t.Interval < 10*time.Millisecond:
		return errors.New("interval must be at least 10ms")
	case t.ErrorRatio < 0 || t.ErrorRatio > 1 || t.BurstErrorRatio < 0 || t.BurstErrorRatio > 1:
		return errors.New("error ratios must be in [0, 1]")
	case t.BurstDuration > t.BurstEvery:
		return errors.New("burst_duration must not exceed burst_every")
	}
	if t.Seed == 0 {
		t.Seed = rand.Uint64()
	}
	return nil
}

// AccessLogGenerator produces web access logs; it is not safe for concurrent use.
type AccessLogGenerator struct {
	rng *rand.Rand
}

// NewAccessLogGenerator returns a generator with a fixed seed, so runs repeat.
func NewAccessLogGenerator(seed uint64) *AccessLogGenerator {
	return &AccessLogGenerator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

var (
	methods    = []string{"GET", "GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"}
	paths      = []string{"/", "/index.html", "/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/users/{id}", "/api/v1/cart", "/login", "/static/app.js", "/static/style.css", "/healthz", "/search?q=phone"}
	okStatuses = []string{"200", "200", "200", "200", "200", "200", "200", "201", "204", "301", "304", "400", "401", "403", "404", "404", "429"}
	errorCodes = []string{"500", "500", "502", "503", "504"}
	userAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
		"curl/8.5.0",
		"okhttp/4.12.0",
		"Go-http-client/1.1",
	}
)

// Log returns one access log at time at; with probability errorRatio its status is 5xx.
func (g *AccessLogGenerator) Log(at time.Time, errorRatio float64) *sls.Log {
	r := g.rng
	status := okStatuses[r.IntN(len(okStatuses))]
	latency := math.Exp(r.NormFloat64()*0.8 + 3.5) // ms, median about 33
	if r.Float64() < errorRatio {
		status = errorCodes[r.IntN(len(errorCodes))]
		latency *= 8
	}
	path := paths[r.IntN(len(paths))]
	if n := len(path); n > 5 && path[n-4:] == "{id}" {
		path = path[:n-4] + strconv.Itoa(1000+r.IntN(90000))
	}
	ip := "10." + strconv.Itoa(r.IntN(4)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
	fields := [][2]string{
		{"method", methods[r.IntN(len(methods))]},
		{"path", path},
		{"status", status},
		{"latency_ms", strconv.FormatFloat(latency, 'f', 1, 64)},
		{"client_ip", ip},
		{"user_agent", userAgents[r.IntN(len(userAgents))]},
		{"bytes", strconv.Itoa(200 + r.IntN(40000))},
	}
	sec := uint32(at.Unix())
	log := &sls.Log{Time: &sec, Contents: make([]*sls.LogContent, len(fields))}
	for i, f := range fields {
		key, value := f[0], f[1]
		log.Contents[i] = &sls.LogContent{Key: &key, Value: &value}
	}
	return log
}

// Group returns a log group of n access logs.
func (g *AccessLogGenerator) Group(n int, at time.Time, errorRatio float64) *sls.LogGroup {
	topic, source := "nginx-access", "192.168.0."+strconv.Itoa(1+g.rng.IntN(16))
	lg := &sls.LogGroup{Topic: &topic, Source: &source, Logs: make([]*sls.Log, n)}
	for i := range lg.Logs {
		lg.Logs[i] = g.Log(at, errorRatio)
	}
	return lg
}

// runTraffic writes generated logs into every logstore until stop is closed.
func (s *Server) runTraffic(cfg TrafficConfig, stop <-chan struct{}) {
	gen := NewAccessLogGenerator(cfg.Seed)
	ticker := time.NewTicker(cfg.Interval)
	defer ticker.Stop()
	start := time.Now()
	owed := map[string]float64{} // fractional logs carried between ticks, per logstore
	for {
		select {
		case <-stop:
			return
		case now := <-ticker.C:
			for _, t := range s.logstoreTargets() {
				key := t.project + "/" + t.logstore
				owed[key] += cfg.LogsPerSecond * cfg.Interval.Seconds()
				n := int(owed[key])
				if n == 0 {
					continue
				}
				owed[key] -= float64(n)
				ratio := cfg.ErrorRatio
				if inBurst(now.Sub(start), key, cfg) {
					ratio = cfg.BurstErrorRatio
				}
				lg := gen.Group(n, now, ratio)
				if err := s.PutLogGroup(t.project, t.logstore, -1, lg); err != nil {
					s.logger.Debug("traffic generator write failed", "project", t.project, "logstore", t.logstore, "err", err)
				}
			}
		}
	}
}

// inBurst tells whether a logstore is in a 5xx burst; each logstore has its
// own phase so regions do not burst in lockstep.
func inBurst(elapsed time.Duration, key string, cfg TrafficConfig) bool {
	h := fnv.New32a()
	h.Write([]byte(key))
	phase := time.Duration(h.Sum32()) % cfg.BurstEvery
	shifted := elapsed + phase
	return shifted >= cfg.BurstEvery && shifted%cfg.BurstEvery < cfg.BurstDuration
}
