// The rules commands with the real binary: rules test on the shipped examples and on a broken file, and rules tail on the emulator binary (exact matches, no consumer group, checkpoints untouched, --since, --logstore, JSON, the pull rate, samples equal to /metrics).
package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/testkit"
)

// rulesCLI runs the exporter binary with args to its end.
func rulesCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "sls_keyword_exporter"), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not end; stderr:\n%s", args, errOut.String())
		return "", "", -1
	}
}

func TestRulesTestPassesOnTheShippedExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/rules/*_test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example tests: %v", err)
	}
	stdout, stderr, code := rulesCLI(t, nil, append([]string{"rules", "test"}, files...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("exit code %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != len(files)+1 {
		t.Fatalf("stdout:\n%s", stdout)
	}
	for i, f := range files {
		if !strings.HasPrefix(lines[i], f+": PASSED (") {
			t.Errorf("line %d: %q, want %s: PASSED", i+1, lines[i], f)
		}
	}
	if want := fmt.Sprintf("rules test: %d files PASSED (", len(files)); !strings.HasPrefix(lines[len(files)], want) {
		t.Errorf("last line %q, want %q…", lines[len(files)], want)
	}
}

func TestRulesTestFailsWithADiffOnABrokenFile(t *testing.T) {
	web, err := filepath.Abs("../examples/rules/web.yml")
	if err != nil {
		t.Fatal(err)
	}
	broken := writeFile(t, "broken_test.yml", `rule_files: [`+web+`]
tests:
  - name: a healthz 503 is not an http_5xx
    target: cn-hangzhou/project1/logstore1
    logs:
      - id: healthz
        fields: {path: /healthz, status: 503}
      - id: login
        fields: {path: /login, status: 502, authorization: Bearer abc.def}
    expect:
      http_5xx:
        matches: [healthz]
        sample: path=/healthz status=503
`)
	stdout, stderr, code := rulesCLI(t, nil, "rules", "test", broken)
	want := broken + `: FAILED
  test "a healthz 503 is not an http_5xx" (target cn-hangzhou/project1/logstore1):
    rule http_5xx:
      log healthz (path=/healthz status=503): expected a match, got none
      log login (authorization=*** path=/login status=502): got a match, expected none
      sample:
        expected: path=/healthz status=503
        got:      authorization=*** path=/login status=502
rules test: 1 of 1 file FAILED
`
	if code != 1 || stdout != want || stderr != "" {
		t.Errorf("exit code %d (want 1), stderr %q, stdout:\n%s\nwant:\n%s", code, stderr, stdout, want)
	}
}

// tailRun is a running `rules tail`, its stdout and stderr kept apart.
type tailRun struct {
	cmd            *exec.Cmd
	stdout, stderr *testkit.SyncBuffer
	done           chan struct{}
}

func startRulesTail(t *testing.T, env []string, args ...string) *tailRun {
	t.Helper()
	r := &tailRun{stdout: &testkit.SyncBuffer{}, stderr: &testkit.SyncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(filepath.Join(binDir, "sls_keyword_exporter"), append([]string{"rules", "tail"}, args...)...)
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
		if t.Failed() {
			t.Logf("--- rules tail %v ---\nstdout:\n%s\nstderr:\n%s", args, r.stdout.String(), r.stderr.String())
		}
	})
	return r
}

// waitStarted waits for the line saying every logstore is positioned.
func (r *tailRun) waitStarted(t *testing.T, want string) {
	t.Helper()
	waitFor(t, 20*time.Second, "rules tail to start", func() bool { return strings.Contains(r.stderr.String(), want) })
}

// wait waits for the process to end (by itself or after sig) and returns its exit code.
func (r *tailRun) wait(t *testing.T, sig os.Signal, timeout time.Duration) int {
	t.Helper()
	if sig != nil {
		_ = r.cmd.Process.Signal(sig)
	}
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("rules tail did not exit within %s", timeout)
		return -1
	}
}

func (r *tailRun) lines() []string {
	s := strings.TrimSuffix(r.stdout.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// injectFault adds a fault over the emulator's admin API and returns its id.
func injectFault(t *testing.T, emu, fault string) string {
	t.Helper()
	resp, err := http.Post(emu+"/_slsemu/faults", "application/json", strings.NewReader(fault))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("injecting %s: %d %v", fault, resp.StatusCode, err)
	}
	return out.ID
}

// faultHits reads how many requests each fault has hit, by id.
func faultHits(t *testing.T, emu string) map[string]int {
	t.Helper()
	resp, err := http.Get(emu + "/_slsemu/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var faults []struct {
		ID, Route, Logstore string
		Hits                int
	}
	if err := json.Unmarshal(body, &faults); err != nil {
		t.Fatalf("faults: %v: %s", err, body)
	}
	hits := map[string]int{}
	for _, f := range faults {
		hits[f.ID] = f.Hits
	}
	return hits
}

// putGroup writes one log group (logs as key, value lists) into a shard.
func putGroup(t *testing.T, c sls.ClientInterface, project, logstore string, shard int, at time.Time, tags map[string]string, logs ...[]string) {
	t.Helper()
	shards, err := c.ListShards(project, logstore)
	if err != nil {
		t.Fatal(err)
	}
	group := &sls.LogGroup{}
	for _, kv := range logs {
		group.Logs = append(group.Logs, testkit.Log(at, kv...))
	}
	for k, v := range tags {
		group.LogTags = append(group.LogTags, &sls.LogTag{Key: new(k), Value: new(v)})
	}
	key := shards[shard].InclusiveBeginKey
	if err := c.PostLogStoreLogs(project, logstore, group, &key); err != nil {
		t.Fatal(err)
	}
}

// tailConfigYAML reads project1/logstore1 by name and project3's logstores
// by pattern through the emulator; oom applies in cn-qingdao only.
func tailConfigYAML(emu string) string {
	return fmt.Sprintf(`consumer_group: keyword-monitor
credentials:
  access_key_id: %s
  access_key_secret: %s
redact:
  keys: [session]
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects: [{name: project1, logstores: [logstore1]}]
  - name: cn-qingdao
    endpoint: cn-qingdao.log.aliyuncs.com
    proxy_url: %s
    projects: [{name: project3, logstores: ['logstore3_*']}]
rules:
  - name: http_5xx
    field: status
    regex: '^5\d{2}$'
    unless: [{field: path, regex: '^/healthz'}]
  - name: oom
    field: "*"
    regex: OutOfMemory
    logstores: ['cn-qingdao/*/*']
`, testAK, testSecret, emu, emu)
}

// groupSnapshot is a logstore's consumer groups and their checkpoints.
func groupSnapshot(t *testing.T, c sls.ClientInterface, project, logstore string) string {
	t.Helper()
	groups, err := c.ListConsumerGroup(project, logstore)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, g := range groups {
		cps, err := c.GetCheckpoint(project, logstore, g.ConsumerGroupName)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("group %s timeout %d", g.ConsumerGroupName, g.Timeout))
		for _, cp := range cps {
			parts = append(parts, fmt.Sprintf("  shard %d checkpoint %q consumer %q updated %d", cp.ShardID, cp.CheckPoint, cp.Consumer, cp.UpdateTime))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "\n")
}

// rules tail prints exactly the matches written after it started, in every
// configured logstore (one found by pattern), and leaves the consumer
// group alone: no group created, no heartbeat, checkpoints unchanged.
// Then --since reads back what was written before, --logstore narrows and
// --output=json prints objects.
func TestRulesTailPrintsExactlyTheNewMatchesAndTouchesNoGroup(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	cfgFile := writeFile(t, "tail.yml", tailConfigYAML(emu))
	hz := sdkClient(emu, "cn-hangzhou.log.aliyuncs.com")
	qd := sdkClient(emu, "cn-qingdao.log.aliyuncs.com")
	before := time.Now().Add(-2 * time.Second).Truncate(time.Second)
	after := time.Now().Truncate(time.Second)

	// Logs written before tail starts, and the production consumer group's
	// checkpoints over them.
	putGroup(t, hz, "project1", "logstore1", 0, before, nil, []string{"status", "500", "path", "/before"})
	putGroup(t, qd, "project3", "logstore3_2", 0, before, nil, []string{"status", "503", "path", "/before"}, []string{"msg", "OutOfMemory before"})
	for _, w := range []struct {
		c                 sls.ClientInterface
		project, logstore string
	}{{hz, "project1", "logstore1"}, {qd, "project3", "logstore3_2"}} {
		if err := w.c.CreateConsumerGroup(w.project, w.logstore, sls.ConsumerGroup{ConsumerGroupName: "keyword-monitor", Timeout: 60}); err != nil {
			t.Fatal(err)
		}
		for shard := 0; shard < 2; shard++ {
			cursor, err := w.c.GetCursor(w.project, w.logstore, shard, "end")
			if err != nil {
				t.Fatal(err)
			}
			if err := w.c.UpdateCheckpoint(w.project, w.logstore, "keyword-monitor", "exporter-1", shard, cursor, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	snapshot := func() string {
		return groupSnapshot(t, hz, "project1", "logstore1") + "\n" + groupSnapshot(t, qd, "project3", "logstore3_1") + "\n" + groupSnapshot(t, qd, "project3", "logstore3_2")
	}
	groupsBefore := snapshot()
	// Counting faults (a microsecond of latency) on every group and checkpoint call.
	counters := map[string]string{}
	for _, route := range []string{"ListConsumerGroup", "CreateConsumerGroup", "UpdateConsumerGroup", "DeleteConsumerGroup", "HeartBeat", "UpdateCheckpoint", "GetCheckpoint"} {
		counters[route] = injectFault(t, emu, `{"route":"`+route+`","latency":"1us"}`)
	}

	run := startRulesTail(t, nil, "--config.file="+cfgFile)
	run.waitStarted(t, "rules tail: following 3 logstores (6 shards) from now on\n")
	putGroup(t, hz, "project1", "logstore1", 0, after, nil,
		[]string{"status", "500", "path", "/login", "session", "s3cr3t"},
		[]string{"status", "200", "path", "/"},
		[]string{"status", "503", "path", "/healthz"})
	putGroup(t, hz, "project1", "logstore1", 1, after, nil, []string{"status", "502", "path", "/cart"})
	putGroup(t, qd, "project3", "logstore3_2", 1, after, map[string]string{"host": "app-1"},
		[]string{"status", "200", "msg", "java.lang.OutOfMemoryError: heap"},
		[]string{"status", "504", "path", "/api", "msg", "OutOfMemory"})
	stamp := after.UTC().Format(time.RFC3339)
	want := []string{
		stamp + " cn-hangzhou/project1/logstore1 http_5xx path=/cart status=502",
		stamp + " cn-hangzhou/project1/logstore1 http_5xx path=/login session=*** status=500",
		stamp + " cn-qingdao/project3/logstore3_2 http_5xx msg=OutOfMemory path=/api status=504",
		stamp + " cn-qingdao/project3/logstore3_2 oom msg=OutOfMemory path=/api status=504",
		stamp + ` cn-qingdao/project3/logstore3_2 oom msg="java.lang.OutOfMemoryError: heap" status=200`,
	}
	slices.Sort(want)
	waitFor(t, 15*time.Second, "five matches", func() bool { return len(run.lines()) >= len(want) })
	time.Sleep(1500 * time.Millisecond) // three more pulls of every shard: nothing more may come
	if code := run.wait(t, syscall.SIGINT, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGINT", code)
	}
	got := run.lines()
	slices.Sort(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("matches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	stderr := run.stderr.String()
	for _, s := range []string{
		"rules tail: 5 matches; 3 logstores, 6 shards, ",
		" pulls, 6 logs read, 0 errors in ",
		"\n  cn-hangzhou/project1/logstore1 http_5xx 2\n  cn-qingdao/project3/logstore3_2 http_5xx 1\n  cn-qingdao/project3/logstore3_2 oom 2\n",
	} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
	for _, secret := range []string{testSecret, "s3cr3t"} {
		if strings.Contains(run.stdout.String()+stderr, secret) {
			t.Errorf("rules tail shows %q", secret)
		}
	}
	hits := faultHits(t, emu)
	for route, id := range counters {
		if hits[id] != 0 {
			t.Errorf("rules tail called %s %d times", route, hits[id])
		}
	}
	if groupsAfter := snapshot(); groupsAfter != groupsBefore {
		t.Errorf("consumer groups and checkpoints changed:\nbefore:\n%s\nafter:\n%s", groupsBefore, groupsAfter)
	}

	// --since reads back the logs written before, --logstore narrows to
	// cn-qingdao, --output=json prints one object per line; --duration ends it.
	run = startRulesTail(t, nil, "--config.file="+cfgFile, "--since=2m", "--logstore=cn-qingdao/*/*", "--output=json", "--duration=4s", "--rate=5")
	if code := run.wait(t, nil, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	type line struct {
		Time                      string
		LogTime                   float64 `json:"log_time"`
		Region, Project, Logstore string
		Shard                     int
		Rule, Field, Sample       string
	}
	var objects []string
	for _, l := range run.lines() {
		var o line
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		objects = append(objects, fmt.Sprintf("%s %d %s/%s/%s %d %s %s %s", o.Time, int64(o.LogTime), o.Region, o.Project, o.Logstore, o.Shard, o.Rule, o.Field, o.Sample))
	}
	slices.Sort(objects)
	bstamp := before.UTC().Format(time.RFC3339)
	wantObjects := []string{
		fmt.Sprintf("%s %d cn-qingdao/project3/logstore3_2 0 http_5xx status path=/before status=503", bstamp, before.Unix()),
		fmt.Sprintf("%s %d cn-qingdao/project3/logstore3_2 0 oom * msg=\"OutOfMemory before\"", bstamp, before.Unix()),
		fmt.Sprintf("%s %d cn-qingdao/project3/logstore3_2 1 http_5xx status msg=OutOfMemory path=/api status=504", stamp, after.Unix()),
		fmt.Sprintf("%s %d cn-qingdao/project3/logstore3_2 1 oom * msg=OutOfMemory path=/api status=504", stamp, after.Unix()),
		fmt.Sprintf("%s %d cn-qingdao/project3/logstore3_2 1 oom * msg=\"java.lang.OutOfMemoryError: heap\" status=200", stamp, after.Unix()),
	}
	slices.Sort(wantObjects)
	if strings.Join(objects, "\n") != strings.Join(wantObjects, "\n") {
		t.Errorf("JSON matches:\n%s\nwant:\n%s", strings.Join(objects, "\n"), strings.Join(wantObjects, "\n"))
	}
	if s := run.stderr.String(); !strings.Contains(s, "rules tail: following 2 logstores (4 shards) since ") || !strings.Contains(s, "rules tail: 5 matches; 2 logstores, 4 shards, ") {
		t.Errorf("stderr:\n%s", s)
	}
}

// Pulls are rate-limited per shard (--rate), and a shard never has more
// than one pull in flight: the emulator's fault hit counters count them.
func TestRulesTailPullRateIsBoundedPerShard(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	cfgFile := writeFile(t, "tail.yml", tailConfigYAML(emu))
	// --rate=2 for 3 s: at most one pull at once, then one every 500 ms, per shard.
	counter := injectFault(t, emu, `{"route":"PullLogs","logstore":"logstore1","latency":"1us"}`)
	run := startRulesTail(t, nil, "--config.file="+cfgFile, "--logstore=cn-hangzhou/*/*", "--rate=2", "--duration=3s")
	if code := run.wait(t, nil, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if n := faultHits(t, emu)[counter]; n < 4 || n > 2*(1+3*2) {
		t.Errorf("%d pulls of 2 shards in 3 s at --rate=2, want 4..14", n)
	}
	if !strings.Contains(run.stderr.String(), "1 logstores, 2 shards, ") {
		t.Errorf("stderr:\n%s", run.stderr.String())
	}

	// --rate=20, but every pull takes 600 ms: one in flight per shard allows
	// at most 6 per shard in 3 s, where the rate alone would allow 61.
	slow := injectFault(t, emu, `{"route":"PullLogs","logstore":"logstore3_1","latency":"600ms"}`)
	run = startRulesTail(t, nil, "--config.file="+cfgFile, "--logstore=cn-qingdao/project3/logstore3_1", "--rate=20", "--duration=3s")
	if code := run.wait(t, nil, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if n := faultHits(t, emu)[slow]; n < 2 || n > 2*6 {
		t.Errorf("%d pulls of 2 shards in 3 s with 600 ms each, want 2..12", n)
	}
}

// The sample rules tail prints is the exporter's sample label on /metrics,
// for the same configuration (sample_fields, sample_max_length, redact);
// and with the seed's environment instead of a file, --rule replaces the
// rules.
func TestRulesTailSamplesAreTheExportersLabels(t *testing.T) {
	emu := startEmulator(t, seedWorldYAML)
	cfg := logstore1Config(emu, `consumer_group: exporter-group
cursor_start: begin
sample_max_length: 90
redact:
  keys: [session]
  patterns: [{regex: 'user-\d+', replacement: 'user-#'}]
`, `  - name: http_5xx
    field: status
    regex: '^5\d{2}$'
  - name: login_fail
    field: msg
    regex: login failed
    sample_fields: [msg, session, __tag__:env]
`)
	cfgFile := writeFile(t, "exporter.yml", cfg)
	addr := freeAddr(t)
	start(t, nil, "sls_keyword_exporter", "--config.file="+cfgFile, "--web.listen-address="+addr)
	waitHTTP(t, "http://"+addr+"/-/ready", 20*time.Second)
	c := sdkClient(emu, "cn-hangzhou.log.aliyuncs.com")
	putGroup(t, c, "project1", "logstore1", 0, time.Now(), map[string]string{"env": "prod"},
		[]string{"status", "500", "msg", "login failed for user-42 with password=hunter2", "session", "s3cr3t",
			"path", "/login?token=abc.def", "user_agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"})

	labels := map[string]string{}
	waitFor(t, 15*time.Second, "both samples on /metrics", func() bool {
		families, _ := scrape(t, "http://"+addr+"/metrics")
		f := families["sls_keyword_last_match_info"]
		if f == nil {
			return false
		}
		for _, m := range f.Metric {
			rule, sample := "", ""
			for _, l := range m.Label {
				switch l.GetName() {
				case "rule":
					rule = l.GetValue()
				case "sample":
					sample = l.GetValue()
				}
			}
			labels[rule] = sample
		}
		return len(labels) == 2
	})

	run := startRulesTail(t, nil, "--config.file="+cfgFile, "--since=1m", "--duration=3s")
	if code := run.wait(t, nil, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	printed := map[string]string{}
	for _, l := range run.lines() {
		// TIME REGION/PROJECT/LOGSTORE RULE SAMPLE
		parts := strings.SplitN(l, " ", 4)
		if len(parts) != 4 {
			t.Fatalf("line %q", l)
		}
		printed[parts[2]] = parts[3]
	}
	if len(printed) != 2 || printed["http_5xx"] != labels["http_5xx"] || printed["login_fail"] != labels["login_fail"] {
		t.Errorf("rules tail printed %q\n/metrics shows %q", printed, labels)
	}
	if !strings.Contains(labels["login_fail"], "session=***") || !strings.Contains(labels["login_fail"], "user-#") || !strings.HasSuffix(labels["http_5xx"], "…") {
		t.Errorf("samples not redacted and cut as configured: %q", labels)
	}
	for _, secret := range []string{"hunter2", "s3cr3t", "abc.def", testSecret} {
		if strings.Contains(run.stdout.String()+run.stderr.String(), secret) {
			t.Errorf("rules tail shows %q", secret)
		}
	}

	// The seed's environment, the emulator as HTTP proxy; --rule replaces
	// the default rule (status=5\d{2}, named status).
	env := []string{"SLS_ENDPOINTS=cn-hangzhou.log.aliyuncs.com", "SLS_PROJECTS=project1", "SLS_LOGSTORES=logstore1",
		"SLS_AK_ID=" + testAK, "SLS_AK_KEY=" + testSecret, "HTTP_PROXY=" + emu, "http_proxy=" + emu, "NO_PROXY=", "no_proxy="}
	run = startRulesTail(t, env, "--rule=*=login failed", "--since=1m", "--duration=3s")
	if code := run.wait(t, nil, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if got := run.lines(); len(got) != 1 || !strings.Contains(got[0], " cn-hangzhou/project1/logstore1 fulltext ") ||
		!strings.Contains(got[0], `msg="login failed for user-42 with password=***"`) {
		t.Errorf("with the seed's environment and --rule: %q", got)
	}
}
