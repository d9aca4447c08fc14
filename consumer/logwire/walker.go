// Package logwire walks a raw PullLogs body (a protobuf LogGroupList) without decoding it into structs.
//
// The SDK's decoder (sls.LogsBytesDecode) allocates some 27 times per log;
// the Walker hands out (key, value) slices of the body itself and reuses its
// own few buffers, so a walk allocates nothing once they have grown.
//
// For every input the Walker agrees with sls.LogsBytesDecode followed by
// the consumer's flattening (consumer/batch.go, sdkBatch): same logs, same
// fields in the same order, byte-equal keys and values, same times; and it
// returns an error exactly when LogsBytesDecode does. FuzzWalkerMatchesSDK
// checks this.
package logwire

import (
	"encoding/binary"
	"fmt"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// Walker walks LogGroupList bodies. Reuse one per goroutine: it keeps its
// buffers, so a walk allocates nothing in steady state. The zero value is
// ready to use; a Walker must not be used by two goroutines at once.
type Walker struct {
	fields  []match.Field // one log's fields: its contents, then meta
	meta    []match.Field // the current group's __topic__, __source__, __tag__:*
	tagKeys []byte        // "__tag__:<key>" of the current group's tags, back to back
	tags    []tagRef      // the current group's tags, keys as offsets in tagKeys
	logs    []LogRef      // the current group's logs, found by its first pass
}

// tagRef is a tag whose key is tagKeys[start:end]: offsets, because
// tagKeys may move while a group's tags are still being collected.
type tagRef struct {
	start, end int
	value      []byte
}

// LogRef locates one log inside the body it was walked from: body[Start:End]
// is the Log message (without its field key and length prefix). It holds no
// pointer and stays meaningful as long as the body's bytes do, so it can be
// kept past the callback, and past later walks of other bodies, and passed
// to Contents with the same body.
type LogRef struct {
	Start, End int
}

// The metadata keys are shared by all walkers: their capacity is capped
// too, so that an append by a caller copies instead of racing.
var (
	topicKey  = capped("__topic__")
	sourceKey = capped("__source__")
)

func capped(s string) []byte { b := []byte(s); return b[:len(b):len(b)] }

const tagPrefix = "__tag__:"

// Walk calls fn for every log of body in order. fields holds the log's
// contents in order, then the group's metadata: __topic__ (if the group's
// Topic is set and not empty; the last one wins), __source__ (likewise),
// then each LogTag as __tag__:<key> in order. Values and content keys alias
// body, with their capacity capped at their length; fields and the
// __tag__:<key> keys (built in the walker's buffer) are only valid during
// the call. logTime is Log.Time in seconds plus TimeNs/1e9 when TimeNs is
// present.
//
// It returns the number of logs fn was called for and, for malformed input,
// an error matching ErrMalformed. fn may already have been called for the
// logs before the defect: callers discard partial results on error.
func (w *Walker) Walk(body []byte, fn func(ref LogRef, fields []match.Field, logTime float64)) (logs int, err error) {
	group := 0
	for i := 0; i < len(body); {
		num, wt, next, err := tag(body, i)
		if err != nil {
			return logs, wrap(err)
		}
		if num != 1 { // LogGroupList has no other field
			if i, err = skip(body, next, wt); err != nil {
				return logs, wrap(err)
			}
			continue
		}
		if wt != wtBytes {
			return logs, wrap(errWireType)
		}
		start, end, err := length(body, next)
		if err != nil {
			return logs, wrap(err)
		}
		n, err := w.walkGroup(body, start, end, fn)
		logs += n
		if err != nil {
			return logs, wrap(fmt.Errorf("LogGroup %d: %w", group, err))
		}
		group++
		i = end
	}
	return logs, nil
}

// wrap prefixes an error of Walk; it still matches ErrMalformed.
func wrap(err error) error { return fmt.Errorf("logwire: malformed LogGroupList: %w", err) }

// walkGroup walks the LogGroup body[start:end] in two passes: its Topic,
// Source and LogTags usually follow its Logs, so the first pass collects
// them with the logs' positions, the second decodes the logs.
func (w *Walker) walkGroup(body []byte, start, end int, fn func(LogRef, []match.Field, float64)) (int, error) {
	g := body[start:end:end]
	w.logs, w.tags, w.tagKeys = w.logs[:0], w.tags[:0], w.tagKeys[:0]
	var topic, source []byte // last one wins, as gogo's decode
	for i := 0; i < len(g); {
		num, wt, next, err := tag(g, i)
		if err != nil {
			return 0, err
		}
		if num > 6 {
			if i, err = skip(g, next, wt); err != nil {
				return 0, err
			}
			continue
		}
		// Fields 1 to 6 are all length-delimited.
		if wt != wtBytes {
			return 0, errWireType
		}
		s, e, err := length(g, next)
		if err != nil {
			return 0, err
		}
		switch num {
		case 1: // Logs
			w.logs = append(w.logs, LogRef{start + s, start + e})
		case 3: // Topic
			topic = g[s:e:e]
		case 4: // Source
			source = g[s:e:e]
		case 6: // LogTags
			k, v, err := pair(g[s:e:e])
			if err != nil {
				return 0, fmt.Errorf("LogTag: %w", err)
			}
			ks := len(w.tagKeys)
			w.tagKeys = append(append(w.tagKeys, tagPrefix...), k...)
			w.tags = append(w.tags, tagRef{ks, len(w.tagKeys), v})
		}
		// 2 (Category) and 5 (MachineUUID) are only checked, like unknown
		// fields; gogo decodes them but the flattening ignores them.
		i = e
	}

	w.meta = w.meta[:0]
	if len(topic) > 0 {
		w.meta = append(w.meta, match.Field{Key: topicKey, Value: topic})
	}
	if len(source) > 0 {
		w.meta = append(w.meta, match.Field{Key: sourceKey, Value: source})
	}
	for _, t := range w.tags {
		w.meta = append(w.meta, match.Field{Key: w.tagKeys[t.start:t.end:t.end], Value: t.value})
	}

	for n, ref := range w.logs {
		fields, logTime, err := parseLog(body[ref.Start:ref.End:ref.End], w.fields[:0])
		if err != nil {
			return n, fmt.Errorf("Log %d: %w", n, err)
		}
		fields = append(fields, w.meta...)
		w.fields = fields
		fn(ref, fields, logTime)
	}
	return len(w.logs), nil
}

// Contents appends the contents (not the metadata) of the log ref of body
// to dst, aliasing body as Walk does. ref must come from a walk of the same
// bytes; if it does not locate a well-formed log, dst is returned unchanged.
func (w *Walker) Contents(body []byte, ref LogRef, dst []match.Field) []match.Field {
	if ref.Start < 0 || ref.Start > ref.End || ref.End > len(body) {
		return dst
	}
	out, _, err := parseLog(body[ref.Start:ref.End:ref.End], dst)
	if err != nil {
		return dst
	}
	return out
}

// parseLog appends the contents of the Log message b to dst and returns
// its time. Time (required) and TimeNs: the last one wins.
func parseLog(b []byte, dst []match.Field) ([]match.Field, float64, error) {
	var sec, ns uint32
	var hasTime, hasNs bool
	for i := 0; i < len(b); {
		// Fast path: a Contents field (key 0x12) holding a canonical pair.
		if b[i] == 0x12 {
			if n, s, ok := len12(b, i+1); ok && n <= len(b)-s {
				if k, v, ok := canonicalPair(b[s : s+n : s+n]); ok {
					dst = append(dst, match.Field{Key: k, Value: v})
					i = s + n
					continue
				}
			}
		}
		num, wt, next, err := tag(b, i)
		if err != nil {
			return dst, 0, err
		}
		i = next
		switch num {
		case 1: // Time, a uint32 varint: gogo keeps the low 32 bits
			if wt != wtVarint {
				return dst, 0, errWireType
			}
			var v uint64
			if v, i, err = varint(b, i); err != nil {
				return dst, 0, err
			}
			sec, hasTime = uint32(v), true
		case 2: // Contents
			if wt != wtBytes {
				return dst, 0, errWireType
			}
			s, e, err := length(b, i)
			if err != nil {
				return dst, 0, err
			}
			k, v, err := pair(b[s:e:e])
			if err != nil {
				return dst, 0, fmt.Errorf("LogContent: %w", err)
			}
			dst = append(dst, match.Field{Key: k, Value: v})
			i = e
		case 4: // TimeNs, fixed32
			if wt != wtFixed32 {
				return dst, 0, errWireType
			}
			if i+4 > len(b) {
				return dst, 0, errTruncated
			}
			ns, hasNs = binary.LittleEndian.Uint32(b[i:]), true
			i += 4
		default:
			if i, err = skip(b, i, wt); err != nil {
				return dst, 0, err
			}
		}
	}
	if !hasTime {
		return dst, 0, errMissingTime
	}
	// The same expression as the SDK adapter, so the floats are bit-equal.
	t := float64(sec)
	if hasNs {
		t += float64(ns) / 1e9
	}
	return dst, t, nil
}

// canonicalPair decodes a LogContent or LogTag laid out as every encoder
// writes it: Key then Value, lengths of one or two bytes, nothing else. ok
// is false for any other layout, left to pair.
func canonicalPair(b []byte) (key, value []byte, ok bool) {
	if len(b) < 4 || b[0] != 0x0a {
		return nil, nil, false
	}
	kn, ks, ok := len12(b, 1)
	if !ok || kn > len(b)-ks-2 || b[ks+kn] != 0x12 {
		return nil, nil, false
	}
	ke := ks + kn
	vn, vs, ok := len12(b, ke+1)
	if !ok || vn != len(b)-vs {
		return nil, nil, false
	}
	return b[ks:ke:ke], b[vs:], true
}

// len12 reads a varint of one or two bytes at b[i:], as the lengths of
// nearly all fields are; ok is false for any other.
func len12(b []byte, i int) (n, next int, ok bool) {
	if i < len(b) && b[i] < 0x80 {
		return int(b[i]), i + 1, true
	}
	if i+1 < len(b) && b[i+1] < 0x80 {
		return int(b[i]&0x7f) | int(b[i+1])<<7, i + 2, true
	}
	return 0, i, false
}

// pair decodes a LogContent or a LogTag (same shape: required string Key = 1,
// required string Value = 2; the last one wins).
func pair(b []byte) (key, value []byte, err error) {
	var hasKey, hasValue bool
	for i := 0; i < len(b); {
		num, wt, next, err := tag(b, i)
		if err != nil {
			return nil, nil, err
		}
		if num != 1 && num != 2 {
			if i, err = skip(b, next, wt); err != nil {
				return nil, nil, err
			}
			continue
		}
		if wt != wtBytes {
			return nil, nil, errWireType
		}
		s, e, err := length(b, next)
		if err != nil {
			return nil, nil, err
		}
		if num == 1 {
			key, hasKey = b[s:e:e], true
		} else {
			value, hasValue = b[s:e:e], true
		}
		i = e
	}
	if !hasKey || !hasValue {
		return nil, nil, errMissingKV
	}
	return key, value, nil
}
