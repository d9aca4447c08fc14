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

// maybeWriteCanary puts one canary log into the logstore (a load-balanced
// shard) every canary interval, off the heartbeat's path.
func (m *member) maybeWriteCanary(now time.Time) {
	m.mu.Lock()
	due := m.settings.Canary.Enabled && now.Sub(m.lastCanary) >= m.settings.Canary.Interval
	if due {
		m.lastCanary = now
	}
	m.mu.Unlock()
	if !due {
		return
	}
	key, value := CanaryField, m.settings.ConsumerName+" "+strconv.FormatInt(now.UnixNano(), 10)
	msgKey, msg := "message", "sls_keyword_exporter canary"
	sec := uint32(now.Unix())
	lg := &sls.LogGroup{Logs: []*sls.Log{{
		Time:     &sec,
		Contents: []*sls.LogContent{{Key: &key, Value: &value}, {Key: &msgKey, Value: &msg}},
	}}}
	if err := m.client.PutLogs(m.cfg.Project, m.cfg.Logstore, lg); err != nil {
		m.countError("PutLogs", err)
		m.logger.Warn("Writing the canary log failed", "err", err)
	}
}

// observeCanary records the write-to-count delay of a canary log.
func (m *member) observeCanary(writtenAt time.Time) {
	m.eng.metrics.SetCanaryLatency(m.labels, max(0, time.Since(writtenAt).Seconds()))
}
