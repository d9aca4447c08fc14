// Command sdkconsumer is the benchmarks' baseline: the SDK's consumer library on every logstore of an emulator world, doing nothing but count.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	consumerLibrary "github.com/aliyun/aliyun-log-go-sdk/consumer"
	kitlog "github.com/go-kit/log"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// counter is a processor that counts logs and saves its checkpoint, as the
// cheapest real consumer-library client would.
type counter struct{ logs *atomic.Int64 }

func (c counter) Process(_ int, list *sls.LogGroupList, tracker consumerLibrary.CheckPointTracker) (string, error) {
	n := 0
	for _, g := range list.LogGroups {
		n += len(g.Logs)
	}
	c.logs.Add(int64(n))
	return "", tracker.SaveCheckPoint(false)
}

func (c counter) Shutdown(consumerLibrary.CheckPointTracker) error { return nil }

func main() {
	var (
		worldFile = flag.String("world", "", "slsemu world YAML naming the logstores to consume")
		proxy     = flag.String("proxy", "", "the emulator's URL, used as HTTP proxy")
		group     = flag.String("group", "sdk-baseline", "consumer group")
		begin     = flag.Bool("begin", false, "start at the beginning (else at the end)")
		listen    = flag.String("listen", "127.0.0.1:0", "address of /count (logs consumed so far)")
		heartbeat = flag.Int("heartbeat", 2, "heartbeat interval, seconds")
	)
	flag.Parse()
	world, err := slsemu.LoadWorld(*worldFile)
	if err != nil {
		log.Fatal(err)
	}
	proxyURL, err := url.Parse(*proxy)
	if err != nil {
		log.Fatal(err)
	}
	sls.Logger = kitlog.NewNopLogger()
	var logs atomic.Int64
	var workers []*consumerLibrary.ConsumerWorker
	for _, r := range world.Regions {
		for _, p := range r.Projects {
			for _, l := range p.Logstores {
				cfg := consumerLibrary.LogHubConfig{
					Endpoint:                  r.Endpoint,
					AccessKeyID:               world.AccessKeys[0].ID,
					AccessKeySecret:           world.AccessKeys[0].Secret,
					Project:                   p.Name,
					Logstore:                  l.Name,
					ConsumerGroupName:         *group,
					ConsumerName:              "baseline",
					HeartbeatIntervalInSecond: *heartbeat,
					HeartbeatTimeoutInSecond:  *heartbeat * 4,
					DataFetchIntervalInMs:     200,
					MaxFetchLogGroupCount:     1000,
					CursorPosition:            consumerLibrary.END_CURSOR,
					HTTPClient:                &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), MaxIdleConnsPerHost: 64}},
					Logger:                    kitlog.NewNopLogger(),
					DisableRuntimeMetrics:     true,
				}
				if *begin {
					cfg.CursorPosition = consumerLibrary.BEGIN_CURSOR
				}
				w := consumerLibrary.InitConsumerWorkerWithProcessor(cfg, counter{&logs})
				w.Start()
				workers = append(workers, w)
			}
		}
	}
	http.HandleFunc("/count", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, logs.Load()) })
	srv := &http.Server{Addr: *listen}
	go func() { log.Fatal(srv.ListenAndServe()) }()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
	<-signals
	os.Exit(0) // the baseline's stop is not measured
}
