// Server: the emulator's lifecycle, reachable like net/http/httptest (start on loopback, use, close).
package slsemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Server beyond its World.
type Options struct {
	// Logger receives one debug line per request and errors; nil discards.
	Logger *slog.Logger
}

// Server is an SLS emulator. Create it with NewServer and Start, or Start.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234, once started.
	URL string
	// Addr is the listen address, e.g. 127.0.0.1:41234, once started.
	Addr string

	world        *World
	logger       *slog.Logger
	keys         atomic.Pointer[map[string]AccessKey] // replaced whole by AddAccessKey
	regions      []*region
	maxPullBytes int

	mu       sync.RWMutex
	projects map[string]*project

	handlerByRoute map[string]func(*call) int
	faults         faultSet
	requestID      atomic.Uint64
	startedAt      time.Time

	listener    net.Listener
	httpServer  *http.Server
	stopTraffic chan struct{}
	wg          sync.WaitGroup
}

// NewServer builds an emulator for world without listening yet.
func NewServer(world *World, opts Options) (*Server, error) {
	if world == nil {
		world = DemoWorld()
	}
	if err := world.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		world:        world,
		logger:       logger,
		projects:     map[string]*project{},
		maxPullBytes: world.MaxPullBytes,
		startedAt:    time.Now(),
	}
	s.handlerByRoute = s.handlers()
	keys := map[string]AccessKey{}
	for _, k := range world.AccessKeys {
		keys[k.ID] = k
	}
	s.keys.Store(&keys)
	now := time.Now()
	for _, rc := range world.Regions {
		reg := &region{name: rc.Name, endpoint: stripScheme(rc.Endpoint)}
		s.regions = append(s.regions, reg)
		for _, pc := range rc.Projects {
			p := &project{name: pc.Name, region: reg, logstores: map[string]*logstore{}}
			for _, lc := range pc.Logstores {
				appendMeta := lc.AppendMeta == nil || *lc.AppendMeta
				p.logstores[lc.Name] = s.newLogstore(lc.Name, lc.Shards, lc.TTL, appendMeta, now)
			}
			s.projects[pc.Name] = p
		}
	}
	return s, nil
}

func (s *Server) newLogstore(name string, shards, ttl int, appendMeta bool, now time.Time) *logstore {
	l := &logstore{
		name:       name,
		ttl:        ttl,
		appendMeta: appendMeta,
		createdAt:  now,
		shards:     newShards(shards, now),
		retention:  Retention{MaxBytesPerShard: s.world.Retention.MaxBytesPerShard, MaxAge: s.world.Retention.MaxAge},
	}
	ids := make([]int, shards)
	for i := range ids {
		ids[i] = i
	}
	l.groups = newGroupSet(ids)
	return l
}

// Start builds an emulator for world and serves it on a free loopback port.
func Start(world *World) (*Server, error) {
	s, err := NewServer(world, Options{})
	if err != nil {
		return nil, err
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return s, nil
}

// Start listens on addr and serves until Close. It also starts the traffic
// generator when the world has one.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.listener = ln
	s.Addr = ln.Addr().String()
	s.URL = "http://" + s.Addr
	s.httpServer = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("emulator server stopped", "err", err)
		}
	}()
	if s.world.Traffic != nil {
		s.stopTraffic = make(chan struct{})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runTraffic(*s.world.Traffic, s.stopTraffic)
		}()
	}
	return nil
}

// AddAccessKey makes the emulator accept a key from now on, replacing one
// with the same ID: e.g. temporary credentials an STS stand-in issued, with
// their SecurityToken and Expires. Safe while serving.
func (s *Server) AddAccessKey(k AccessKey) error {
	if k.ID == "" || k.Secret == "" {
		return errors.New("AddAccessKey: id and secret are required")
	}
	for {
		old := s.keys.Load()
		keys := make(map[string]AccessKey, len(*old)+1)
		for id, v := range *old {
			keys[id] = v
		}
		keys[k.ID] = k
		if s.keys.CompareAndSwap(old, &keys) {
			return nil
		}
	}
}

// Close stops serving, closing open connections, and stops the traffic generator.
func (s *Server) Close() {
	if s.stopTraffic != nil {
		close(s.stopTraffic)
		s.stopTraffic = nil
	}
	if s.httpServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.httpServer.Shutdown(ctx)
		cancel()
		_ = s.httpServer.Close()
	}
	s.wg.Wait()
}

// HTTPClient returns a client that sends every request to the emulator
// whatever host it names, for an SDK configured with real endpoint names.
func (s *Server) HTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, s.Addr)
			},
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     50 * time.Second,
		},
	}
}

// Endpoint returns a region's endpoint host name.
func (s *Server) Endpoint(regionName string) string {
	for _, r := range s.regions {
		if r.name == regionName {
			return r.endpoint
		}
	}
	return ""
}

func stripScheme(endpoint string) string {
	endpoint = strings.TrimPrefix(endpoint, "http://")
	return strings.TrimPrefix(endpoint, "https://")
}

func (s *Server) nextRequestID() string {
	return fmt.Sprintf("%08X%016X", uint32(s.startedAt.Unix()), s.requestID.Add(1))
}

// logstoreTarget names one logstore.
type logstoreTarget struct{ project, logstore string }

// logstoreTargets lists every logstore, sorted, for the traffic generator.
func (s *Server) logstoreTargets() []logstoreTarget {
	s.mu.RLock()
	var out []logstoreTarget
	for _, p := range s.projects {
		p.mu.RLock()
		for name := range p.logstores {
			out = append(out, logstoreTarget{p.name, name})
		}
		p.mu.RUnlock()
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].project != out[j].project {
			return out[i].project < out[j].project
		}
		return out[i].logstore < out[j].logstore
	})
	return out
}

// lookupLogstore finds a logstore by project and name.
func (s *Server) lookupLogstore(projectName, logstoreName string) (*project, *logstore, *APIError) {
	s.mu.RLock()
	p, ok := s.projects[projectName]
	s.mu.RUnlock()
	if !ok {
		return nil, nil, errProjectNotExist(projectName)
	}
	p.mu.RLock()
	l, ok := p.logstores[logstoreName]
	p.mu.RUnlock()
	if !ok {
		return p, nil, errLogStoreNotExist(logstoreName)
	}
	return p, l, nil
}

// maxBodyBytes bounds what a request body may hold (SLS accepts 10 MB per PutLogs).
const maxBodyBytes = 32 << 20

func readBody(r *http.Request) ([]byte, *APIError) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, newAPIError(http.StatusBadRequest, "PostBodyInvalid", "reading body: %v", err)
	}
	if len(body) > maxBodyBytes {
		return nil, newAPIError(http.StatusBadRequest, "PostBodyTooLarge", "body is larger than %d bytes", maxBodyBytes)
	}
	return body, nil
}
