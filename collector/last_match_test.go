// sample_min_interval on a fake clock: the sample label holds, the timestamp follows the newest match, a held-back sample shows once the interval has passed.
package collector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSampleMinIntervalHoldsTheLabelNotTheTimestamp(t *testing.T) {
	m := New(prometheus.NewRegistry())
	start := time.Unix(1_000_000, 0)
	now := start
	m.lastMatch.now = func() time.Time { return now }
	at := func(d time.Duration) { now = start.Add(d) }
	held := RuleLabels{Name: "http_5xx", Field: "status"}
	every := RuleLabels{Name: "oom", Field: "*"}
	const interval = 10 * time.Second

	expect := func(step, heldSample string, heldTime float64, everySample string, everyTime float64) {
		t.Helper()
		labels := func(r RuleLabels) string {
			return fmt.Sprintf(`field="%s",logstore="logstore1",project="project1",region="cn-hangzhou",rule="%s"`, r.Field, r.Name)
		}
		want := fmt.Sprintf(`
# HELP sls_keyword_last_match_info The newest log (by log time) that matched the rule, rendered as sorted key=value pairs in the sample label.
# TYPE sls_keyword_last_match_info gauge
sls_keyword_last_match_info{%s,sample="%s"} 1
sls_keyword_last_match_info{%s,sample="%s"} 1
# HELP sls_keyword_last_match_timestamp_seconds Log time of the newest log that matched the rule.
# TYPE sls_keyword_last_match_timestamp_seconds gauge
sls_keyword_last_match_timestamp_seconds{%s} %g
sls_keyword_last_match_timestamp_seconds{%s} %g
`, labels(every), everySample, labels(held), heldSample, labels(every), everyTime, labels(held), heldTime)
		if err := testutil.CollectAndCompare(m.lastMatch, strings.NewReader(want)); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}

	at(0)
	m.RecordLastMatch(hz, held, "status=500 path=/a", 100, interval)
	m.RecordLastMatch(hz, every, "msg=a", 100, 0)
	expect("first match", "status=500 path=/a", 100, "msg=a", 100)

	at(1 * time.Second)
	m.RecordLastMatch(hz, held, "status=502 path=/b", 110, interval)
	m.RecordLastMatch(hz, every, "msg=b", 110, 0)
	at(2 * time.Second)
	m.RecordLastMatch(hz, held, "status=503 path=/c", 120, interval)
	m.RecordLastMatch(hz, held, "status=504 path=/older", 105, interval) // older by log time: ignored
	m.RecordLastMatch(hz, every, "msg=c", 120, 0)
	expect("within the interval", "status=500 path=/a", 120, "msg=c", 120)

	at(9*time.Second + 999*time.Millisecond)
	expect("a moment before the interval ends", "status=500 path=/a", 120, "msg=c", 120)

	at(10 * time.Second) // the newest held-back sample shows at the first scrape after the interval
	expect("the interval has passed", "status=503 path=/c", 120, "msg=c", 120)

	at(12 * time.Second)
	m.RecordLastMatch(hz, held, "status=500 path=/d", 130, interval)
	expect("a new interval", "status=503 path=/c", 130, "msg=c", 120)

	at(15 * time.Second) // the shown sample again: nothing newer waits any more
	m.RecordLastMatch(hz, held, "status=503 path=/c", 140, interval)
	at(20 * time.Second)
	expect("the shown sample matched again", "status=503 path=/c", 140, "msg=c", 120)

	at(21 * time.Second) // 11 s after the label last changed: a new sample shows at once
	m.RecordLastMatch(hz, held, "status=501 path=/e", 150, interval)
	expect("a match after the interval", "status=501 path=/e", 150, "msg=c", 120)
}
