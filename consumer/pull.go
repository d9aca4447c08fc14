// Raw PullLogs: a signed GET per pull, the body and its decompression in pooled buffers, no SDK decode.
package consumer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// slsAPIVersion is what the SDK sends as x-log-apiversion.
const slsAPIVersion = "0.6.0"

// puller sends raw PullLogs requests for one member: the SDK's pull would
// allocate the body and its decompression anew on every call and decode
// every log into structs.
type puller struct {
	transport   *leanTransport
	credentials sls.CredentialsProvider
	scheme      string // http or https
	host        string // <project>.<endpoint>
	pathPrefix  string // /logstores/<logstore>/shards/
	compression string // lz4 or zstd
	userAgent   string
	budget      *byteBudget
}

// pulled is one PullLogs answer.
type pulled struct {
	nextCursor string
	groups     int    // log groups returned
	raw        []byte // the decompressed LogGroupList, pooled; nil when empty
	reserved   int64  // bytes held in the budget until release
	budget     *byteBudget
}

// release returns the buffers and the budget; the batch must not be used after.
func (p *pulled) release() {
	if p.raw != nil {
		putBuffer(p.raw)
		p.raw = nil
	}
	if p.reserved > 0 {
		p.budget.release(p.reserved)
		p.reserved = 0
	}
}

func newPuller(transport *leanTransport, credentials sls.CredentialsProvider, endpoint, project, logstore, compression, userAgent string, budget *byteBudget) *puller {
	scheme, host := "http", endpoint
	switch {
	case strings.HasPrefix(endpoint, "https://"):
		scheme, host = "https", strings.TrimPrefix(endpoint, "https://")
	case strings.HasPrefix(endpoint, "http://"):
		host = strings.TrimPrefix(endpoint, "http://")
	}
	return &puller{
		transport:   transport,
		credentials: credentials,
		scheme:      scheme,
		host:        project + "." + host,
		pathPrefix:  "/logstores/" + logstore + "/shards/",
		compression: compression,
		userAgent:   userAgent,
		budget:      budget,
	}
}

// signedPull is a shard's last signed pull request. An idle shard polled
// again from the same cursor reuses it for a while (SLS accepts a Date up
// to 15 minutes old), so an idle poll is one write of prepared bytes.
type signedPull struct {
	cursor      string
	count       int
	accessKeyID string
	token       string
	signedAt    time.Time
	block       []byte      // rendered headers
	request     leanRequest // the request itself, sent again as is
}

// signatureReuse is how long a signed pull may be sent again.
const signatureReuse = time.Minute

// pull reads up to count log groups of a shard from cursor. signed is the
// shard's cache of its signed request; header receives the answer's headers.
func (p *puller) pull(ctx context.Context, shard int, cursor string, count int, signed *signedPull, header map[string]string) (*pulled, error) {
	sent, err := p.start(ctx, shard, cursor, count, signed)
	if err != nil {
		return nil, err
	}
	return p.finish(sent, header)
}

// start signs (or reuses the signature of) a pull and writes it.
func (p *puller) start(ctx context.Context, shard int, cursor string, count int, signed *signedPull) (*sentRequest, error) {
	req, err := p.prepare(shard, cursor, count, signed)
	if err != nil {
		return nil, err
	}
	return p.transport.send(ctx, req)
}

// prepare signs a pull, or reuses the shard's signed request while its
// cursor and credentials stay the same.
func (p *puller) prepare(shard int, cursor string, count int, signed *signedPull) (*leanRequest, error) {
	creds, err := p.credentials.GetCredentials()
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	now := time.Now()
	if signed.block == nil || signed.cursor != cursor || signed.count != count || signed.accessKeyID != creds.AccessKeyID ||
		signed.token != creds.SecurityToken || now.Sub(signed.signedAt) > signatureReuse {
		// Keys in the order SLS's canonical resource sorts them.
		uri := p.pathPrefix + strconv.Itoa(shard) + "?count=" + strconv.Itoa(count) + "&cursor=" + url.QueryEscape(cursor) + "&type=logs"
		headers := map[string]string{
			"x-log-apiversion":  slsAPIVersion,
			"x-log-bodyrawsize": "0",
			"Accept":            "application/x-protobuf",
			"Accept-Encoding":   p.compression,
			"Date":              httpDate(),
			"User-Agent":        p.userAgent,
		}
		if creds.SecurityToken != "" {
			headers["x-acs-security-token"] = creds.SecurityToken
		}
		if err := sls.NewSignerV1(creds.AccessKeyID, creds.AccessKeySecret).Sign(http.MethodGet, uri, headers, nil); err != nil {
			return nil, err
		}
		block := signed.block[:0]
		for k, v := range headers {
			block = append(append(append(append(block, k...), ": "...), v...), "\r\n"...)
		}
		*signed = signedPull{cursor: cursor, count: count, accessKeyID: creds.AccessKeyID, token: creds.SecurityToken, signedAt: now, block: block,
			request: leanRequest{method: http.MethodGet, scheme: p.scheme, host: p.host, uri: uri}}
		signed.request.headerBlock = signed.block
	}
	return &signed.request, nil
}

// finish reads a started pull's answer: its body and decompression land in
// pooled buffers.
func (p *puller) finish(sent *sentRequest, header map[string]string) (*pulled, error) {
	ctx := sent.ctx
	resp, err := sent.receive(pullHeaders, header)
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.body, 64<<10))
		resp.done(err == nil && resp.drain())
		return nil, parseAPIError(resp.status, body, resp.header["x-log-requestid"])
	}
	next := resp.header["x-log-cursor"]
	if next == "" {
		resp.done(false)
		return nil, fmt.Errorf("PullLogs answer without x-log-cursor")
	}
	groups, _ := strconv.Atoi(resp.header["x-log-count"])
	rawSize, err := strconv.Atoi(resp.header["x-log-bodyrawsize"])
	if err != nil || rawSize < 0 {
		resp.done(false)
		return nil, fmt.Errorf("PullLogs answer with invalid x-log-bodyrawsize %q", resp.header["x-log-bodyrawsize"])
	}
	out := &pulled{nextCursor: next, groups: groups, budget: p.budget}
	if rawSize == 0 {
		resp.done(resp.drain())
		return out, nil
	}
	netSize := int(resp.contentLength)
	if out.reserved, err = p.budget.acquire(ctx, int64(max(netSize, 0)+rawSize)); err != nil {
		resp.done(false)
		return nil, err
	}
	compressed, err := readBody(resp.body, netSize)
	resp.done(err == nil)
	if err != nil {
		out.release()
		return nil, err
	}
	out.raw, err = decompress(resp.header["x-log-compresstype"], compressed, rawSize)
	putBuffer(compressed)
	if err != nil {
		out.release()
		return nil, err
	}
	return out, nil
}

// pullHeaders are the answer's headers a pull reads.
var pullHeaders = newWantedHeaders("x-log-cursor", "x-log-count", "x-log-bodyrawsize", "x-log-compresstype", "x-log-requestid")

// readBody reads a response body into a pooled buffer.
func readBody(body io.Reader, contentLength int) ([]byte, error) {
	if contentLength >= 0 {
		buf := getBuffer(contentLength)
		if _, err := io.ReadFull(body, buf); err != nil {
			putBuffer(buf)
			return nil, err
		}
		return buf, nil
	}
	var b bytes.Buffer // chunked answers are rare; SLS sends a length
	if _, err := b.ReadFrom(body); err != nil {
		return nil, err
	}
	buf := getBuffer(b.Len())
	copy(buf, b.Bytes())
	return buf, nil
}

var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		panic(err) // only bad options fail
	}
	return d
})

// decompress expands a pulled body into a pooled buffer of rawSize bytes.
func decompress(compressType string, body []byte, rawSize int) ([]byte, error) {
	raw := getBuffer(rawSize)
	switch compressType {
	case "lz4":
		n, err := lz4.UncompressBlock(body, raw)
		if err != nil || n != rawSize {
			putBuffer(raw)
			return nil, fmt.Errorf("lz4 body decompressed to %d bytes, want %d: %v", n, rawSize, err)
		}
	case "zstd":
		out, err := zstdDecoder().DecodeAll(body, raw[:0])
		if err != nil || len(out) != rawSize || &out[0] != &raw[0] {
			putBuffer(raw)
			return nil, fmt.Errorf("zstd body decompressed to %d bytes, want %d: %v", len(out), rawSize, err)
		}
	case "":
		if len(body) != rawSize {
			putBuffer(raw)
			return nil, fmt.Errorf("uncompressed body of %d bytes, want %d", len(body), rawSize)
		}
		copy(raw, body)
	default:
		putBuffer(raw)
		return nil, fmt.Errorf("unsupported x-log-compresstype %q", compressType)
	}
	return raw, nil
}

// cachedDate is the Date header value, formatted once per second.
var cachedDate atomic.Pointer[dateStamp]

type dateStamp struct {
	second int64
	text   string
}

func httpDate() string {
	now := time.Now()
	if d := cachedDate.Load(); d != nil && d.second == now.Unix() {
		return d.text
	}
	d := &dateStamp{second: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}
