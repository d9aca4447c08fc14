// PullLogs: splice the stored, pre-compressed groups into one LZ4 block and send it (or, when asked, zstd or plain).
package slsemu

import (
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

var pullBufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

func (s *Server) pullLogs(c *call) int {
	sh, apiErr := c.lookupShard()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	q := c.r.URL.Query()
	if q.Get("query") != "" || q.Get("processor") != "" {
		return c.fail(errParameterInvalid("the emulator does not run SPL queries or processors on PullLogs"))
	}
	cursor := q.Get("cursor")
	if cursor == "" {
		return c.fail(errParameterInvalid("cursor is required"))
	}
	count := 1000
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return c.fail(errParameterInvalid("ParameterCount should be in [1-1000], got %q", v))
		}
		count = n
	}
	endCursor := q.Get("end_cursor")
	res, apiErr := sh.read(cursor, endCursor, count, s.maxPullBytes)
	if apiErr != nil {
		return c.fail(apiErr)
	}

	h := c.w.Header()
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("X-Log-Requestid", c.requestID)
	h.Set("X-Log-Cursor", res.nextCursor)
	h.Set("X-Log-Count", strconv.Itoa(len(res.groups)))
	if endCursor != "" && res.nextCursor == endCursor {
		h.Set("X-Log-End-Of-Cursor", "1")
	}
	if len(res.groups) == 0 {
		h.Set("X-Log-Bodyrawsize", "0")
		h.Set("Content-Length", "0")
		c.w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	h.Set("X-Log-Read-Last-Cursor", strconv.FormatInt(res.lastCursor, 10))

	bufp := pullBufferPool.Get().(*[]byte)
	defer pullBufferPool.Put(bufp)
	buf := (*bufp)[:0]
	if need := spliceBound(res.groups); cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	block, rawLen := appendSplicedBlock(buf, res.groups)
	*bufp = block[:0]
	h.Set("X-Log-Bodyrawsize", strconv.Itoa(rawLen))

	body := block
	switch pullEncoding(c.r.Header.Get("Accept-Encoding")) {
	case "lz4":
		h.Set("X-Log-Compresstype", "lz4")
	case "zstd":
		raw, apiErr := decodeSplicedBlock(block, rawLen)
		if apiErr != nil {
			return c.fail(apiErr)
		}
		body = pullZstdEncoder().EncodeAll(raw, make([]byte, 0, len(block)))
		h.Set("X-Log-Compresstype", "zstd")
	default:
		// Python's compress=False asks for a plain body (rare; costs a decode).
		raw, apiErr := decodeSplicedBlock(block, rawLen)
		if apiErr != nil {
			return c.fail(apiErr)
		}
		body = raw
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(body)
	return http.StatusOK
}

// pullEncoding picks the body encoding from Accept-Encoding: lz4 whenever it
// is listed (the SDKs' default, served by the splice alone), else zstd when
// listed (Go PullLogRequest.CompressType = Compress_ZSTD, Python
// accept_compress_type='zstd'), plain ("") when the header is absent, and lz4
// for anything else, since the Go SDK can decode nothing but lz4 and zstd.
func pullEncoding(acceptEncoding string) string {
	if acceptEncoding == "" {
		return ""
	}
	zstdListed := false
	for part := range strings.SplitSeq(acceptEncoding, ",") {
		coding, _, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "lz4":
			return "lz4"
		case "zstd":
			zstdListed = true
		}
	}
	if zstdListed {
		return "zstd"
	}
	return "lz4"
}

// decodeSplicedBlock undoes the splice for the encodings that need the raw LogGroupList.
func decodeSplicedBlock(block []byte, rawLen int) ([]byte, *APIError) {
	raw := make([]byte, rawLen)
	if _, err := lz4.UncompressBlock(block, raw); err != nil {
		return nil, newAPIError(http.StatusInternalServerError, "InternalServerError", "decode stored block: %v", err)
	}
	return raw, nil
}

// pullZstdEncoder is shared by all pulls: EncodeAll is safe for concurrent
// use. The fastest level, as the Go SDK uses for its own zstd writes.
var pullZstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		panic(err) // only for invalid options, which these are not
	}
	return enc
})
