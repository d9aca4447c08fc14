// Fuzz tests: malformed PutLogs bodies and arbitrary requests get JSON errors, never a panic.
package slsemu

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/pierrec/lz4/v4"
)

func fuzzServer(t testing.TB) *Server {
	w := &World{
		AccessKeys: []AccessKey{{ID: "ak", Secret: "sk"}},
		Regions: []RegionConfig{{Name: "r", Endpoint: "r.log.aliyuncs.com", Projects: []ProjectConfig{
			{Name: "proj", Logstores: []LogstoreConfig{{Name: "store", Shards: 2}}},
		}}},
	}
	s, err := NewServer(w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedRequest builds a request signed the way the Go SDK signs (V1).
func signedRequest(t testing.TB, method, uri string, headers map[string]string, body []byte) *http.Request {
	if headers == nil {
		headers = map[string]string{}
	}
	headers["x-log-apiversion"] = "0.6.0"
	headers["Date"] = time.Now().UTC().Format(http.TimeFormat)
	if _, ok := headers["x-log-bodyrawsize"]; !ok {
		headers["x-log-bodyrawsize"] = strconv.Itoa(len(body))
	}
	var signBody []byte
	if len(body) > 0 {
		signBody = body
		if _, ok := headers["Content-Type"]; !ok {
			headers["Content-Type"] = "application/x-protobuf"
		}
	}
	if err := sls.NewSignerV1("ak", "sk").Sign(method, uri, headers, signBody); err != nil {
		t.Skip("the SDK cannot sign this URI:", err)
	}
	req, err := http.NewRequest(method, "http://proj.r.log.aliyuncs.com"+uri, strings.NewReader(string(body)))
	if err != nil {
		t.Skip("not a valid request:", err)
	}
	req.RemoteAddr = "192.0.2.1:1234"
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}

// checkAnswer fails unless the response is a 200 or a JSON SLS error.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	if rec.Code == http.StatusOK {
		return
	}
	ok := len(allowed) == 0
	for _, s := range allowed {
		ok = ok || rec.Code == s
	}
	if !ok {
		t.Fatalf("status %d not in %v: %s", rec.Code, allowed, rec.Body.String())
	}
	var e struct {
		Code    string `json:"errorCode"`
		Message string `json:"errorMessage"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
		t.Fatalf("status %d with a non-SLS error body %q", rec.Code, rec.Body.String())
	}
	if rec.Header().Get("X-Log-Requestid") == "" {
		t.Fatalf("status %d without x-log-requestid", rec.Code)
	}
}

func FuzzPutLogsBody(f *testing.F) {
	group, _ := (&sls.LogGroup{Logs: []*sls.Log{{Time: new(uint32(time.Now().Unix())), Contents: []*sls.LogContent{{Key: new("k"), Value: new("v")}}}}}).Marshal()
	compressed := make([]byte, lz4.CompressBlockBound(len(group)))
	n, _ := lz4.CompressBlock(group, compressed, nil)
	f.Add(group, uint8(0), len(group))
	f.Add(compressed[:n], uint8(1), len(group))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0x0f}, uint8(0), 5)
	f.Add(compressed[:n], uint8(1), len(group)+7)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, uint8(2), 100)
	srv := fuzzServer(f)
	types := []string{"", "lz4", "zstd", "deflate", "gzip"}
	f.Fuzz(func(t *testing.T, body []byte, typ uint8, rawSize int) {
		headers := map[string]string{}
		if ct := types[int(typ)%len(types)]; ct != "" {
			headers["x-log-compresstype"] = ct
			headers["x-log-bodyrawsize"] = strconv.Itoa(rawSize)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, signedRequest(t, http.MethodPost, "/logstores/store/shards/lb", headers, body))
		checkAnswer(t, rec, http.StatusBadRequest)
	})
}

func FuzzRequestParsing(f *testing.F) {
	f.Add("GET", "/logstores/store/shards/0", "type=logs&cursor=MTA=&count=10", []byte(nil))
	f.Add("POST", "/logstores/store/consumergroups/cg", "type=heartbeat&consumer=c", []byte("[0,1]"))
	f.Add("POST", "/logstores/store/consumergroups", "", []byte(`{"consumerGroup":"cg","timeout":3}`))
	f.Add("GET", "/logstores/store/shards/1", "type=cursor&from=123", []byte(nil))
	f.Add("PUT", "/logstores/store/consumergroups/cg", "", []byte(`{"order":true}`))
	f.Add("POST", "/logstores/store/consumergroups/cg", "type=checkpoint&consumer=c&forceSuccess=false", []byte(`{"shard":0,"checkpoint":"MTA="}`))
	f.Add("DELETE", "/logstores/store", "", []byte(nil))
	f.Add("GET", "/", "", []byte(nil))
	f.Add("POST", "/logstores/store/shards/0", "action=split&key=40000000000000000000000000000000", []byte(nil))
	f.Add("POST", "/logstores/store/shards/1", "action=split&shardCount=3", []byte(nil))
	f.Add("POST", "/logstores/store/shards/0", "action=merge", []byte(nil))
	f.Add("GET", "/logstores", "offset=0&size=500&telemetryType=", []byte(nil))
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		switch method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			method = "GET"
		}
		if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, adminPrefix) || strings.ContainsAny(path, "?# \t\r\n%") {
			return
		}
		uri := path
		if query != "" {
			uri += "?" + query
		}
		headers := map[string]string{"Content-Type": "application/json", "x-log-bodyrawsize": "0"}
		req := signedRequest(t, method, uri, headers, body)
		rec := httptest.NewRecorder()
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s %s panicked: %v", method, uri, r)
				}
			}()
			srv.ServeHTTP(rec, req)
		}()
		checkAnswer(t, rec, 400, 401, 404)
	})
}

func TestFuzzHelpersSignLikeTheSDK(t *testing.T) {
	srv := fuzzServer(t)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, signedRequest(t, http.MethodGet, "/logstores/store/shards", nil, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("a signed ListShards got %d: %s", rec.Code, rec.Body.String())
	}
	var shards []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &shards); err != nil || len(shards) != 2 {
		t.Fatalf("ListShards body %s: %v", rec.Body.String(), err)
	}
}
