// The pull-and-decode seam: a batch of logs seen as (key, value) byte pairs, whatever decoded it.
package consumer

import (
	"unsafe"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// batch is what one pull delivered. Today the SDK's consumer library pulls
// and decodes into *sls.LogGroupList (sdkBatch); a raw-bytes scanner can
// implement the same two methods without the SDK's per-log allocations.
type batch interface {
	// eachLog calls fn for every log in order. fields holds the log's
	// contents first (contentLen of them), then the group's metadata as
	// __topic__, __source__ and __tag__:<key>. fields is reused between
	// calls; logTime is seconds since the epoch with the nanosecond part.
	eachLog(fn func(ref logRef, fields []match.Field, contentLen int, logTime float64))
	// contents returns a log's contents again, for rendering a sample.
	contents(ref logRef, dst []match.Field) []match.Field
	// logCount and rawBytes size the batch for the read counters.
	logCount() int
	rawBytes() int
}

// logRef locates a log inside its batch.
type logRef struct{ group, log int }

// sdkBatch adapts the consumer library's decoded LogGroupList.
type sdkBatch struct {
	list    *sls.LogGroupList
	scratch []match.Field
}

func newSDKBatch(list *sls.LogGroupList) *sdkBatch { return &sdkBatch{list: list} }

// bytesOf views a string's bytes without copying; the matcher only reads them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

var (
	topicKey  = []byte("__topic__")
	sourceKey = []byte("__source__")
)

func (b *sdkBatch) eachLog(fn func(ref logRef, fields []match.Field, contentLen int, logTime float64)) {
	for gi, g := range b.list.LogGroups {
		// Group metadata is the same for every log of the group.
		var meta []match.Field
		if g.Topic != nil && *g.Topic != "" {
			meta = append(meta, match.Field{Key: topicKey, Value: bytesOf(*g.Topic)})
		}
		if g.Source != nil && *g.Source != "" {
			meta = append(meta, match.Field{Key: sourceKey, Value: bytesOf(*g.Source)})
		}
		for _, tag := range g.LogTags {
			meta = append(meta, match.Field{Key: []byte("__tag__:" + tag.GetKey()), Value: bytesOf(tag.GetValue())})
		}
		for li, l := range g.Logs {
			fields := b.contents(logRef{gi, li}, b.scratch[:0])
			n := len(fields)
			fields = append(fields, meta...)
			b.scratch = fields
			t := float64(l.GetTime())
			if l.TimeNs != nil {
				t += float64(*l.TimeNs) / 1e9
			}
			fn(logRef{gi, li}, fields, n, t)
		}
	}
}

func (b *sdkBatch) contents(ref logRef, dst []match.Field) []match.Field {
	for _, c := range b.list.LogGroups[ref.group].Logs[ref.log].Contents {
		dst = append(dst, match.Field{Key: bytesOf(c.GetKey()), Value: bytesOf(c.GetValue())})
	}
	return dst
}

func (b *sdkBatch) logCount() int {
	n := 0
	for _, g := range b.list.LogGroups {
		n += len(g.Logs)
	}
	return n
}

// rawBytes is the protobuf size of the list, i.e. what SLS reports as the
// uncompressed body size of the pull.
func (b *sdkBatch) rawBytes() int { return b.list.Size() }
