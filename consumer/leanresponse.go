// Reading an answer on the lean client: the status line, the headers a caller wants, the body's framing, and the connection's return to the pool.
package consumer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"strings"
)

// leanResponse is an answer whose body is still on the connection: the caller
// reads it from body and then calls done.
type leanResponse struct {
	status        int
	contentLength int64 // -1 when chunked or unknown
	header        map[string]string
	body          io.Reader
	conn          *leanConn
	t             *leanTransport
	keepAlive     bool
	chunked       bool
	stopWatch     func() bool
}

// wantedHeaders are the response headers a caller looks at; others are
// skipped without allocating. Keys are lower case; each maps to itself, so a
// kept header's key costs no allocation.
type wantedHeaders map[string]string

func newWantedHeaders(names ...string) wantedHeaders {
	w := wantedHeaders{}
	for _, n := range names {
		w[n] = n
	}
	return w
}

// readHead reads the status line and headers of the answer.
func (s *sentRequest) readHead(want wantedHeaders, into map[string]string) (*leanResponse, error) {
	c := s.conn
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		// Nothing came back: the server closed a connection it kept idle
		// (may be sent again), unless we gave up waiting (a timeout).
		var ne net.Error
		if len(line) == 0 && !(errors.As(err, &ne) && ne.Timeout()) {
			err = errNoAnswer{err}
		}
		return nil, err
	}
	status, ok := parseStatusLine(line)
	if !ok {
		return nil, fmt.Errorf("malformed HTTP status line %q", bytes.TrimSpace(line))
	}
	resp := &leanResponse{status: status, contentLength: -1, conn: c, t: s.t, keepAlive: true, stopWatch: s.stopWatch, header: into}
	clear(into)
	chunked := false
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			return nil, fmt.Errorf("malformed HTTP header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("malformed Content-Length %q", value)
			}
			resp.contentLength = n
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(value, "close") {
				resp.keepAlive = false
			}
		}
		var key string
		keep := want == nil
		if keep {
			key = strings.ToLower(string(name))
		} else {
			key, keep = wantHeader(want, name)
		}
		if keep {
			if resp.header == nil {
				resp.header = make(map[string]string, 8)
			}
			resp.header[key] = string(value)
		}
	}
	switch {
	case chunked:
		resp.contentLength, resp.chunked = -1, true
		resp.body = httputil.NewChunkedReader(c.br)
	case resp.contentLength >= 0:
		resp.body = io.LimitReader(c.br, resp.contentLength)
	default:
		resp.keepAlive = false // the body ends when the server closes
		resp.body = c.br
	}
	return resp, nil
}

// wantHeader looks a header name up without allocating, returning its key.
func wantHeader(want wantedHeaders, name []byte) (string, bool) {
	var lower [64]byte
	if len(name) > len(lower) {
		return "", false
	}
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		lower[i] = ch
	}
	key, ok := want[string(lower[:len(name)])]
	return key, ok
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

func parseStatusLine(line []byte) (int, bool) {
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false
	}
	code, err := strconv.Atoi(string(line[9:12]))
	return code, err == nil
}

// done ends the exchange: a fully read body leaves the connection for the
// next request; anything else closes it.
func (r *leanResponse) done(bodyRead bool) {
	if r.conn == nil {
		return
	}
	clean := r.stopWatch() // false: the context already ended and poisoned the deadline
	c := r.conn
	r.conn = nil
	if bodyRead && r.chunked {
		bodyRead = skipTrailer(c.br)
	}
	c.inflight--
	if !bodyRead || !r.keepAlive || !clean || c.closeAfter {
		c.broken = true
	}
	switch {
	case c.broken:
		_ = c.Close()
	case c.inflight == 0:
		r.t.putConn(c)
	}
}

// skipTrailer reads the trailer section after a chunked body's last chunk,
// which the chunked reader leaves unread.
func skipTrailer(br *bufio.Reader) bool {
	for range 64 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return true
		}
	}
	return false
}

// drain reads and discards what is left of a small body, so the connection
// can be reused; a large remainder closes it instead.
func (r *leanResponse) drain() bool {
	n, err := io.CopyN(io.Discard, r.body, 64<<10)
	return err == io.EOF || (err == nil && n < 64<<10 && r.contentLength >= 0)
}
