// Consumer-group calls: list, create, update, delete, heartbeat and checkpoints.
package slsemu

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

func errJSONInvalid(err error) *APIError {
	return newAPIError(http.StatusBadRequest, "JsonInfoInvalid", "request JSON is invalid: %v", err)
}

func (s *Server) listConsumerGroups(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	return c.ok(l.groups.list())
}

func (s *Server) createConsumerGroup(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	var req struct {
		Name    string `json:"consumerGroup"`
		Timeout int    `json:"timeout"`
		InOrder bool   `json:"order"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		return c.fail(errJSONInvalid(err))
	}
	if !nameRE.MatchString(req.Name) || req.Timeout < 1 || req.Timeout > 86400 {
		return c.fail(newAPIError(http.StatusBadRequest, "JsonInfoInvalid", "consumerGroup must match %s and timeout be 1..86400 seconds", nameRE))
	}
	if apiErr := l.groups.create(req.Name, req.Timeout, req.InOrder); apiErr != nil {
		return c.fail(apiErr)
	}
	return c.okEmpty()
}

func (s *Server) updateConsumerGroup(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	var req struct {
		Timeout *int  `json:"timeout"`
		InOrder *bool `json:"order"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		return c.fail(errJSONInvalid(err))
	}
	if req.Timeout != nil && (*req.Timeout < 1 || *req.Timeout > 86400) {
		return c.fail(newAPIError(http.StatusBadRequest, "JsonInfoInvalid", "timeout must be 1..86400 seconds"))
	}
	if apiErr := l.groups.update(c.group, req.Timeout, req.InOrder); apiErr != nil {
		return c.fail(apiErr)
	}
	return c.okEmpty()
}

func (s *Server) deleteConsumerGroup(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	if apiErr := l.groups.delete(c.group); apiErr != nil {
		return c.fail(apiErr)
	}
	return c.okEmpty()
}

func (s *Server) heartBeat(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	consumer := c.r.URL.Query().Get("consumer")
	if consumer == "" {
		return c.fail(errParameterInvalid("consumer is required"))
	}
	var reported []int
	if len(c.body) > 0 {
		if err := json.Unmarshal(c.body, &reported); err != nil {
			return c.fail(errJSONInvalid(err))
		}
	}
	held, apiErr := l.groups.heartbeat(c.group, consumer, reported, c.now)
	if apiErr != nil {
		return c.fail(apiErr)
	}
	return c.ok(held)
}

func (s *Server) updateCheckpoint(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	q := c.r.URL.Query()
	var req struct {
		Shard      *int   `json:"shard"`
		Checkpoint string `json:"checkpoint"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		return c.fail(errJSONInvalid(err))
	}
	if req.Shard == nil {
		return c.fail(newAPIError(http.StatusBadRequest, "JsonInfoInvalid", "shard is required"))
	}
	force := strings.EqualFold(q.Get("forceSuccess"), "true") // Python sends True
	if apiErr := l.groups.updateCheckpoint(c.group, q.Get("consumer"), *req.Shard, req.Checkpoint, force, c.now); apiErr != nil {
		return c.fail(apiErr)
	}
	return c.okEmpty()
}

func (s *Server) getCheckpoint(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	shard := -1
	if v := c.r.URL.Query().Get("shard"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c.fail(errParameterInvalid("shard %q is not a number", v))
		}
		shard = n
	}
	cps, apiErr := l.groups.checkpoints(c.group, shard)
	if apiErr != nil {
		return c.fail(apiErr)
	}
	return c.ok(cps)
}
