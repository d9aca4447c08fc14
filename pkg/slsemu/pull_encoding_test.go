// PullLogs encodings seen through the SDK: zstd when asked for, lz4 by default, both decoding to the same logs.
package slsemu_test

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// encodingRecorder remembers the x-log-compresstype of every pull it carries.
type encodingRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *encodingRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil && req.URL.Query().Get("type") == "logs" {
		r.mu.Lock()
		r.seen = append(r.seen, req.Header.Get("Accept-Encoding")+"->"+resp.Header.Get("X-Log-Compresstype"))
		r.mu.Unlock()
	}
	return resp, err
}

func TestPullLogsAnswersZstdWhenAskedAndDecodesLikeLz4(t *testing.T) {
	srv := startEmulator(t, testWorld())
	httpClient := srv.HTTPClient()
	rec := &encodingRecorder{next: httpClient.Transport}
	httpClient.Transport = rec
	c := sls.CreateNormalInterface(testHost, testAK, testSecret, "")
	c.SetHTTPClient(httpClient)

	key := key00
	for g := range 30 {
		lg := &sls.LogGroup{}
		for i := range 40 {
			lg.Logs = append(lg.Logs, newLog(time.Now(), "seq", strconv.Itoa(g*40+i), "path", "/api/v1/orders/"+strconv.Itoa(i%7), "status", "200"))
		}
		if err := c.PostLogStoreLogs("proj", "four", lg, &key); err != nil {
			t.Fatal(err)
		}
	}
	begin, err := c.GetCursor("proj", "four", 0, "begin")
	if err != nil {
		t.Fatal(err)
	}
	pull := func(compressType int) (*sls.LogGroupList, *sls.PullLogMeta) {
		t.Helper()
		gl, meta, err := c.PullLogsWithQuery(&sls.PullLogRequest{Project: "proj", Logstore: "four", ShardID: 0, Cursor: begin, LogGroupMaxCount: 1000, CompressType: compressType})
		if err != nil {
			t.Fatalf("compress type %d: %v", compressType, err)
		}
		return gl, meta
	}
	lz4List, lz4Meta := pull(sls.Compress_LZ4)
	zstdList, zstdMeta := pull(sls.Compress_ZSTD)

	if len(zstdList.LogGroups) != 30 || zstdMeta.Count != 30 || zstdMeta.NextCursor != lz4Meta.NextCursor || zstdMeta.RawSize != lz4Meta.RawSize {
		t.Fatalf("zstd pull: %d groups, meta %+v; lz4 meta %+v", len(zstdList.LogGroups), zstdMeta, lz4Meta)
	}
	lz4Raw, _ := lz4List.Marshal()
	zstdRaw, _ := zstdList.Marshal()
	if !bytes.Equal(lz4Raw, zstdRaw) || len(lz4Raw) != lz4Meta.RawSize {
		t.Fatalf("zstd and lz4 pulls decode differently (%d and %d bytes, raw size %d)", len(zstdRaw), len(lz4Raw), lz4Meta.RawSize)
	}
	if zstdMeta.Netflow == lz4Meta.Netflow {
		t.Errorf("zstd and lz4 bodies have the same size %d; was the zstd one really zstd?", zstdMeta.Netflow)
	}
	// The SDK picks its decoder by x-log-compresstype: check what was sent.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := []string{"lz4->lz4", "zstd->zstd"}; len(rec.seen) != 2 || rec.seen[0] != want[0] || rec.seen[1] != want[1] {
		t.Fatalf("pulls answered %v, want %v", rec.seen, want)
	}
}
