// Logstores by pattern: found across listing pages, new ones read from their beginning, deleted ones stopped and their series gone.
package consumer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

func TestLogstoresByPatternFollowCreationAndDeletion(t *testing.T) {
	w := &slsemu.World{AccessKeys: []slsemu.AccessKey{{ID: testAK, Secret: testSecret}}}
	project := slsemu.ProjectConfig{Name: "apps"}
	// More than one listing page (500), the matching logstores on the second.
	for i := range 520 {
		project.Logstores = append(project.Logstores, slsemu.LogstoreConfig{Name: fmt.Sprintf("filler-%03d", i), Shards: 1})
	}
	project.Logstores = append(project.Logstores,
		slsemu.LogstoreConfig{Name: "web-access", Shards: 2},
		slsemu.LogstoreConfig{Name: "web-test", Shards: 1},
		slsemu.LogstoreConfig{Name: "web-static", Shards: 1})
	w.Regions = []slsemu.RegionConfig{{Name: "cn-hangzhou", Endpoint: "cn-hangzhou.log.aliyuncs.com", Projects: []slsemu.ProjectConfig{project}}}
	srv := startEmulator(t, w)
	client := sls.CreateNormalInterface("cn-hangzhou.log.aliyuncs.com", testAK, testSecret, "")
	client.SetHTTPClient(srv.HTTPClient())

	cfg := mustParse(t, fmt.Sprintf(`consumer_group: discovery-cg
consumer_name: discoverer
heartbeat_interval: 1s
consumer_timeout: 3s
commit_interval: 300ms
discovery_interval: 500ms
credentials: {access_key_id: %s, access_key_secret: %s}
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects:
      - name: apps
        logstores: ["web-*"]
        exclude: ["*-test"]
rules:
  - {name: http_5xx, field: status, regex: '^5\d{2}$'}
`, testAK, testSecret, srv.URL))
	e := startExporter(t, cfg)
	held := func(logstore string) float64 {
		return e.series(t, "sls_consumer_shards_held")["logstore="+logstore+",project=apps,region=cn-hangzhou"]
	}
	waitFor(t, 15*time.Second, "web-access and web-static consumed", func() bool { return held("web-access") == 2 && held("web-static") == 1 })
	if n := e.series(t, "sls_discovery_logstores")["project=apps,region=cn-hangzhou"]; n != 2 {
		t.Errorf("sls_discovery_logstores = %v, want 2 (web-test excluded, fillers unmatched)", n)
	}
	for key := range e.series(t, "sls_up") {
		if !strings.Contains(key, "logstore=web-access,") && !strings.Contains(key, "logstore=web-static,") {
			t.Errorf("consuming a logstore no pattern selects: %s", key)
		}
	}

	// A logstore created while running is read from its beginning: logs
	// written before the exporter noticed it are counted too.
	if err := client.CreateLogStore("apps", "web-new", 1, 1, false, 16); err != nil {
		t.Fatal(err)
	}
	put := func(logstore string, statuses ...string) {
		lg := &sls.LogGroup{}
		for _, s := range statuses {
			lg.Logs = append(lg.Logs, newLog(time.Now(), "status", s))
		}
		if err := client.PutLogs("apps", logstore, lg); err != nil {
			t.Fatal(err)
		}
	}
	put("web-new", "500", "500", "200")
	waitFor(t, 10*time.Second, "web-new's logs, from its beginning", func() bool {
		return e.sum(t, "sls_keyword_matches_total", "logstore", "web-new") == 2 && e.sum(t, "sls_consumer_logs_total", "logstore", "web-new") == 3
	})
	put("web-access", "503")
	waitFor(t, 10*time.Second, "web-access's match", func() bool { return e.sum(t, "sls_keyword_matches_total", "logstore", "web-access") == 1 })

	// A deleted logstore: its consumer stops and every series of it goes.
	if err := client.DeleteLogStore("apps", "web-access"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "web-access's series gone", func() bool {
		for _, name := range []string{"sls_up", "sls_keyword_matches_total", "sls_consumer_logs_total", "sls_consumer_shards_held", "sls_consumer_errors_total"} {
			for key := range e.series(t, name) {
				if strings.Contains(key, "logstore=web-access,") {
					return false
				}
			}
		}
		return true
	})
	if n := e.series(t, "sls_discovery_logstores")["project=apps,region=cn-hangzhou"]; n != 2 {
		t.Errorf("sls_discovery_logstores = %v after the delete, want 2 (web-new, web-static)", n)
	}
	// A failed listing keeps what was found.
	id, err := srv.InjectFault(slsemu.Fault{Route: "ListLogStores", Status: 500, Code: "InternalServerError"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a discovery error counted", func() bool {
		return e.series(t, "sls_discovery_errors_total")["code=InternalServerError,project=apps,region=cn-hangzhou"] >= 1
	})
	if held("web-new") != 1 || held("web-static") != 1 {
		t.Errorf("a failed listing stopped consumers: web-new %v, web-static %v", held("web-new"), held("web-static"))
	}
	srv.RemoveFault(id)
	put("web-static", "500")
	waitFor(t, 10*time.Second, "web-static's match after the fault", func() bool { return e.sum(t, "sls_keyword_matches_total", "logstore", "web-static") == 1 })
}

// TestDiscoveryReadinessAndRemoval: the exporter is not ready before a
// pattern project's first listing (a pod would take traffic, and count as
// rolled out, before it joined any group); a reload that drops the patterns
// stops their logstores and leaves no discovery series.
func TestDiscoveryReadinessAndRemoval(t *testing.T) {
	w := &slsemu.World{AccessKeys: []slsemu.AccessKey{{ID: testAK, Secret: testSecret}}}
	w.Regions = []slsemu.RegionConfig{{Name: "cn-hangzhou", Endpoint: "cn-hangzhou.log.aliyuncs.com", Projects: []slsemu.ProjectConfig{
		{Name: "apps", Logstores: []slsemu.LogstoreConfig{{Name: "web-a", Shards: 1}}},
		{Name: "named", Logstores: []slsemu.LogstoreConfig{{Name: "plain", Shards: 1}}},
	}}}
	srv := startEmulator(t, w)
	if _, err := srv.InjectFault(slsemu.Fault{Route: "ListLogStores", Latency: slsemu.Duration(3 * time.Second), Times: 1}); err != nil {
		t.Fatal(err)
	}
	configYAML := func(projects string) string {
		return fmt.Sprintf(`consumer_group: discovery-ready
consumer_name: ready
heartbeat_interval: 1s
consumer_timeout: 3s
discovery_interval: 500ms
credentials: {access_key_id: %s, access_key_secret: %s}
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects:
%s
rules:
  - {name: http_5xx, field: status, regex: '^5\d{2}$'}
`, testAK, testSecret, srv.URL, projects)
	}
	withPatterns := "      - {name: apps, logstores: [\"web-*\"]}\n      - {name: named, logstores: [plain]}"
	e := startExporter(t, mustParse(t, configYAML(withPatterns)))
	// The named logstore is ready within the slow listing; the exporter is not.
	waitFor(t, 5*time.Second, "the named logstore consumed", func() bool {
		return e.series(t, "sls_consumer_shards_held")["logstore=plain,project=named,region=cn-hangzhou"] == 1
	})
	if ready, pending := e.manager.Ready(); ready || len(pending) != 1 || pending[0] != "cn-hangzhou/apps (listing its logstores)" {
		t.Fatalf("during the first listing: ready %v, pending %q; want not ready, pending the apps listing", ready, pending)
	}
	waitFor(t, 10*time.Second, "ready after the listing", func() bool { ready, _ := e.manager.Ready(); return ready })
	if held := e.series(t, "sls_consumer_shards_held")["logstore=web-a,project=apps,region=cn-hangzhou"]; held != 1 {
		t.Fatalf("ready, but web-a's shards held = %v, want 1", held)
	}
	if n := e.series(t, "sls_discovery_logstores")["project=apps,region=cn-hangzhou"]; n != 1 {
		t.Fatalf("sls_discovery_logstores = %v, want 1", n)
	}

	// Drop the patterns: web-a and the discovery series go.
	dropped := mustParse(t, configYAML("      - {name: named, logstores: [plain]}"))
	if err := e.manager.Apply(dropped, consumer.SettingsFrom(dropped, "unused")); err != nil {
		t.Fatal(err)
	}
	for _, family := range []string{"sls_discovery_logstores", "sls_consumer_shards_held", "sls_up"} {
		for key := range e.series(t, family) {
			if strings.Contains(key, "project=apps") {
				t.Errorf("after the reload dropped the patterns: %s{%s} remains", family, key)
			}
		}
	}
	if ready, pending := e.manager.Ready(); !ready {
		t.Errorf("after the reload: not ready, pending %q", pending)
	}
}
