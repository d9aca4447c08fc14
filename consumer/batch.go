// The pull-and-decode seam: a batch of logs seen as (key, value) byte pairs, whatever decoded it.
package consumer

import (
	"unsafe"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// batch is what one pull delivered: rawBatch walks the pulled bytes
// without decoding them; sdkBatch adapts a decoded *sls.LogGroupList, so
// tests and benchmarks can feed the match loop decoded groups.
type batch interface {
	// eachLog calls fn for every log in order. fields holds the log's
	// contents, then the group's metadata as __topic__, __source__ and
	// __tag__:<key>. fields is reused between calls; logTime is seconds
	// since the epoch with the nanosecond part. An error means the batch is
	// malformed; fn may have seen some of its logs.
	eachLog(fn func(ref logRef, fields []match.Field, logTime float64)) error
	// contents returns a log's contents again, for rendering a sample.
	contents(ref logRef, dst []match.Field) []match.Field
	// logCount and rawBytes size the batch for the read counters.
	logCount() int
	rawBytes() int
}

// logRef locates a log inside its batch: group and log index for sdkBatch,
// the log's byte range for rawBatch.
type logRef struct{ group, log int }

// sdkBatch adapts the consumer library's decoded LogGroupList. Its buffers
// are kept between batches of a shard, so the match loop allocates nothing.
type sdkBatch struct {
	list    *sls.LogGroupList
	scratch []match.Field // one log's fields
	meta    []match.Field // the current group's metadata fields
	tagKeys []byte        // "__tag__:<key>" of the current group's tags
}

// reset points the batch at a new list, keeping its buffers.
func (b *sdkBatch) reset(list *sls.LogGroupList) *sdkBatch {
	b.list = list
	return b
}

// bytesOf views a string's bytes without copying; the matcher only reads them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

var (
	topicKey  = []byte("__topic__")
	sourceKey = []byte("__source__")
)

const tagPrefix = "__tag__:"

func (b *sdkBatch) eachLog(fn func(ref logRef, fields []match.Field, logTime float64)) error {
	for gi, g := range b.list.LogGroups {
		b.groupMeta(g)
		for li, l := range g.Logs {
			fields := append(b.contents(logRef{gi, li}, b.scratch[:0]), b.meta...)
			b.scratch = fields
			t := float64(l.GetTime())
			if l.TimeNs != nil {
				t += float64(*l.TimeNs) / 1e9
			}
			fn(logRef{gi, li}, fields, t)
		}
	}
	return nil
}

// groupMeta fills b.meta with a group's metadata, the same for all its logs.
func (b *sdkBatch) groupMeta(g *sls.LogGroup) {
	b.meta = b.meta[:0]
	if g.Topic != nil && *g.Topic != "" {
		b.meta = append(b.meta, match.Field{Key: topicKey, Value: bytesOf(*g.Topic)})
	}
	if g.Source != nil && *g.Source != "" {
		b.meta = append(b.meta, match.Field{Key: sourceKey, Value: bytesOf(*g.Source)})
	}
	// Size tagKeys first: the keys slice into it and must not move.
	need := 0
	for _, tag := range g.LogTags {
		need += len(tagPrefix) + len(tag.GetKey())
	}
	if cap(b.tagKeys) < need {
		b.tagKeys = make([]byte, 0, need)
	}
	b.tagKeys = b.tagKeys[:0]
	for _, tag := range g.LogTags {
		start := len(b.tagKeys)
		b.tagKeys = append(append(b.tagKeys, tagPrefix...), tag.GetKey()...)
		b.meta = append(b.meta, match.Field{Key: b.tagKeys[start:len(b.tagKeys):len(b.tagKeys)], Value: bytesOf(tag.GetValue())})
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
