// Fault injection through the Go API and the admin HTTP API, seen by the real SDK; the demo world's traffic.
package slsemu_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

func TestFaultsFromGoAPI(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	begin, err := c.GetCursor("proj", "four", 0, "begin")
	if err != nil {
		t.Fatal(err)
	}
	pull := func() error {
		_, _, err := c.PullLogsWithQuery(&sls.PullLogRequest{Project: "proj", Logstore: "four", ShardID: 0, Cursor: begin, LogGroupMaxCount: 10})
		return err
	}

	// A 403 quota error on one logstore's pulls only.
	id, err := srv.InjectFault(slsemu.Fault{Route: "PullLogs", Logstore: "four", Status: 403, Code: "ReadQuotaExceed"})
	if err != nil {
		t.Fatal(err)
	}
	wantSLSError(t, "injected 403", pull(), 403, "ReadQuotaExceed")
	if _, err := c.ListShards("proj", "four"); err != nil {
		t.Fatalf("ListShards should be untouched by a PullLogs fault: %v", err)
	}
	if got := srv.Faults(); len(got) != 1 || got[0].Hits != 1 {
		t.Fatalf("faults = %+v, want one with 1 hit", got)
	}
	if !srv.RemoveFault(id) || pull() != nil {
		t.Fatal("pull should succeed once the fault is removed")
	}

	// Latency.
	if _, err := srv.InjectFault(slsemu.Fault{Route: "ListShards", Latency: slsemu.Duration(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.ListShards("proj", "four"); err != nil || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("latency fault: err %v after %s", err, time.Since(start))
	}
	srv.ClearFaults()

	// A connection reset surfaces as a transport error, not an SLS error.
	// (Write calls are not retried by the SDK on transport errors.)
	if _, err := srv.InjectFault(slsemu.Fault{Route: "HeartBeat", Reset: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateConsumerGroup("proj", "four", sls.ConsumerGroup{ConsumerGroupName: "cg", Timeout: 5}); err != nil {
		t.Fatal(err)
	}
	_, err = c.HeartBeat("proj", "four", "cg", "c1", []int{})
	// The SDK wraps transport errors as ClientError with HTTP code -1.
	var slsErr *sls.Error
	if !errors.As(err, &slsErr) || slsErr.HTTPCode != -1 || slsErr.Code != "ClientError" ||
		!(strings.Contains(slsErr.Message, "reset") || strings.Contains(slsErr.Message, "EOF")) {
		t.Fatalf("reset: got %v, want a ClientError for a reset connection", err)
	}
	if _, err := c.HeartBeat("proj", "four", "cg", "c1", []int{}); err != nil {
		t.Fatalf("a Times:1 fault must hit once only: %v", err)
	}

	if _, err := srv.InjectFault(slsemu.Fault{Route: "NoSuchRoute", Status: 500}); err == nil {
		t.Fatal("an unknown route must be refused")
	}
}

func TestFaultsFromAdminHTTP(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	post := func(body string) *http.Response {
		resp, err := http.Post(srv.URL+"/_slsemu/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post(`{"route":"GetCursor","project":"proj","status":403,"code":"ShardReadQuotaExceed","message":"slow down"}`)
	var created struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 200 || created.ID == "" {
		t.Fatalf("POST fault: %d %+v", resp.StatusCode, created)
	}
	_, err := c.GetCursor("proj", "four", 0, "begin")
	wantSLSError(t, "admin-injected fault", err, 403, "ShardReadQuotaExceed")

	if resp := post(`{"route":"GetCursor","bogus":1}`); resp.StatusCode != 400 {
		t.Fatalf("unknown fault field: %d, want 400", resp.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/_slsemu/faults/"+url.PathEscape(created.ID), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("DELETE fault: %v %v", resp, err)
	}
	if _, err := c.GetCursor("proj", "four", 0, "begin"); err != nil {
		t.Fatalf("after DELETE: %v", err)
	}

	resp, err = http.Get(srv.URL + "/_slsemu/state")
	if err != nil {
		t.Fatal(err)
	}
	var state []slsemu.LogstoreState
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body.Bytes(), &state); err != nil || len(state) != 3 {
		t.Fatalf("state: %v, %d logstores: %s", err, len(state), body.String())
	}
}

func TestDemoWorldGeneratesAccessLogsWithErrors(t *testing.T) {
	w := slsemu.DemoWorld()
	w.Traffic.LogsPerSecond = 400
	w.Traffic.Interval = 50 * time.Millisecond
	w.Traffic.ErrorRatio = 0.05
	srv := startEmulator(t, w)
	c := newClient(srv, "cn-qingdao.log.aliyuncs.com", slsemu.DemoAccessKeyID, slsemu.DemoAccessKeySecret)
	// About half a second's worth at 400 logs/s. Polled rather than slept for:
	// on a loaded machine the ticker drops ticks and a fixed second may hold fewer.
	waitFor(t, 10*time.Second, "200 generated logs in logstore3_2", func() bool {
		for _, st := range srv.State() {
			if st.Logstore == "logstore3_2" {
				return st.Shards[0].Logs+st.Shards[1].Logs >= 200
			}
		}
		return false
	})
	statuses := map[string]int{}
	logs := 0
	for shard := range 2 {
		begin, err := c.GetCursor("project3", "logstore3_2", shard, "begin")
		if err != nil {
			t.Fatal(err)
		}
		gl, _, err := c.PullLogs("project3", "logstore3_2", shard, begin, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, lg := range gl.LogGroups {
			for _, l := range lg.Logs {
				logs++
				statuses[field(l, "status")[:1]]++
				for _, k := range []string{"method", "path", "latency_ms", "client_ip", "user_agent", "bytes"} {
					if field(l, k) == "" {
						t.Fatalf("log lacks %s: %v", k, l)
					}
				}
			}
		}
	}
	if logs < 200 || statuses["5"] == 0 || statuses["2"] == 0 {
		t.Fatalf("at 400 logs/s: %d logs, status classes %v", logs, statuses)
	}
	// The other regions have their own projects and traffic too.
	for _, r := range []struct{ endpoint, project, logstore string }{
		{"cn-hangzhou.log.aliyuncs.com", "project1", "logstore1"},
		{"cn-beijing.log.aliyuncs.com", "project2", "logstore2"},
		{"cn-qingdao.log.aliyuncs.com", "project3", "logstore3_1"},
	} {
		rc := newClient(srv, r.endpoint, slsemu.DemoAccessKeyID, slsemu.DemoAccessKeySecret)
		begin, _ := rc.GetCursor(r.project, r.logstore, 0, "begin")
		end, err := rc.GetCursor(r.project, r.logstore, 0, "end")
		if err != nil || begin == end {
			t.Fatalf("%s/%s has no traffic: %v", r.project, r.logstore, err)
		}
	}
}
