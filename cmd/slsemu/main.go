// Command slsemu serves an SLS emulator: the demo world by default, or the world in --config.file.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		configFile    = kingpin.Flag("config.file", "World file (YAML). Without it the demo world runs: three regions, four logstores and generated traffic.").PlaceHolder("<file>").String()
		listenAddress = kingpin.Flag("web.listen-address", "Address to serve the SLS API on.").Default("127.0.0.1:9880").String()
		trafficRate   = kingpin.Flag("traffic.logs-per-second", "Override the generator's rate per logstore (0 keeps the world's setting).").Default("0").Float64()
	)
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(kingpin.CommandLine, logConfig)
	kingpin.Version(version.Print("slsemu"))
	kingpin.CommandLine.UsageWriter(os.Stdout)
	kingpin.HelpFlag.Short('h')
	kingpin.Parse()
	logger := promslog.New(logConfig)

	world := slsemu.DemoWorld()
	if *configFile != "" {
		w, err := slsemu.LoadWorld(*configFile)
		if err != nil {
			logger.Error("Error loading world", "err", err)
			return 1
		}
		world = w
	}
	if *trafficRate > 0 {
		if world.Traffic == nil {
			world.Traffic = &slsemu.TrafficConfig{}
		}
		world.Traffic.LogsPerSecond = *trafficRate
		if err := world.Validate(); err != nil {
			logger.Error("Invalid traffic rate", "err", err)
			return 1
		}
	}

	srv, err := slsemu.NewServer(world, slsemu.Options{Logger: logger})
	if err != nil {
		logger.Error("Error building emulator", "err", err)
		return 1
	}
	if err := srv.Start(*listenAddress); err != nil {
		logger.Error("Error listening", "address", *listenAddress, "err", err)
		return 1
	}
	defer srv.Close()
	logger.Info("SLS emulator listening", "url", srv.URL, "traffic", world.Traffic != nil)
	for _, r := range world.Regions {
		for _, p := range r.Projects {
			for _, l := range p.Logstores {
				logger.Info("Serving logstore", "region", r.Name, "endpoint", r.Endpoint, "project", p.Name, "logstore", l.Name, "shards", l.Shards)
			}
		}
	}
	// Not "or at endpoint <ip:port>": neither SDK dials an IP endpoint with a port
	// (both resolve <project>.<ip> through DNS); see pkg/slsemu/README.md.
	fmt.Fprintf(os.Stderr, "Point an SDK at a region endpoint with %s as its HTTP proxy (Python: HTTP_PROXY=%s).\n", srv.URL, srv.URL)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	logger.Info("Shutting down")
	return 0
}
