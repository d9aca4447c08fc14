// Test helpers: SDK clients and consumer-library workers pointed at an emulator.
package slsemu_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	consumerLibrary "github.com/aliyun/aliyun-log-go-sdk/consumer"
	"github.com/go-kit/log"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/testkit"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

func init() {
	// The SDK logs to stdout by default; tests want quiet output.
	sls.Logger = log.NewNopLogger()
}

const (
	testAK     = "test-ak"
	testSecret = "test-secret"
	testRegion = "cn-hangzhou"
	testHost   = "cn-hangzhou.log.aliyuncs.com"
)

// testWorld has one region with a 4-shard logstore and a 2-shard one.
func testWorld() *slsemu.World {
	return &slsemu.World{
		AccessKeys: []slsemu.AccessKey{{ID: testAK, Secret: testSecret}},
		Regions: []slsemu.RegionConfig{
			{Name: testRegion, Endpoint: testHost, Projects: []slsemu.ProjectConfig{
				{Name: "proj", Logstores: []slsemu.LogstoreConfig{{Name: "four", Shards: 4}, {Name: "two", Shards: 2}}},
			}},
			{Name: "cn-beijing", Endpoint: "cn-beijing.log.aliyuncs.com", Projects: []slsemu.ProjectConfig{
				{Name: "bjproj", Logstores: []slsemu.LogstoreConfig{{Name: "bjstore", Shards: 1}}},
			}},
		},
	}
}

// newClient returns an SDK client for a region endpoint, dialing the emulator.
func newClient(srv *slsemu.Server, endpoint, ak, secret string) sls.ClientInterface {
	c := sls.CreateNormalInterface(endpoint, ak, secret, "")
	c.SetHTTPClient(srv.HTTPClient())
	return c
}

// putSeqLogs writes logs numbered from..to-1 (field "seq"), batch per group,
// spreading groups over the shards with hash keys.
func putSeqLogs(t testing.TB, c sls.ClientInterface, project, logstore string, from, to, batch int) {
	t.Helper()
	keys := []string{"00000000000000000000000000000000", "40000000000000000000000000000000", "80000000000000000000000000000000", "c0000000000000000000000000000000"}
	for start, n := from, 0; start < to; start, n = start+batch, n+1 {
		lg := &sls.LogGroup{}
		for i := start; i < min(start+batch, to); i++ {
			lg.Logs = append(lg.Logs, newLog(time.Now(), "seq", strconv.Itoa(i), "status", "200"))
		}
		key := keys[n%len(keys)]
		if err := c.PostLogStoreLogs(project, logstore, lg, &key); err != nil {
			t.Fatalf("PostLogStoreLogs: %v", err)
		}
	}
}

func field(l *sls.Log, key string) string {
	for _, c := range l.Contents {
		if c.GetKey() == key {
			return c.GetValue()
		}
	}
	return ""
}

// deliveries counts, per seq value, how often consumers received a log.
type deliveries struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
}

func newDeliveries() *deliveries { return &deliveries{counts: map[string]int{}} }

func (d *deliveries) add(l *sls.Log) {
	d.mu.Lock()
	d.counts[field(l, "seq")]++
	d.total++
	d.mu.Unlock()
}

func (d *deliveries) snapshot() (distinct, total, duplicates int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.counts {
		if n > 1 {
			duplicates += n - 1
		}
	}
	return len(d.counts), d.total, duplicates
}

// workerConfig is a consumer-library config with heartbeats short enough for tests.
func workerConfig(srv *slsemu.Server, logstore, group, consumer string) consumerLibrary.LogHubConfig {
	return consumerLibrary.LogHubConfig{
		Endpoint:                  testHost,
		AccessKeyID:               testAK,
		AccessKeySecret:           testSecret,
		Project:                   "proj",
		Logstore:                  logstore,
		ConsumerGroupName:         group,
		ConsumerName:              consumer,
		CursorPosition:            consumerLibrary.BEGIN_CURSOR,
		HeartbeatIntervalInSecond: 1,
		HeartbeatTimeoutInSecond:  3,
		DataFetchIntervalInMs:     100,
		AutoCommitIntervalInMS:    200,
		HTTPClient:                srv.HTTPClient(),
		Logger:                    log.NewNopLogger(),
		DisableRuntimeMetrics:     true,
	}
}

// testWorker is a consumer-library worker with the test's race workaround.
type testWorker struct {
	*consumerLibrary.ConsumerWorker
	watch *heartbeatWatch
}

// StopAndWait stops the worker as the library does.
func (w *testWorker) StopAndWait() {
	w.watch.stopping.Store(true)
	w.ConsumerWorker.StopAndWait()
}

// recordingProcessor records every log and saves the checkpoint after each batch.
type recordingProcessor struct {
	got   *deliveries
	watch *heartbeatWatch
}

func (p recordingProcessor) Process(shard int, lgl *sls.LogGroupList, tracker consumerLibrary.CheckPointTracker) (string, error) {
	for _, lg := range lgl.LogGroups {
		for _, l := range lg.Logs {
			p.got.add(l)
		}
	}
	return "", tracker.SaveCheckPoint(false)
}

func (p recordingProcessor) Shutdown(consumerLibrary.CheckPointTracker) error {
	p.watch.awaitQuietMoment()
	return nil
}

// startWorker runs a consumer-library worker that records every log it gets.
func startWorker(srv *slsemu.Server, logstore, group, consumer string, got *deliveries) *testWorker {
	cfg := workerConfig(srv, logstore, group, consumer)
	watch := newHeartbeatWatch(cfg.HTTPClient.Transport)
	cfg.HTTPClient.Transport = watch
	w := consumerLibrary.InitConsumerWorkerWithProcessor(cfg, recordingProcessor{got: got, watch: watch})
	if err := setWorkerClientTimeouts(w, 10*time.Second, 10*time.Second); err != nil {
		panic(err)
	}
	w.Start()
	return &testWorker{ConsumerWorker: w, watch: watch}
}

var (
	waitFor       = testkit.WaitFor
	newLog        = testkit.Log
	startEmulator = testkit.StartEmulator
)
