// PullLogs: splice the stored, pre-compressed groups into one LZ4 block and send it.
package slsemu

import (
	"net/http"
	"strconv"
	"sync"

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
	if c.r.Header.Get("Accept-Encoding") == "" {
		// Python's compress=False asks for a plain body (rare; costs a decode).
		raw := make([]byte, rawLen)
		if _, err := lz4.UncompressBlock(block, raw); err != nil {
			return c.fail(newAPIError(http.StatusInternalServerError, "InternalServerError", "decode stored block: %v", err))
		}
		body = raw
	} else {
		h.Set("X-Log-Compresstype", "lz4")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(body)
	return http.StatusOK
}
