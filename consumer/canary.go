// Canary logs: written into each logstore on a timer, recognised when consumed, timed from write to count.
package consumer

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// CanaryField is the content key that marks a canary log; its value is
// "<consumer name> <write time in unix nanoseconds>". Canary logs are never
// matched against rules.
const CanaryField = "sls_keyword_exporter_canary"

var canaryKey = []byte(CanaryField)

// canaryWrittenAt returns the write time of a canary log, or false when the
// fields are not a canary.
func canaryWrittenAt(fields []match.Field) (time.Time, bool) {
	for _, f := range fields {
		if len(f.Key) != len(canaryKey) || !bytes.Equal(f.Key, canaryKey) {
			continue
		}
		_, nanos, _ := strings.Cut(string(f.Value), " ")
		n, err := strconv.ParseInt(nanos, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.Unix(0, n), true
	}
	return time.Time{}, false
}

// writeCanary puts one canary log into the logstore (a load-balanced shard).
func (t *target) writeCanary() {
	now := time.Now()
	key, value := CanaryField, t.settings.ConsumerName+" "+strconv.FormatInt(now.UnixNano(), 10)
	msgKey, msg := "message", "sls_keyword_exporter canary"
	sec := uint32(now.Unix())
	lg := &sls.LogGroup{Logs: []*sls.Log{{
		Time:     &sec,
		Contents: []*sls.LogContent{{Key: &key, Value: &value}, {Key: &msgKey, Value: &msg}},
	}}}
	if err := t.client.PutLogs(t.cfg.Project, t.cfg.Logstore, lg); err != nil {
		t.metrics.CountError(t.labels, "PutLogs", errorCode(err))
		t.logger.Warn("Writing the canary log failed", "err", err)
	}
}

// observeCanary records the write-to-count delay of a canary log.
func (t *target) observeCanary(writtenAt time.Time) {
	t.metrics.SetCanaryLatency(t.labels, max(0, time.Since(writtenAt).Seconds()))
}
