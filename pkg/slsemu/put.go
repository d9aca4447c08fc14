// PutLogs: decode lz4, zstd, deflate or plain bodies, validate the LogGroup, route it to a shard and store it.
package slsemu

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// maxRawGroupBytes is the largest LogGroup accepted after decompression (SLS: 10 MB).
const maxRawGroupBytes = 10 << 20

var zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxRawGroupBytes), zstd.WithDecoderConcurrency(0))

func (s *Server) putLogs(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	raw, apiErr := decodePutBody(c.r.Header, c.body)
	if apiErr != nil {
		return c.fail(apiErr)
	}
	pick := l.nextWritableShardLocked
	if c.shard == "route" {
		key := strings.ToLower(c.r.URL.Query().Get("key"))
		if len(key) != 32 || !isHex(key) {
			return c.fail(newAPIError(http.StatusBadRequest, "InvalidKey", "hash key %q must be 32 hex digits", key))
		}
		pick = func() *shard { return l.shardForKeyLocked(key) }
	}
	clientIP, _, _ := net.SplitHostPort(c.r.RemoteAddr)
	if apiErr := s.storeEncodedGroup(l, pick, raw, clientIP, c.now); apiErr != nil {
		return c.fail(apiErr)
	}
	return c.okEmpty()
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// decodePutBody undoes the body's compression, checking the size headers.
func decodePutBody(h http.Header, body []byte) ([]byte, *APIError) {
	compressType := h.Get("x-log-compresstype")
	if compressType == "" {
		if len(body) > maxRawGroupBytes {
			return nil, newAPIError(http.StatusBadRequest, "PostBodyTooLarge", "body is larger than %d bytes", maxRawGroupBytes)
		}
		return body, nil
	}
	sizeHeader := h.Get("x-log-bodyrawsize")
	if sizeHeader == "" {
		return nil, newAPIError(http.StatusBadRequest, "MissingBodyRawSize", "x-log-bodyrawsize is required with x-log-compresstype")
	}
	rawSize, err := strconv.Atoi(sizeHeader)
	if err != nil || rawSize <= 0 {
		return nil, newAPIError(http.StatusBadRequest, "InvalidBodyRawSize", "x-log-bodyrawsize %q is invalid", sizeHeader)
	}
	if rawSize > maxRawGroupBytes {
		return nil, newAPIError(http.StatusBadRequest, "PostBodyTooLarge", "raw body of %d bytes exceeds %d", rawSize, maxRawGroupBytes)
	}
	uncompressErr := func(err error) *APIError {
		return newAPIError(http.StatusBadRequest, "PostBodyUncompressError", "%s body does not decompress to %d bytes: %v", compressType, rawSize, err)
	}
	switch compressType {
	case "lz4":
		raw := make([]byte, rawSize)
		n, err := lz4.UncompressBlock(body, raw)
		if err == nil && n != rawSize {
			err = fmt.Errorf("got %d bytes", n)
		}
		if err != nil {
			return nil, uncompressErr(err)
		}
		return raw, nil
	case "zstd":
		raw, err := zstdDecoder.DecodeAll(body, make([]byte, 0, rawSize))
		if err == nil && len(raw) != rawSize {
			err = fmt.Errorf("got %d bytes", len(raw))
		}
		if err != nil {
			return nil, uncompressErr(err)
		}
		return raw, nil
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, uncompressErr(err)
		}
		raw, err := io.ReadAll(io.LimitReader(zr, int64(rawSize)+1))
		if err == nil && len(raw) != rawSize {
			err = fmt.Errorf("got %d bytes", len(raw))
		}
		if err != nil {
			return nil, uncompressErr(err)
		}
		return raw, nil
	}
	return nil, newAPIError(http.StatusBadRequest, "InvalidCompressType", "compress type %q is not supported (lz4, zstd, deflate)", compressType)
}

// storeEncodedGroup validates an encoded LogGroup, adds the server tags and
// appends it to the shard pick chooses (called with the shard list locked).
func (s *Server) storeEncodedGroup(l *logstore, pick func() *shard, encoded []byte, clientIP string, now time.Time) *APIError {
	var lg sls.LogGroup
	if err := lg.Unmarshal(encoded); err != nil {
		return errPostBodyInvalid("body is not a LogGroup: %v", err)
	}
	if len(lg.Logs) == 0 {
		return errPostBodyInvalid("the LogGroup holds no logs")
	}
	earliest, latest := now.Add(-7*24*time.Hour).Unix(), now.Add(15*time.Minute).Unix()
	for i, log := range lg.Logs {
		if t := int64(log.GetTime()); t < earliest || t > latest {
			return newAPIError(http.StatusBadRequest, "InvalidTimestamp", "log %d has time %d outside [now-7d, now+15m]", i, t)
		}
	}
	if l.appendMeta {
		encoded = appendLogTag(encoded, "__receive_time__", strconv.FormatInt(now.Unix(), 10))
		if clientIP != "" {
			encoded = appendLogTag(encoded, "__client_ip__", clientIP)
		}
	}
	return l.writeGroup(newStoredGroup(encoded, len(lg.Logs), now), pick)
}

// appendLogTag appends a LogGroup.LogTags entry to an encoded LogGroup;
// protobuf concatenation appends to repeated fields, so no re-encoding is needed.
func appendLogTag(encoded []byte, key, value string) []byte {
	tagLen := 1 + varintLen(len(key)) + len(key) + 1 + varintLen(len(value)) + len(value)
	out := make([]byte, len(encoded), len(encoded)+1+varintLen(tagLen)+tagLen)
	copy(out, encoded)
	out = append(out, 0x32) // field 6, wire type 2
	out = appendVarint(out, uint64(tagLen))
	out = append(out, 0x0a)
	out = appendVarint(out, uint64(len(key)))
	out = append(out, key...)
	out = append(out, 0x12)
	out = appendVarint(out, uint64(len(value)))
	return append(out, value...)
}

func varintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// PutLogGroup writes a log group directly, as PutLogs would, into shard
// shardID or, when shardID < 0, the next readwrite shard round-robin. A
// readonly shard refuses it, as SLS never writes to one.
func (s *Server) PutLogGroup(projectName, logstoreName string, shardID int, lg *sls.LogGroup) error {
	_, l, apiErr := s.lookupLogstore(projectName, logstoreName)
	if apiErr != nil {
		return apiErr
	}
	encoded, err := lg.Marshal()
	if err != nil {
		return err
	}
	pick := l.nextWritableShardLocked
	if shardID >= 0 {
		if l.shardByID(shardID) == nil {
			return errShardNotExist(strconv.Itoa(shardID))
		}
		pick = func() *shard { return l.shardByIDLocked(shardID) }
	}
	if apiErr := s.storeEncodedGroup(l, pick, encoded, "127.0.0.1", time.Now()); apiErr != nil {
		return apiErr
	}
	return nil
}
