// The SDK over real HTTP: errors, cursors, PutLogs variants, signatures and ways of reaching the emulator.
package slsemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// wantSLSError checks that err is an *sls.Error with the given status and code.
func wantSLSError(t *testing.T, what string, err error, status int32, code string) {
	t.Helper()
	var slsErr *sls.Error
	if !errors.As(err, &slsErr) {
		t.Fatalf("%s: got %T %v, want *sls.Error %d %s", what, err, err, status, code)
	}
	if slsErr.HTTPCode != status || slsErr.Code != code {
		t.Fatalf("%s: got %d %s (%s), want %d %s", what, slsErr.HTTPCode, slsErr.Code, slsErr.Message, status, code)
	}
	if slsErr.RequestID == "" {
		t.Errorf("%s: error carries no request ID", what)
	}
}

func TestErrorsReachTheSDKWithDocumentedCodes(t *testing.T) {
	srv := startEmulator(t, testWorld())
	good := newClient(srv, testHost, testAK, testSecret)

	_, err := newClient(srv, testHost, testAK, "wrong-secret").ListShards("proj", "four")
	wantSLSError(t, "wrong secret", err, 401, "SignatureNotMatch")

	_, err = newClient(srv, testHost, "unknown-ak", testSecret).ListShards("proj", "four")
	wantSLSError(t, "unknown key", err, 401, "Unauthorized")

	_, err = good.ListShards("nosuchproject", "four")
	wantSLSError(t, "unknown project", err, 404, "ProjectNotExist")

	_, err = good.ListShards("proj", "nosuchstore")
	wantSLSError(t, "unknown logstore", err, 404, "LogStoreNotExist")

	_, _, err = good.PullLogsWithQuery(&sls.PullLogRequest{Project: "proj", Logstore: "four", ShardID: 0, Cursor: "bm90LWEtY3Vyc29y", LogGroupMaxCount: 10})
	wantSLSError(t, "bad cursor", err, 400, "InvalidCursor")

	_, err = good.GetCursor("proj", "four", 9, "begin")
	wantSLSError(t, "unknown shard", err, 400, "ShardNotExist")

	_, err = good.GetCursor("proj", "four", 0, "yesterday")
	wantSLSError(t, "bad from", err, 400, "ParameterInvalid")

	for i := range slsemu.MaxConsumerGroupsPerLogstore {
		if err := good.CreateConsumerGroup("proj", "two", sls.ConsumerGroup{ConsumerGroupName: "cg" + strconv.Itoa(i), Timeout: 60}); err != nil {
			t.Fatalf("consumer group %d: %v", i+1, err)
		}
	}
	err = good.CreateConsumerGroup("proj", "two", sls.ConsumerGroup{ConsumerGroupName: "one-too-many", Timeout: 60})
	wantSLSError(t, "31st consumer group", err, 400, "ConsumerGroupQuotaExceed")
	err = good.CreateConsumerGroup("proj", "two", sls.ConsumerGroup{ConsumerGroupName: "cg0", Timeout: 60})
	wantSLSError(t, "duplicate consumer group", err, 400, "ConsumerGroupAlreadyExist")

	_, err = good.HeartBeat("proj", "two", "nosuchgroup", "c1", []int{})
	wantSLSError(t, "heartbeat to unknown group", err, 404, "ConsumerGroupNotExist")
	_, err = good.HeartBeat("proj", "two", "cg0", "stranger", []int{0})
	wantSLSError(t, "unknown consumer reporting shards", err, 400, "NotExistConsumerWithBody")
	err = good.UpdateCheckpoint("proj", "two", "cg0", "c1", 0, "not base64!", true)
	wantSLSError(t, "checkpoint not base64", err, 400, "InvalidShardCheckPoint")
	err = good.DeleteConsumerGroup("proj", "two", "nosuchgroup")
	wantSLSError(t, "delete unknown group", err, 404, "ConsumerGroupNotExist")
}

func TestUnknownRoutesGetJSONErrors(t *testing.T) {
	srv := startEmulator(t, testWorld())
	req, _ := http.NewRequest(http.MethodGet, "http://proj."+testHost+"/no/such/route", nil)
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Log-Requestid") == "" {
		t.Fatalf("unknown route: %d %q requestid=%q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Log-Requestid"))
	}
}

func TestGetCursorByTimeReturnsFirstGroupAtOrAfter(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	// One group per second boundary, all into shard 0 (hash key 0).
	key := "00000000000000000000000000000000"
	put := func(tag string) {
		if err := c.PostLogStoreLogs("proj", "four", &sls.LogGroup{Logs: []*sls.Log{newLog(time.Now(), "tag", tag)}}, &key); err != nil {
			t.Fatal(err)
		}
	}
	put("before")
	// Wait for the next second so "after" has a strictly later receive time.
	boundary := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(boundary) + 10*time.Millisecond)
	put("after-1")
	put("after-2")

	cursor, err := c.GetCursor("proj", "four", 0, strconv.FormatInt(boundary.Unix(), 10))
	if err != nil {
		t.Fatal(err)
	}
	gl, next, err := c.PullLogs("proj", "four", 0, cursor, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(gl.LogGroups) != 2 || field(gl.LogGroups[0].Logs[0], "tag") != "after-1" || field(gl.LogGroups[1].Logs[0], "tag") != "after-2" {
		t.Fatalf("pull from time cursor returned %d groups starting %q", len(gl.LogGroups), field(gl.LogGroups[0].Logs[0], "tag"))
	}
	end, _ := c.GetCursor("proj", "four", 0, "end")
	if next != end {
		t.Fatalf("next cursor %q, want end %q", next, end)
	}
	// An idle pull returns the same cursor.
	gl, again, err := c.PullLogs("proj", "four", 0, next, "", 10)
	if err != nil || len(gl.LogGroups) != 0 || again != next {
		t.Fatalf("idle pull: %d groups, cursor %q (want %q), err %v", len(gl.LogGroups), again, next, err)
	}
	// A time before everything gives the begin cursor, one after it the end.
	begin, _ := c.GetCursor("proj", "four", 0, "begin")
	if got, _ := c.GetCursor("proj", "four", 0, "1"); got != begin {
		t.Fatalf("cursor at time 1 = %q, want begin %q", got, begin)
	}
	if got, _ := c.GetCursor("proj", "four", 0, strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)); got != end {
		t.Fatalf("cursor an hour ahead = %q, want end %q", got, end)
	}
	// GetCursorTime of the group at the time cursor is that group's receive time.
	at, err := c.GetCursorTime("proj", "four", 0, cursor)
	if err != nil || at.Unix() != boundary.Unix() {
		t.Fatalf("GetCursorTime = %v, %v; want %v", at, err, boundary)
	}
}

func TestPutLogsRoutesAndCompressions(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	shards, err := c.ListShards("proj", "four")
	if err != nil || len(shards) != 4 {
		t.Fatalf("ListShards: %v %v", shards, err)
	}
	// Each hash key lands in the shard whose range holds it.
	for _, sh := range shards {
		key := sh.InclusiveBeginKey
		if err := c.PostLogStoreLogs("proj", "four", &sls.LogGroup{Logs: []*sls.Log{newLog(time.Now(), "shard", strconv.Itoa(sh.ShardID))}}, &key); err != nil {
			t.Fatal(err)
		}
	}
	// Plain, zstd and load-balanced writes.
	for _, ct := range []int{sls.Compress_None, sls.Compress_ZSTD, sls.Compress_LZ4} {
		req := &sls.PostLogStoreLogsRequest{LogGroup: &sls.LogGroup{Logs: []*sls.Log{newLog(time.Now(), "compress", strconv.Itoa(ct))}}, CompressType: ct}
		if err := c.PostLogStoreLogsV2("proj", "four", req); err != nil {
			t.Fatalf("compress type %d: %v", ct, err)
		}
	}
	total := 0
	for _, sh := range shards {
		begin, _ := c.GetCursor("proj", "four", sh.ShardID, "begin")
		gl, _, err := c.PullLogs("proj", "four", sh.ShardID, begin, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		first := gl.LogGroups[0]
		if got := field(first.Logs[0], "shard"); got != strconv.Itoa(sh.ShardID) {
			t.Errorf("shard %d first log is for shard %q", sh.ShardID, got)
		}
		tags := map[string]string{}
		for _, tag := range first.LogTags {
			tags[tag.GetKey()] = tag.GetValue()
		}
		if tags["__receive_time__"] == "" || tags["__client_ip__"] != "127.0.0.1" {
			t.Errorf("shard %d: server tags %v, want __receive_time__ and __client_ip__=127.0.0.1", sh.ShardID, tags)
		}
		total += len(gl.LogGroups)
	}
	if total != 7 {
		t.Fatalf("pulled %d groups over all shards, want 7", total)
	}
}

func TestV4SignaturesAreVerified(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	c.SetAuthVersion(sls.AuthV4)
	c.SetRegion(testRegion)
	if _, err := c.ListShards("proj", "four"); err != nil {
		t.Fatalf("V4 ListShards: %v", err)
	}
	if err := c.CreateConsumerGroup("proj", "four", sls.ConsumerGroup{ConsumerGroupName: "v4", Timeout: 5}); err != nil {
		t.Fatalf("V4 CreateConsumerGroup: %v", err)
	}
	key := "00000000000000000000000000000000"
	if err := c.PostLogStoreLogs("proj", "four", &sls.LogGroup{Logs: []*sls.Log{newLog(time.Now(), "k", "v")}}, &key); err != nil {
		t.Fatalf("V4 PostLogStoreLogs: %v", err)
	}
	bad := newClient(srv, testHost, testAK, "wrong")
	bad.SetAuthVersion(sls.AuthV4)
	bad.SetRegion(testRegion)
	_, err := bad.ListShards("proj", "four")
	wantSLSError(t, "V4 wrong secret", err, 401, "SignatureNotMatch")
}

func TestReachableAsProxyAndByIPLiteral(t *testing.T) {
	srv := startEmulator(t, testWorld())
	proxyURL, _ := url.Parse(srv.URL)

	// (a) The emulator as the HTTP proxy of a client using real endpoint names.
	viaProxy := sls.CreateNormalInterface(testHost, testAK, testSecret, "")
	viaProxy.SetHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}})
	if _, err := viaProxy.ListShards("proj", "four"); err != nil {
		t.Fatalf("through proxy: %v", err)
	}
	// A project reached through another region's endpoint does not exist there.
	_, err := viaProxy.ListShards("bjproj", "bjstore")
	wantSLSError(t, "cross-region project", err, 404, "ProjectNotExist")
	viaBeijing := sls.CreateNormalInterface("cn-beijing.log.aliyuncs.com", testAK, testSecret, "")
	viaBeijing.SetHTTPClient(viaProxy.(*sls.Client).HTTPClient)
	if _, err := viaBeijing.ListShards("bjproj", "bjstore"); err != nil {
		t.Fatalf("bjproj through its own region: %v", err)
	}

	// (b) An IP-literal endpoint, sent as the Python SDK does: Host is
	// <project>.127.0.0.1 with no port, and the client dials the IP itself.
	ipClient := sls.CreateNormalInterface("127.0.0.1", testAK, testSecret, "")
	dialer := &net.Dialer{}
	ipClient.SetHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, srv.Addr)
		},
	}})
	if _, err := ipClient.ListShards("proj", "four"); err != nil {
		t.Fatalf("IP literal endpoint: %v", err)
	}
	projects, err := sls.CreateNormalInterface(srv.Addr, testAK, testSecret, "").ListProject()
	if err != nil || len(projects) != 2 {
		t.Fatalf("ListProject on the bare address: %v %v", projects, err)
	}
}

func TestLogstoreAndConsumerGroupLifecycle(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	if err := c.CreateLogStore("proj", "fresh", 7, 3, false, 0); err != nil {
		t.Fatal(err)
	}
	err := c.CreateLogStore("proj", "fresh", 7, 3, false, 0)
	wantSLSError(t, "duplicate logstore", err, 400, "LogStoreAlreadyExist")
	names, err := c.ListLogStore("proj")
	if err != nil || strings.Join(names, ",") != "four,fresh,two" {
		t.Fatalf("ListLogStore = %v, %v", names, err)
	}
	ls, err := c.GetLogStore("proj", "fresh")
	if err != nil || ls.Name != "fresh" || ls.ShardCount != 3 || ls.TTL != 7 || !ls.AppendMeta {
		t.Fatalf("GetLogStore = %+v, %v", ls, err)
	}
	if shards, err := c.ListShards("proj", "fresh"); err != nil || len(shards) != 3 ||
		shards[0].InclusiveBeginKey != "00000000000000000000000000000000" || shards[2].ExclusiveBeginKey != "ffffffffffffffffffffffffffffffff" {
		t.Fatalf("ListShards = %v, %v", shards, err)
	}

	if err := c.CreateConsumerGroup("proj", "fresh", sls.ConsumerGroup{ConsumerGroupName: "cg", Timeout: 5}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateConsumerGroup("proj", "fresh", sls.ConsumerGroup{ConsumerGroupName: "cg", Timeout: 9, InOrder: true}); err != nil {
		t.Fatal(err)
	}
	groups, err := c.ListConsumerGroup("proj", "fresh")
	if err != nil || len(groups) != 1 || *groups[0] != (sls.ConsumerGroup{ConsumerGroupName: "cg", Timeout: 9, InOrder: true}) {
		t.Fatalf("ListConsumerGroup = %v, %v", groups, err)
	}
	err = c.UpdateConsumerGroup("proj", "fresh", sls.ConsumerGroup{ConsumerGroupName: "nope", Timeout: 9})
	wantSLSError(t, "update unknown group", err, 404, "ConsumerGroupNotExist")
	if err := c.DeleteConsumerGroup("proj", "fresh", "cg"); err != nil {
		t.Fatal(err)
	}
	if groups, _ := c.ListConsumerGroup("proj", "fresh"); len(groups) != 0 {
		t.Fatalf("groups after delete: %v", groups)
	}

	if err := c.DeleteLogStore("proj", "fresh"); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetLogStore("proj", "fresh")
	wantSLSError(t, "deleted logstore", err, 404, "LogStoreNotExist")
}

// pythonStyleRequest signs as the Python SDK does: V1 over Date, then adds
// x-log-date (unsigned) and sends Host <project>.127.0.0.1 without a port.
func pythonStyleRequest(t *testing.T, srv *slsemu.Server, method, uri string, body []byte) *http.Response {
	t.Helper()
	headers := map[string]string{
		"x-log-apiversion": "0.6.0",
		"Date":             time.Now().UTC().Format(http.TimeFormat),
	}
	var signBody []byte
	if len(body) > 0 {
		headers["Content-Type"] = "application/json"
		signBody = body
	} else {
		headers["x-log-bodyrawsize"] = "0"
	}
	if err := sls.NewSignerV1(testAK, testSecret).Sign(method, uri, headers, signBody); err != nil {
		t.Fatal(err)
	}
	headers["x-log-date"] = headers["Date"]
	req, _ := http.NewRequest(method, "http://"+srv.Addr+uri, strings.NewReader(string(body)))
	req.Host = "proj.127.0.0.1"
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestPythonSDKConventions(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	if err := c.CreateConsumerGroup("proj", "two", sls.ConsumerGroup{ConsumerGroupName: "py", Timeout: 20}); err != nil {
		t.Fatal(err)
	}
	if resp := pythonStyleRequest(t, srv, http.MethodPost, "/logstores/two/consumergroups/py?type=heartbeat&consumer=py-1", []byte("[]")); resp.StatusCode != 200 {
		t.Fatalf("python heartbeat: %d", resp.StatusCode)
	}
	begin, _ := c.GetCursor("proj", "two", 0, "begin")
	cp := fmt.Sprintf(`{"shard": 0, "checkpoint": %q}`, begin)
	if resp := pythonStyleRequest(t, srv, http.MethodPost, "/logstores/two/consumergroups/py?type=checkpoint&consumer=py-1&forceSuccess=True", []byte(cp)); resp.StatusCode != 200 {
		t.Fatalf("python checkpoint with forceSuccess=True: %d", resp.StatusCode)
	}
	resp := pythonStyleRequest(t, srv, http.MethodGet, "/logstores/two/consumergroups/py?shard=0", nil)
	var cps []slsemu.Checkpoint
	if err := json.NewDecoder(resp.Body).Decode(&cps); err != nil || len(cps) != 1 || cps[0].Checkpoint != begin || cps[0].Consumer != "py-1" {
		t.Fatalf("python GetCheckpoint?shard=0: %+v %v", cps, err)
	}
	resp = pythonStyleRequest(t, srv, http.MethodGet, "/logstores/two/shards/0?type=log&cursor="+url.QueryEscape(begin)+"&count=10", nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Log-Cursor") != begin || resp.Header.Get("X-Log-Count") != "0" {
		t.Fatalf("python pull type=log: %d cursor %q count %q", resp.StatusCode, resp.Header.Get("X-Log-Cursor"), resp.Header.Get("X-Log-Count"))
	}
}
