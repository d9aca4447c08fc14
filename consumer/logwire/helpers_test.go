// Test helpers: a tiny protobuf encoder for hand-built bodies, and the SDK decode plus flattening the Walker must agree with.
package logwire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// uv encodes a varint.
func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// key encodes a field key.
func key(num uint64, wt int) []byte { return uv(num<<3 | uint64(wt)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// ld encodes a length-delimited field.
func ld(num uint64, payload ...[]byte) []byte {
	p := cat(payload...)
	return cat(key(num, wtBytes), uv(uint64(len(p))), p)
}

func str(num uint64, s string) []byte { return ld(num, []byte(s)) }

func fixed32(num uint64, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(key(num, wtFixed32), v)
}

// pairMsg is a LogContent or LogTag.
func pairMsg(k, v string) []byte { return cat(str(1, k), str(2, v)) }

// logMsg is a Log with a Time and contents as key, value, key, value...
func logMsg(sec uint64, kv ...string) []byte {
	b := cat(key(1, wtVarint), uv(sec))
	for i := 0; i+1 < len(kv); i += 2 {
		b = cat(b, ld(2, pairMsg(kv[i], kv[i+1])))
	}
	return b
}

// Field numbers of the schema, for readability.
const (
	fLogGroups = 1 // LogGroupList
	fLogs      = 1 // LogGroup
	fCategory  = 2
	fTopic     = 3
	fSource    = 4
	fMachine   = 5
	fLogTags   = 6
	fTime      = 1 // Log
	fContents  = 2
	fTimeNs    = 4
)

// flatLog is one log as the rules engine sees it.
type flatLog struct {
	fields   []match.Field
	contents []match.Field // from Contents(ref), or the SDK's Contents
	time     float64
}

// String renders a log as "time k=v k=v", for expectations and diffs.
func (l flatLog) String() string {
	var sb strings.Builder
	sb.WriteString(strconv.FormatFloat(l.time, 'g', -1, 64))
	for _, f := range l.fields {
		fmt.Fprintf(&sb, " %s=%s", f.Key, f.Value)
	}
	return sb.String()
}

func render(logs []flatLog) []string {
	out := make([]string, len(logs))
	for i, l := range logs {
		out[i] = l.String()
	}
	return out
}

// walkAll walks body with w and keeps copies of what it was handed,
// re-reading each log's contents through Contents after the walk.
func walkAll(w *Walker, body []byte) ([]flatLog, error) {
	var logs []flatLog
	var refs []LogRef
	n, err := w.Walk(body, func(ref LogRef, fields []match.Field, logTime float64) {
		logs = append(logs, flatLog{fields: deepCopy(fields), time: logTime})
		refs = append(refs, ref)
	})
	if n != len(logs) {
		return logs, fmt.Errorf("Walk returned %d logs but called fn %d times", n, len(logs))
	}
	for i, ref := range refs {
		logs[i].contents = w.Contents(body, ref, nil)
	}
	return logs, err
}

// deepCopy copies fields and their bytes: the __tag__ keys live in the
// walker's buffer, rewritten by the next group.
func deepCopy(fields []match.Field) []match.Field {
	out := make([]match.Field, len(fields))
	for i, f := range fields {
		out[i] = match.Field{Key: bytes.Clone(f.Key), Value: bytes.Clone(f.Value)}
	}
	return out
}

// sdkAll is what the exporter does today: sls.LogsBytesDecode, then the
// flattening of consumer/batch.go (sdkBatch.eachLog), restated here.
func sdkAll(body []byte) ([]flatLog, error) {
	list, err := sls.LogsBytesDecode(body)
	if err != nil {
		return nil, err
	}
	var logs []flatLog
	for _, g := range list.LogGroups {
		var meta []match.Field
		if g.Topic != nil && *g.Topic != "" {
			meta = append(meta, match.Field{Key: []byte("__topic__"), Value: []byte(*g.Topic)})
		}
		if g.Source != nil && *g.Source != "" {
			meta = append(meta, match.Field{Key: []byte("__source__"), Value: []byte(*g.Source)})
		}
		for _, tag := range g.LogTags {
			meta = append(meta, match.Field{Key: []byte("__tag__:" + tag.GetKey()), Value: []byte(tag.GetValue())})
		}
		for _, l := range g.Logs {
			var contents []match.Field
			for _, c := range l.Contents {
				contents = append(contents, match.Field{Key: []byte(c.GetKey()), Value: []byte(c.GetValue())})
			}
			t := float64(l.GetTime())
			if l.TimeNs != nil {
				t += float64(*l.TimeNs) / 1e9
			}
			fields := append(append([]match.Field(nil), contents...), meta...)
			logs = append(logs, flatLog{fields: fields, contents: contents, time: t})
		}
	}
	return logs, nil
}

// sameFields compares byte-wise; nil and empty slices are equal.
func sameFields(a, b []match.Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// diffSDK returns why the walker and the SDK disagree on body, or "".
// Times must be bit-equal (NaN cannot occur: both are finite sums).
func diffSDK(body []byte) string {
	want, sdkErr := sdkAll(body)
	got, err := walkAll(new(Walker), body)
	switch {
	case sdkErr != nil && err == nil:
		return fmt.Sprintf("SDK fails (%v), walker does not (%d logs)", sdkErr, len(got))
	case sdkErr != nil:
		return ""
	case err != nil:
		return fmt.Sprintf("walker fails (%v), SDK decodes %d logs", err, len(want))
	case len(got) != len(want):
		return fmt.Sprintf("walker %d logs, SDK %d", len(got), len(want))
	}
	for i := range want {
		g, s := got[i], want[i]
		if !sameFields(g.fields, s.fields) || g.time != s.time {
			return fmt.Sprintf("log %d:\nwalker %s\nSDK    %s", i, g, s)
		}
		if !sameFields(g.contents, s.contents) {
			return fmt.Sprintf("log %d: Contents gives %d fields, SDK %d", i, len(g.contents), len(s.contents))
		}
	}
	return ""
}

// accessBody is a realistic body: groups × n access logs from slsemu's
// generator, marshalled by the SDK (Logs first, then Topic and Source),
// with every third log given a TimeNs and every group two tags.
func accessBody(tb testing.TB, seed uint64, groups, n int) []byte {
	tb.Helper()
	gen := slsemu.NewAccessLogGenerator(seed)
	at := time.Unix(1_700_000_000, 0)
	list := &sls.LogGroupList{}
	for g := range groups {
		lg := gen.Group(n, at, 0.05)
		for i, l := range lg.Logs {
			if i%3 == 0 {
				ns := uint32(i * 1_000_003)
				l.TimeNs = &ns
			}
		}
		recv, ip := strconv.Itoa(1_700_000_000+g), "10.0.0."+strconv.Itoa(g%250)
		lg.LogTags = []*sls.LogTag{
			{Key: ptr("__receive_time__"), Value: &recv},
			{Key: ptr("__client_ip__"), Value: &ip},
		}
		list.LogGroups = append(list.LogGroups, lg)
	}
	body, err := list.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

func ptr[T any](v T) *T { return &v }
