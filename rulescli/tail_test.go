// Tests of rules tail in process: new shards after a split, readonly shards read to their end, no consumer group; the flags' checks and the match lines.
package rulescli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/testkit"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

const (
	tailAK     = "tail-ak"
	tailSecret = "tail-secret-never-shown"
)

func tailWorld() *slsemu.World {
	return &slsemu.World{
		AccessKeys: []slsemu.AccessKey{{ID: tailAK, Secret: tailSecret}},
		Regions: []slsemu.RegionConfig{{Name: "cn-hangzhou", Endpoint: "cn-hangzhou.log.aliyuncs.com",
			Projects: []slsemu.ProjectConfig{{Name: "project1", Logstores: []slsemu.LogstoreConfig{{Name: "logstore1", Shards: 2}}}}}},
	}
}

func tailConfig(t *testing.T, proxy string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`consumer_group: keyword-monitor
credentials: {access_key_id: %s, access_key_secret: %s}
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    proxy_url: %s
    projects: [{name: project1, logstores: [logstore1]}]
rules:
  - name: http_5xx
    field: status
    regex: '^5\d{2}$'
`, tailAK, tailSecret, proxy)), "tail.yml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// putTo writes one log with a status into the readwrite shard id.
func putTo(t *testing.T, c sls.ClientInterface, shardID int, status string) {
	t.Helper()
	shards, err := c.ListShards("project1", "logstore1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shards {
		if s.ShardID == shardID {
			key := s.InclusiveBeginKey
			group := &sls.LogGroup{Logs: []*sls.Log{testkit.Log(time.Now(), "status", status, "shard", fmt.Sprint(shardID))}}
			if err := c.PostLogStoreLogs("project1", "logstore1", group, &key); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no shard %d", shardID)
}

// Shards that appear while tail runs (a split's children) are followed from
// their first log; the readonly parent is read to its end and left; no
// consumer group is created.
func TestTailFollowsTheShardsOfASplit(t *testing.T) {
	srv := testkit.StartEmulator(t, tailWorld())
	client := sls.CreateNormalInterface("cn-hangzhou.log.aliyuncs.com", tailAK, tailSecret, "")
	client.SetHTTPClient(srv.HTTPClient())
	logs := &testkit.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	var mu sync.Mutex
	var got []string
	started := make(chan consumer.TailStart, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan consumer.TailStats, 1)
	go func() {
		stats, err := consumer.Tail(ctx, consumer.TailOptions{
			Config: tailConfig(t, srv.URL), Rate: 20, ShardListInterval: 200 * time.Millisecond, Logger: logger,
			Started: func(s consumer.TailStart) { started <- s },
		}, func(m consumer.TailMatch) {
			mu.Lock()
			got = append(got, fmt.Sprintf("%s/%s/%s shard %d %s %s", m.Region, m.Project, m.Logstore, m.Shard, m.Rule, m.Sample))
			mu.Unlock()
		})
		if err != nil {
			t.Error(err)
		}
		done <- stats
	}()
	defer func() { cancel(); <-done }()
	select {
	case s := <-started:
		if s != (consumer.TailStart{Logstores: 1, Shards: 2}) {
			t.Errorf("started: %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not start")
	}
	matches := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}

	putTo(t, client, 0, "500")
	putTo(t, client, 0, "200")
	testkit.WaitFor(t, 10*time.Second, "the match in shard 0", func() bool { return len(matches()) == 1 })
	if err := srv.SplitShard("project1", "logstore1", 0, ""); err != nil {
		t.Fatal(err)
	}
	putTo(t, client, 2, "502")
	putTo(t, client, 3, "503")
	putTo(t, client, 1, "504")
	testkit.WaitFor(t, 10*time.Second, "the matches in shards 1, 2 and 3", func() bool { return len(matches()) == 4 })
	testkit.WaitFor(t, 10*time.Second, "shard 0 left at its end", func() bool {
		return strings.Contains(logs.String(), `msg="Readonly shard read to its end" region=cn-hangzhou project=project1 logstore=logstore1 shard=0`)
	})
	time.Sleep(300 * time.Millisecond) // a few more pulls: nothing more may come
	cancel()
	stats := <-done
	done <- stats

	want := []string{
		"cn-hangzhou/project1/logstore1 shard 0 http_5xx shard=0 status=500",
		"cn-hangzhou/project1/logstore1 shard 1 http_5xx shard=1 status=504",
		"cn-hangzhou/project1/logstore1 shard 2 http_5xx shard=2 status=502",
		"cn-hangzhou/project1/logstore1 shard 3 http_5xx shard=3 status=503",
	}
	all := matches()
	slices.Sort(all)
	if strings.Join(all, "\n") != strings.Join(want, "\n") {
		t.Errorf("matches:\n%s\nwant:\n%s", strings.Join(all, "\n"), strings.Join(want, "\n"))
	}
	if len(stats.Matches) != 1 || stats.Matches[0] != (consumer.TailCount{Key: "cn-hangzhou/project1/logstore1", Rule: "http_5xx", Count: 4}) || stats.Shards != 4 || stats.Logs != 5 {
		t.Errorf("stats: %+v", stats)
	}
	groups, err := client.ListConsumerGroup("project1", "logstore1")
	if err != nil || len(groups) != 0 {
		t.Errorf("consumer groups after tail: %v (err %v), want none", groups, err)
	}
	if strings.Contains(logs.String(), tailSecret) {
		t.Error("the AccessKey secret is in the logs")
	}
}

func TestTailLines(t *testing.T) {
	m := consumer.TailMatch{Region: "cn-hangzhou", Project: "p", Logstore: "l", Shard: 3,
		Match: consumer.Match{Rule: "http_5xx", Field: "status", LogTime: 1767225600.25, Sample: `path="/a b" status=500`}}
	text, jsonOut := "text", "json"
	var out bytes.Buffer
	(&TailCommand{output: &text}).writer(&out)(m)
	(&TailCommand{output: &jsonOut}).writer(&out)(m)
	want := `2026-01-01T00:00:00.25Z cn-hangzhou/p/l http_5xx path="/a b" status=500
{"time":"2026-01-01T00:00:00.25Z","log_time":1767225600.25,"region":"cn-hangzhou","project":"p","logstore":"l","shard":3,"rule":"http_5xx","field":"status","sample":"path=\"/a b\" status=500"}
`
	if out.String() != want {
		t.Errorf("lines:\n%s\nwant:\n%s", out.String(), want)
	}
	var decoded tailLine
	if err := json.Unmarshal(bytes.Split(out.Bytes(), []byte("\n"))[1], &decoded); err != nil || decoded.Sample != m.Sample {
		t.Errorf("JSON line: %+v, %v", decoded, err)
	}
}

// Bad flags fail before anything is read; the configuration is not even loaded.
func TestTailRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rate      float64
		logstores []string
		since     time.Duration
		want      string
	}{
		{"rate 0", 0, nil, 0, "--rate must be above 0 and at most 20, got 0"},
		{"rate too high", 50, nil, 0, "--rate must be above 0 and at most 20, got 50"},
		{"logstore not a key", 2, []string{"logstore1"}, 0, `--logstore \"logstore1\" must be a glob over region/project/logstore`},
		{"logstore bad glob", 2, []string{"a/b/[c"}, 0, `--logstore \"a/b/[c\" must be a glob`},
		{"negative since", 2, nil, -time.Second, "--since and --duration must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			var none []string
			var zero time.Duration
			output := "text"
			c := &TailCommand{ruleFiles: &none, logstores: &tc.logstores, since: &tc.since, duration: &zero, rate: &tc.rate, output: &output}
			loaded := false
			code := c.run(context.Background(), logger, func() (*config.Config, error) { loaded = true; return nil, fmt.Errorf("unused") }, nil, &bytes.Buffer{}, &bytes.Buffer{})
			if code != 1 || loaded || !strings.Contains(logs.String(), tc.want) {
				t.Errorf("code %d, loaded %v, log %s; want %q", code, loaded, logs.String(), tc.want)
			}
		})
	}
}

// --rule and --rules replace the configuration's rules, validated with its
// sample settings; a mistake in them names the flag or file.
func TestTailRulesReplaceTheConfigs(t *testing.T) {
	srv := testkit.StartEmulator(t, tailWorld())
	cfg := tailConfig(t, srv.URL)
	dir := writeFiles(t, map[string]string{"bad.yml": "rules:\n  - name: x\n    field: a\n    regex: '['\n"})
	for _, tc := range []struct {
		name  string
		flags []string
		files []string
		want  string
	}{
		{"bad --rule", []string{"status"}, nil, `--rule \"status\": want FIELD=REGEX`},
		{"bad --rule regex", []string{"status=("}, nil, `--rule: rule status: invalid regex \"(\"`},
		{"bad --rules", nil, []string{dir + "/bad.yml"}, dir + `/bad.yml:4: rule x: invalid regex`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			var none []string
			var zero time.Duration
			rate, output := 2.0, "text"
			c := &TailCommand{ruleFiles: &tc.files, logstores: &none, since: &zero, duration: &zero, rate: &rate, output: &output}
			code := c.run(context.Background(), logger, func() (*config.Config, error) { return cfg, nil }, tc.flags, &bytes.Buffer{}, &bytes.Buffer{})
			if code != 1 || !strings.Contains(logs.String(), tc.want) {
				t.Errorf("code %d, log %s; want %q", code, logs.String(), tc.want)
			}
		})
	}
}

// A logstore that cannot be read is logged and retried; the others are
// followed all the same.
func TestTailGoesOnWithoutABrokenLogstore(t *testing.T) {
	srv := testkit.StartEmulator(t, tailWorld())
	client := sls.CreateNormalInterface("cn-hangzhou.log.aliyuncs.com", tailAK, tailSecret, "")
	client.SetHTTPClient(srv.HTTPClient())
	cfg := tailConfig(t, srv.URL)
	cfg.Regions[0].Projects[0].Logstores = []string{"logstore1", "missing"}
	logs := &testkit.SyncBuffer{}
	started := make(chan consumer.TailStart, 1)
	matched := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := consumer.Tail(ctx, consumer.TailOptions{Config: cfg, Rate: 20, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			Started: func(s consumer.TailStart) { started <- s }},
			func(m consumer.TailMatch) { matched <- m.Logstore + " " + m.Sample })
		if err != nil {
			t.Error(err)
		}
	}()
	defer func() { cancel(); <-done }()
	select {
	case s := <-started:
		if s != (consumer.TailStart{Logstores: 2, Shards: 2, Failed: 1}) {
			t.Errorf("started: %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not start")
	}
	putTo(t, client, 1, "500")
	select {
	case m := <-matched:
		if m != "logstore1 shard=1 status=500" {
			t.Errorf("match %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no match from logstore1")
	}
	if !strings.Contains(logs.String(), `msg="Listing shards failed; retrying" region=cn-hangzhou project=project1 logstore=missing`) ||
		!strings.Contains(logs.String(), "LogStoreNotExist") {
		t.Errorf("logs:\n%s", logs.String())
	}
}
