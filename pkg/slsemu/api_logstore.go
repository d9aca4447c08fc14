// Project, logstore, shard and cursor calls.
package slsemu

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"
)

type projectJSON struct {
	ProjectName    string `json:"projectName"`
	Description    string `json:"description"`
	Status         string `json:"status"`
	Owner          string `json:"owner"`
	Region         string `json:"region"`
	CreateTime     string `json:"createTime"` // a string, as the Go SDK declares it
	LastModifyTime string `json:"lastModifyTime"`
}

func (s *Server) projectJSON(p *project) projectJSON {
	created := strconv.FormatInt(s.startedAt.Unix(), 10)
	return projectJSON{ProjectName: p.name, Status: "Normal", Region: p.region.name, CreateTime: created, LastModifyTime: created}
}

func (s *Server) listProjects(c *call, reg *region) int {
	s.mu.RLock()
	list := []projectJSON{}
	for _, p := range s.projects {
		if reg == nil || p.region == reg {
			list = append(list, s.projectJSON(p))
		}
	}
	s.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].ProjectName < list[j].ProjectName })
	return c.ok(map[string]any{"count": len(list), "total": len(list), "projects": list})
}

func (s *Server) getProject(c *call) int { return c.ok(s.projectJSON(c.project)) }

// logstore looks up the logstore named in the path.
func (c *call) lookupLogstore() (*logstore, *APIError) {
	c.project.mu.RLock()
	l, ok := c.project.logstores[c.logstore]
	c.project.mu.RUnlock()
	if !ok {
		return nil, errLogStoreNotExist(c.logstore)
	}
	return l, nil
}

// lookupShard looks up the logstore and shard named in the path.
func (c *call) lookupShard() (*shard, *APIError) {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return nil, apiErr
	}
	id, err := strconv.Atoi(c.shard)
	if err != nil {
		return nil, errShardNotExist(c.shard)
	}
	sh := l.shardByID(id) // readonly shards are read like any other
	if sh == nil {
		return nil, errShardNotExist(c.shard)
	}
	return sh, nil
}

func (s *Server) getLogStore(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	return c.ok(map[string]any{
		"logstoreName":    l.name,
		"ttl":             l.ttl,
		"shardCount":      l.readWriteShardCount(),
		"enable_tracking": false,
		"autoSplit":       false,
		"maxSplitShard":   0,
		"appendMeta":      l.appendMeta,
		"telemetryType":   l.telemetryType,
		"mode":            "standard",
		"createTime":      l.createdAt.Unix(),
		"lastModifyTime":  l.createdAt.Unix(),
	})
}

func (s *Server) createLogStore(c *call) int {
	var req struct {
		Name          string `json:"logstoreName"`
		TTL           int    `json:"ttl"`
		ShardCount    int    `json:"shardCount"`
		AppendMeta    *bool  `json:"appendMeta"`
		TelemetryType string `json:"telemetryType"` // CreateLogStoreV2, CreateMetricStore, CreateEventStore
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		return c.fail(newAPIError(http.StatusBadRequest, "PostBodyInvalid", "logstore JSON is invalid: %v", err))
	}
	if !nameRE.MatchString(req.Name) || req.ShardCount < 1 || req.ShardCount > 256 {
		return c.fail(newAPIError(http.StatusBadRequest, "LogStoreInfoInvalid", "logstoreName must match %s and shardCount be 1..256", nameRE))
	}
	appendMeta := req.AppendMeta == nil || *req.AppendMeta
	p := c.project
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, exists := p.logstores[req.Name]; exists {
		return c.fail(newAPIError(http.StatusBadRequest, "LogStoreAlreadyExist", "logstore %s already exists", req.Name))
	}
	l := s.newLogstore(req.Name, req.ShardCount, req.TTL, appendMeta, time.Now())
	l.telemetryType = req.TelemetryType
	p.logstores[req.Name] = l
	return c.okEmpty()
}

func (s *Server) deleteLogStore(c *call) int {
	p := c.project
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.logstores[c.logstore]; !ok {
		return c.fail(errLogStoreNotExist(c.logstore))
	}
	delete(p.logstores, c.logstore)
	return c.okEmpty()
}

func (s *Server) listShards(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	_, infos := l.shardSnapshot()
	if len(infos) == 0 {
		return c.fail(newAPIError(http.StatusBadRequest, "LogStoreWithoutShard", "logstore %s has no shard", l.name))
	}
	return c.ok(infos)
}

func (s *Server) getCursor(c *call) int {
	sh, apiErr := c.lookupShard()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	from := c.r.URL.Query().Get("from")
	cursor, ok := sh.cursorAt(from)
	if !ok {
		return c.fail(errParameterInvalid("Parameter From is not valid: %q", from))
	}
	return c.ok(map[string]string{"cursor": cursor})
}

func (s *Server) getCursorTime(c *call) int {
	sh, apiErr := c.lookupShard()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	cursor := c.r.URL.Query().Get("cursor")
	at, ok := sh.cursorTime(cursor)
	if !ok {
		return c.fail(errInvalidCursor(cursor))
	}
	var sec int64
	if !at.IsZero() {
		sec = at.Unix()
	}
	return c.ok(map[string]int64{"cursor_time": sec})
}
