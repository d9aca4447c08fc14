// Admin API under /_slsemu/ (no SLS path starts with "_"): faults, AccessKeys added and revoked while serving, and a view of the emulator's state.
package slsemu

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"
)

const adminPrefix = "/_slsemu/"

// ShardState is one shard: its place in the key space and what it retains.
type ShardState struct {
	ID          int    `json:"id"`
	Status      string `json:"status"` // readwrite, or readonly after a split or merge
	BeginKey    string `json:"inclusive_begin_key"`
	EndKey      string `json:"exclusive_end_key"`
	CreateTime  int64  `json:"create_time"` // unix seconds
	Groups      int    `json:"groups"`
	Logs        int    `json:"logs"`
	RawBytes    int64  `json:"raw_bytes"`
	BeginCursor string `json:"begin_cursor"`
	EndCursor   string `json:"end_cursor"`
}

// LogstoreState is one logstore with its shards and consumer groups.
type LogstoreState struct {
	Region         string       `json:"region"`
	Project        string       `json:"project"`
	Logstore       string       `json:"logstore"`
	Shards         []ShardState `json:"shards"`
	ConsumerGroups []GroupState `json:"consumer_groups"`
	// Violations lists every moment a shard was held by two consumers at once.
	Violations []string `json:"violations,omitempty"`
}

// State returns a snapshot of every logstore.
func (s *Server) State() []LogstoreState {
	var out []LogstoreState
	now := time.Now()
	for _, t := range s.logstoreTargets() {
		p, l, apiErr := s.lookupLogstore(t.project, t.logstore)
		if apiErr != nil {
			continue // deleted meanwhile
		}
		st := LogstoreState{Region: p.region.name, Project: p.name, Logstore: l.name, Violations: l.groups.violationLog()}
		shards, infos := l.shardSnapshot()
		for i, sh := range shards {
			groups, logs, raw := sh.stats()
			begin, _ := sh.cursorAt("begin")
			end, _ := sh.cursorAt("end")
			info := infos[i]
			st.Shards = append(st.Shards, ShardState{
				ID: info.ShardID, Status: info.Status, BeginKey: info.InclusiveBeginKey, EndKey: info.ExclusiveEndKey, CreateTime: info.CreateTime,
				Groups: groups, Logs: logs, RawBytes: raw, BeginCursor: begin, EndCursor: end,
			})
		}
		for _, g := range l.groups.list() {
			if gs, ok := l.groups.state(g.Name, now); ok {
				st.ConsumerGroups = append(st.ConsumerGroups, gs)
			}
		}
		out = append(out, st)
	}
	return out
}

// ConsumerGroupState returns one consumer group's assignment and checkpoints,
// after expiring consumers that stopped heartbeating.
func (s *Server) ConsumerGroupState(projectName, logstoreName, group string) (GroupState, error) {
	_, l, apiErr := s.lookupLogstore(projectName, logstoreName)
	if apiErr != nil {
		return GroupState{}, apiErr
	}
	st, ok := l.groups.state(group, time.Now())
	if !ok {
		return GroupState{}, errConsumerGroupNotExist(group)
	}
	return st, nil
}

// HoldViolations lists every moment a shard of the logstore was held by two
// consumers at once (a consumer holds a shard from the heartbeat reply that
// grants it until its heartbeats stop reporting it). Empty means none.
func (s *Server) HoldViolations(projectName, logstoreName string) ([]string, error) {
	_, l, apiErr := s.lookupLogstore(projectName, logstoreName)
	if apiErr != nil {
		return nil, apiErr
	}
	return l.groups.violationLog(), nil
}

// HeldShards returns, per consumer, the shards the server currently grants it.
func (st GroupState) HeldShards() map[string][]int {
	out := map[string][]int{}
	for id, owner := range st.Owner {
		if owner != "" && st.TransferTo[id] == "" {
			out[owner] = append(out[owner], id)
		}
	}
	for _, ids := range out {
		sort.Ints(ids)
	}
	return out
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, adminPrefix)
	requestID := s.nextRequestID()
	switch {
	case path == "state" && r.Method == http.MethodGet:
		writeJSON(w, requestID, s.State())
	case path == "faults" && r.Method == http.MethodGet:
		writeJSON(w, requestID, s.Faults())
	case path == "faults" && r.Method == http.MethodPost:
		var f Fault
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeError(w, requestID, newAPIError(http.StatusBadRequest, "JsonInfoInvalid", "fault JSON is invalid: %v", err))
			return
		}
		id, err := s.InjectFault(f)
		if err != nil {
			writeError(w, requestID, newAPIError(http.StatusBadRequest, "ParameterInvalid", "%v", err))
			return
		}
		writeJSON(w, requestID, map[string]string{"id": id})
	case path == "faults" && r.Method == http.MethodDelete:
		s.ClearFaults()
		writeEmpty(w, requestID)
	case strings.HasPrefix(path, "faults/") && r.Method == http.MethodDelete:
		if !s.RemoveFault(strings.TrimPrefix(path, "faults/")) {
			writeError(w, requestID, newAPIError(http.StatusNotFound, "FaultNotExist", "no fault %s", strings.TrimPrefix(path, "faults/")))
			return
		}
		writeEmpty(w, requestID)
	case path == "access_keys" && r.Method == http.MethodGet:
		writeJSON(w, requestID, s.AccessKeys())
	case path == "access_keys" && r.Method == http.MethodPost:
		var k accessKeyJSON
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&k); err != nil {
			writeError(w, requestID, newAPIError(http.StatusBadRequest, "JsonInfoInvalid", "AccessKey JSON is invalid: %v", err))
			return
		}
		if err := s.AddAccessKey(AccessKey{ID: k.ID, Secret: k.Secret, SecurityToken: k.SecurityToken, Expires: k.Expires}); err != nil {
			writeError(w, requestID, newAPIError(http.StatusBadRequest, "ParameterInvalid", "%v", err))
			return
		}
		writeEmpty(w, requestID)
	case strings.HasPrefix(path, "access_keys/") && r.Method == http.MethodDelete:
		id := strings.TrimPrefix(path, "access_keys/")
		if !s.RemoveAccessKey(id) {
			writeError(w, requestID, newAPIError(http.StatusNotFound, "AccessKeyNotExist", "no AccessKey %s", id))
			return
		}
		writeEmpty(w, requestID)
	default:
		writeError(w, requestID, newAPIError(http.StatusNotFound, "RouteNotFound",
			"admin API: GET state, GET|POST|DELETE faults, DELETE faults/{id}, GET|POST access_keys, DELETE access_keys/{id}"))
	}
}

// accessKeyJSON is an AccessKey as POST /_slsemu/access_keys takes it; the
// names are the world file's.
type accessKeyJSON struct {
	ID            string    `json:"id"`
	Secret        string    `json:"secret"`
	SecurityToken string    `json:"security_token,omitempty"`
	Expires       time.Time `json:"expires,omitzero"` // RFC 3339; zero: never
}

// AccessKeyInfo describes an accepted AccessKey without its secret or token.
type AccessKeyInfo struct {
	ID string `json:"id"`
	// SecurityToken: requests must carry an STS token.
	SecurityToken bool      `json:"security_token"`
	Expires       time.Time `json:"expires,omitzero"`
	Expired       bool      `json:"expired"`
}

// AccessKeys lists the keys the emulator knows, by ID, secrets left out.
func (s *Server) AccessKeys() []AccessKeyInfo {
	now := time.Now()
	keys := *s.keys.Load()
	out := make([]AccessKeyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, AccessKeyInfo{ID: k.ID, SecurityToken: k.SecurityToken != "", Expires: k.Expires,
			Expired: !k.Expires.IsZero() && !now.Before(k.Expires)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// RemoveAccessKey revokes a key while serving: requests signed with it then
// get 401 Unauthorized "AccessKeyId not found", as for a key never known.
// It reports whether the key existed.
func (s *Server) RemoveAccessKey(id string) bool {
	for {
		old := s.keys.Load()
		if _, ok := (*old)[id]; !ok {
			return false
		}
		keys := make(map[string]AccessKey, len(*old))
		for k, v := range *old {
			if k != id {
				keys[k] = v
			}
		}
		if s.keys.CompareAndSwap(old, &keys) {
			return true
		}
	}
}
