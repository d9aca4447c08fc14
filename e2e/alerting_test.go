// A 500 written to SLS arrives as an alert at a webhook, and every dashboard query returns data from real Prometheus.
package e2e

import (
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/dashboards"
)

func TestLogBecomesAlertAndDashboardQueriesReturnData(t *testing.T) {
	s := startStack(t, stackExporterConfig(""))
	// One quota error, so that the error panel has a series.
	resp, err := http.Post(s.emulator+"/_slsemu/faults", "application/json",
		strings.NewReader(`{"route":"PullLogs","logstore":"logstore2","status":403,"code":"ReadQuotaExceed","times":1}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("injecting a fault: %v %v", resp, err)
	}
	resp.Body.Close()

	c := sdkClient(s.emulator, "cn-hangzhou.log.aliyuncs.com")
	waitFor(t, 15*time.Second, "the exporter to hold logstore1's shards", func() bool {
		m, _ := scrape(t, s.exporter+"/metrics")
		return value(m, "sls_consumer_shards_held", "logstore=logstore1,project=project1,region=cn-hangzhou") == 2
	})
	written := time.Now()
	putLogs(t, c, "project1", "logstore1", 1, written, "500")

	want := map[string]string{"alertname": "SLSKeywordMatch", "region": "cn-hangzhou", "project": "project1",
		"logstore": "logstore1", "rule": "http_5xx", "field": "status", "severity": "critical"}
	var alert webhookAlert
	var arrived time.Time
	waitFor(t, 30*time.Second, "the SLSKeywordMatch notification", func() bool {
		var ok bool
		alert, arrived, ok = s.webhook.find(want)
		return ok
	})
	t.Logf("log written -> webhook notified: %s", arrived.Sub(written).Round(time.Millisecond))
	if got := alert.Annotations["summary"]; got != "Rule http_5xx matched a log in cn-hangzhou/project1/logstore1." {
		t.Errorf("summary %q", got)
	}
	if d := alert.Annotations["description"]; d != "Field status of a log matched rule http_5xx within the last minute in region cn-hangzhou, project project1, logstore logstore1. Last sample: path=/e2e status=500" {
		t.Errorf("description %q lacks the count or the sample", d)
	}

	t.Run("dashboard queries return data", func(t *testing.T) {
		waitFor(t, 20*time.Second, "canary latency and the injected error in Prometheus", func() bool {
			a, _ := s.query(`sls_canary_latency_seconds`)
			b, _ := s.query(`sls_consumer_errors_total{code="ReadQuotaExceed"}`)
			return len(a) == 4 && len(b) == 1
		})
		data, err := os.ReadFile(repoFile(dashboards.File))
		if err != nil {
			t.Fatal(err)
		}
		panels, variables, err := dashboards.Queries(data)
		if err != nil {
			t.Fatal(err)
		}
		expand := strings.NewReplacer("$job", ".*", "$region", ".*", "$project", ".*", "$logstore", ".*",
			"$__rate_interval", "30s", "$__range", "5m")
		// A rate needs two scrapes of a series; give fresh series a few seconds.
		queryWithData := func(q string) (n int, err error) {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(250 * time.Millisecond) {
				res, err := s.query(q)
				if (err == nil && len(res) > 0) || time.Now().After(deadline) {
					return len(res), err
				}
			}
		}
		for title, exprs := range panels {
			for _, e := range exprs {
				q := expand.Replace(e)
				if n, err := queryWithData(q); err != nil || n == 0 {
					t.Errorf("panel %q: %s returned %d series (%v)", title, q, n, err)
				}
			}
		}
		labelValues := regexp.MustCompile(`^label_values\((.+), (\w+)\)$`)
		for name, v := range variables {
			m := labelValues.FindStringSubmatch(expand.Replace(v))
			if m == nil {
				t.Errorf("variable %s: %q is not label_values(selector, label)", name, v)
				continue
			}
			res, err := s.query("group by (" + m[2] + ") (" + m[1] + ")")
			if err != nil || len(res) == 0 {
				t.Errorf("variable %s: %s has no values (%v)", name, v, err)
			}
		}
		regions, _ := s.query(`group by (region) (sls_up)`)
		if len(regions) != 3 {
			t.Errorf("%d regions in sls_up, want 3", len(regions))
		}
	})

	t.Run("canary latency is measured", func(t *testing.T) {
		res, err := s.query(`sls_canary_latency_seconds`)
		if err != nil || len(res) != 4 {
			t.Fatalf("canary series: %v %v", res, err)
		}
		for _, r := range res {
			v, _ := strconv.ParseFloat(r.Value[1].(string), 64)
			if v <= 0 || v > 3 {
				t.Errorf("canary latency of %s is %vs, want within (0, 3]", r.Metric["logstore"], v)
			}
		}
	})
}
