// Fault injection: chosen errors, latency or connection resets per API route, project or logstore.
package slsemu

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Fault alters matching requests. Empty Route, Project and Logstore match any.
type Fault struct {
	ID       string   `json:"id,omitempty"`
	Route    string   `json:"route,omitempty"` // API name, e.g. PullLogs, HeartBeat (see Routes)
	Project  string   `json:"project,omitempty"`
	Logstore string   `json:"logstore,omitempty"`
	Latency  Duration `json:"latency,omitempty"` // added before answering
	// Status and Code, when Status is set, are returned instead of the real answer.
	Status  int    `json:"status,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Reset closes the connection with a TCP RST instead of answering.
	Reset bool `json:"reset,omitempty"`
	// Times limits how many requests the fault hits; 0 means until removed.
	Times int `json:"times,omitempty"`
	Hits  int `json:"hits"`
}

// Routes lists the API names a Fault can target.
var Routes = []string{
	"ListProject", "GetProject", "ListLogStores", "GetLogStore", "CreateLogStore", "DeleteLogStore",
	"ListShards", "SplitShard", "MergeShards", "GetCursor", "GetCursorTime", "PullLogs", "PutLogs",
	"ListConsumerGroup", "CreateConsumerGroup", "UpdateConsumerGroup", "DeleteConsumerGroup",
	"HeartBeat", "UpdateCheckpoint", "GetCheckpoint",
}

// Duration is a time.Duration written as "250ms" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"250ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

type faultSet struct {
	mu     sync.Mutex
	faults []*Fault
	nextID int
}

func (f *Fault) validate() error {
	if f.Route != "" && !slices.Contains(Routes, f.Route) {
		return fmt.Errorf("unknown route %q; known routes: %v", f.Route, Routes)
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("status must be 4xx or 5xx, got %d", f.Status)
	}
	if f.Status != 0 && f.Code == "" {
		f.Code = defaultCodeFor(f.Status)
	}
	if f.Status == 0 && !f.Reset && f.Latency == 0 {
		return fmt.Errorf("a fault needs a status, latency or reset")
	}
	if f.Times < 0 {
		return fmt.Errorf("times must not be negative")
	}
	return nil
}

func defaultCodeFor(status int) string {
	switch status {
	case http.StatusForbidden:
		return "ReadQuotaExceed"
	case http.StatusTooManyRequests:
		return "ReadQuotaExceed"
	case http.StatusServiceUnavailable:
		return "ServerBusy"
	case http.StatusUnauthorized:
		return "Unauthorized"
	}
	if status >= 500 {
		return "InternalServerError"
	}
	return "ParameterInvalid"
}

func (fs *faultSet) add(f Fault) (string, error) {
	if err := f.validate(); err != nil {
		return "", err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	f.ID = "f" + strconv.Itoa(fs.nextID)
	f.Hits = 0
	fs.faults = append(fs.faults, &f)
	return f.ID, nil
}

func (fs *faultSet) remove(id string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.faults {
		if f.ID == id {
			fs.faults = slices.Delete(fs.faults, i, i+1)
			return true
		}
	}
	return false
}

func (fs *faultSet) clear() {
	fs.mu.Lock()
	fs.faults = nil
	fs.mu.Unlock()
}

func (fs *faultSet) list() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Fault, len(fs.faults))
	for i, f := range fs.faults {
		out[i] = *f
	}
	return out
}

// match returns a copy of the first fault for this request and counts the hit.
func (fs *faultSet) match(route, project, logstore string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.faults {
		if (f.Route == "" || f.Route == route) && (f.Project == "" || f.Project == project) && (f.Logstore == "" || f.Logstore == logstore) {
			f.Hits++
			hit := *f
			if f.Times > 0 && f.Hits >= f.Times {
				fs.faults = slices.Delete(fs.faults, i, i+1)
			}
			return hit, true
		}
	}
	return Fault{}, false
}

// apply performs a fault; it reports whether the request was answered.
func (f Fault) apply(w http.ResponseWriter, r *http.Request, requestID string) bool {
	if f.Latency > 0 {
		select {
		case <-time.After(time.Duration(f.Latency)):
		case <-r.Context().Done():
			return true
		}
	}
	if f.Reset {
		resetConnection(w)
		return true
	}
	if f.Status != 0 {
		msg := f.Message
		if msg == "" {
			msg = "injected fault " + f.ID
		}
		writeError(w, requestID, &APIError{Status: f.Status, Code: f.Code, Message: msg})
		return true
	}
	return false
}

// resetConnection aborts the TCP connection so the client sees a reset.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close sends RST instead of FIN
	}
	_ = conn.Close()
}

// InjectFault adds a fault and returns its ID.
func (s *Server) InjectFault(f Fault) (string, error) { return s.faults.add(f) }

// RemoveFault removes one fault; it reports whether it existed.
func (s *Server) RemoveFault(id string) bool { return s.faults.remove(id) }

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.clear() }

// Faults lists the active faults with their hit counts.
func (s *Server) Faults() []Fault { return s.faults.list() }
