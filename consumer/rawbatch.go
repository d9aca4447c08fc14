// The raw batch: a pulled LogGroupList walked in place by logwire, the match loop's view of a pull.
package consumer

import (
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer/logwire"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// rawBatch adapts a decompressed PullLogs body to the batch seam. The
// walker is its puller's, reused from pull to pull.
type rawBatch struct {
	body   []byte
	walker *logwire.Walker
	logs   int
	// header receives each pull's answer headers, reused by the worker.
	header map[string]string
}

func newRawBatch() *rawBatch {
	return &rawBatch{walker: &logwire.Walker{}, header: make(map[string]string, 8)}
}

func (b *rawBatch) reset(body []byte) *rawBatch {
	b.body, b.logs = body, 0
	return b
}

func (b *rawBatch) eachLog(fn func(ref logRef, fields []match.Field, logTime float64)) error {
	n, err := b.walker.Walk(b.body, func(ref logwire.LogRef, fields []match.Field, logTime float64) {
		fn(logRef{ref.Start, ref.End}, fields, logTime)
	})
	b.logs = n
	return err
}

func (b *rawBatch) contents(ref logRef, dst []match.Field) []match.Field {
	return b.walker.Contents(b.body, logwire.LogRef{Start: ref.group, End: ref.log}, dst)
}

// logCount is valid after eachLog.
func (b *rawBatch) logCount() int { return b.logs }

func (b *rawBatch) rawBytes() int { return len(b.body) }
