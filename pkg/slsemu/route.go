// Request routing: the project from the Host header, the API from method, path and type.
package slsemu

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// call is one API request being served.
type call struct {
	w         http.ResponseWriter
	r         *http.Request
	requestID string
	body      []byte
	now       time.Time

	route    string // API name, one of Routes
	project  *project
	logstore string // path parameter, "" when absent
	shard    string // path parameter
	group    string // path parameter
}

// ServeHTTP serves the SLS API, and the admin API under /_slsemu/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := &call{w: w, r: r, requestID: s.nextRequestID(), now: start}
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	status := s.serveAPI(c)
	s.logger.Debug("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "route", c.route,
		"status", status, "request_id", c.requestID, "duration", time.Since(start))
}

// serveAPI answers one SLS call and returns the HTTP status it sent.
func (s *Server) serveAPI(c *call) int {
	projectName, reg := s.resolveHost(c.r.Host)
	route, apiErr := parseRoute(c, projectName)
	if apiErr != nil {
		return c.fail(apiErr)
	}
	c.route = route
	if f, ok := s.faults.match(route, projectName, c.logstore); ok && f.apply(c.w, c.r, c.requestID) {
		return f.Status
	}
	if c.body, apiErr = readBody(c.r); apiErr != nil {
		return c.fail(apiErr)
	}
	if _, apiErr = authenticate(c.r, c.body, *s.keys.Load(), c.now); apiErr != nil {
		return c.fail(apiErr)
	}
	if route == "ListProject" {
		return s.listProjects(c, reg)
	}
	s.mu.RLock()
	p, ok := s.projects[projectName]
	s.mu.RUnlock()
	// Project names are global, but each is served only through its own region's endpoint.
	if !ok || (reg != nil && p.region != reg) {
		return c.fail(errProjectNotExist(projectName))
	}
	c.project = p
	return s.handlerByRoute[route](c)
}

func (c *call) fail(e *APIError) int {
	writeError(c.w, c.requestID, e)
	return e.Status
}

func (c *call) ok(v any) int {
	writeJSON(c.w, c.requestID, v)
	return http.StatusOK
}

func (c *call) okEmpty() int {
	writeEmpty(c.w, c.requestID)
	return http.StatusOK
}

// resolveHost splits Host into a project name and, when the base is a known
// region endpoint, that region. Any other base (an IP literal, the emulator's
// own address) leaves the region open: the project is looked up globally, as
// the Python SDK's Host: <project>.127.0.0.1 needs.
func (s *Server) resolveHost(hostport string) (string, *region) {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, reg := range s.regions {
		endpoint := strings.ToLower(reg.endpoint)
		if h, _, err := net.SplitHostPort(endpoint); err == nil {
			endpoint = h
		}
		if host == endpoint {
			return "", reg
		}
		if strings.HasSuffix(host, "."+endpoint) {
			return strings.TrimSuffix(host, "."+endpoint), reg
		}
	}
	if net.ParseIP(host) != nil || host == "localhost" {
		return "", nil
	}
	project, _, found := strings.Cut(host, ".")
	if !found {
		return "", nil
	}
	return project, nil
}

// parseRoute names the API a request calls and fills the path parameters.
func parseRoute(c *call, projectName string) (string, *APIError) {
	r := c.r
	path := strings.Trim(r.URL.Path, "/")
	var parts []string
	if path != "" {
		parts = strings.Split(path, "/")
	}
	typ := r.URL.Query().Get("type")
	m := r.Method
	unknown := newAPIError(http.StatusNotFound, "RouteNotFound", "no API matches %s %s", m, r.URL.Path)

	if len(parts) == 0 {
		switch {
		case m != http.MethodGet:
			return "", unknown
		case projectName == "":
			return "ListProject", nil
		default:
			return "GetProject", nil
		}
	}
	if parts[0] != "logstores" || projectName == "" {
		return "", unknown
	}
	if len(parts) >= 2 {
		c.logstore = parts[1]
	}
	switch len(parts) {
	case 1:
		switch m {
		case http.MethodGet:
			return "ListLogStores", nil
		case http.MethodPost:
			return "CreateLogStore", nil
		}
	case 2:
		switch m {
		case http.MethodGet:
			return "GetLogStore", nil
		case http.MethodDelete:
			return "DeleteLogStore", nil
		case http.MethodPost:
			return "PutLogs", nil
		}
	case 3:
		switch {
		case parts[2] == "shards" && m == http.MethodGet:
			return "ListShards", nil
		case parts[2] == "consumergroups" && m == http.MethodGet:
			return "ListConsumerGroup", nil
		case parts[2] == "consumergroups" && m == http.MethodPost:
			return "CreateConsumerGroup", nil
		}
	case 4:
		switch parts[2] {
		case "shards":
			c.shard = parts[3]
			switch {
			case m == http.MethodPost && (parts[3] == "lb" || parts[3] == "route"):
				return "PutLogs", nil
			case m == http.MethodPost:
				switch action := r.URL.Query().Get("action"); action {
				case "split":
					return "SplitShard", nil
				case "merge":
					return "MergeShards", nil
				default:
					return "", errParameterInvalid("action must be split or merge, got %q", action)
				}
			case m != http.MethodGet:
			case typ == "cursor":
				return "GetCursor", nil
			case typ == "cursor_time":
				return "GetCursorTime", nil
			case typ == "logs" || typ == "log":
				return "PullLogs", nil
			default:
				return "", errParameterInvalid("type must be cursor, cursor_time or logs, got %q", typ)
			}
		case "consumergroups":
			c.group = parts[3]
			switch m {
			case http.MethodPut:
				return "UpdateConsumerGroup", nil
			case http.MethodDelete:
				return "DeleteConsumerGroup", nil
			case http.MethodGet:
				return "GetCheckpoint", nil
			case http.MethodPost:
				switch typ {
				case "heartbeat":
					return "HeartBeat", nil
				case "checkpoint":
					return "UpdateCheckpoint", nil
				}
				return "", errParameterInvalid("type must be heartbeat or checkpoint, got %q", typ)
			}
		}
	}
	return "", unknown
}

// handlers maps each API name to its handler; built once per Server.
func (s *Server) handlers() map[string]func(*call) int {
	return map[string]func(*call) int{
		"GetProject":          s.getProject,
		"ListLogStores":       s.listLogStores,
		"GetLogStore":         s.getLogStore,
		"CreateLogStore":      s.createLogStore,
		"DeleteLogStore":      s.deleteLogStore,
		"ListShards":          s.listShards,
		"SplitShard":          s.serveSplitShard,
		"MergeShards":         s.serveMergeShards,
		"GetCursor":           s.getCursor,
		"GetCursorTime":       s.getCursorTime,
		"PullLogs":            s.pullLogs,
		"PutLogs":             s.putLogs,
		"ListConsumerGroup":   s.listConsumerGroups,
		"CreateConsumerGroup": s.createConsumerGroup,
		"UpdateConsumerGroup": s.updateConsumerGroup,
		"DeleteConsumerGroup": s.deleteConsumerGroup,
		"HeartBeat":           s.heartBeat,
		"UpdateCheckpoint":    s.updateCheckpoint,
		"GetCheckpoint":       s.getCheckpoint,
	}
}
