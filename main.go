// Command sls_keyword_exporter consumes SLS logstores through consumer groups and exports keyword-match metrics.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/collector"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/credentials"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/rulescli"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/statuspage"
)

const defaultListenAddress = ":10290"

func main() { os.Exit(run()) }

func run() int {
	var (
		configFile      = kingpin.Flag("config.file", "Configuration file (YAML). Without it the seed's SLS_* environment variables are read.").PlaceHolder("<file>").String()
		checkConfig     = kingpin.Flag("config.check", "Validate the configuration and exit.").Bool()
		ruleFlagsSet    bool
		ruleFlags       = kingpin.Flag("rule", "A rule as FIELD=REGEX (FIELD \"*\" matches any field). Repeatable. The exporter reads it without --config.file; rules tail uses it instead of the configuration's rules.").Default(config.DefaultRuleFlag).PlaceHolder("FIELD=REGEX").IsSetByUser(&ruleFlagsSet).Strings()
		metricsPath     = kingpin.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		disableExporter = kingpin.Flag("web.disable-exporter-metrics", "Exclude go_* and process_* metrics about the exporter itself.").Bool()
		shutdownTimeout = kingpin.Flag("shutdown.timeout", "How long stopping, or releasing a shard to another replica, may take: the last counts wait for a Prometheus scrape, then checkpoints are committed. Keep it above the scrape interval.").Default("15s").Duration()
		toolkitFlags    = kingpinflag.AddFlags(kingpin.CommandLine, defaultListenAddress)
	)
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(kingpin.CommandLine, logConfig)
	// Without a command the exporter runs, with every flag as before.
	kingpin.Command("serve", "Run the exporter (the default command).").Default()
	rulesCmd := kingpin.Command("rules", "Rule tools (docs/rules-cli.md).")
	testCmd, tailCmd := rulescli.NewTestCommand(rulesCmd), rulescli.NewTailCommand(rulesCmd)
	kingpin.Version(version.Print("sls_keyword_exporter"))
	kingpin.CommandLine.UsageWriter(os.Stdout)
	kingpin.HelpFlag.Short('h')
	command := kingpin.Parse()
	logger := promslog.New(logConfig)
	// The SDK's own log lines, and the credentials' refresh failures, join the same stream.
	sls.Logger = consumer.NewKitLogger(logger.With("component", "sls-sdk"))
	credentials.SetLogger(logger.With("component", "credentials"))

	load := func() (*config.Config, error) {
		switch {
		case *configFile != "":
			return config.Load(*configFile)
		case config.HasSeedEnvironment():
			return config.FromEnvironment(*ruleFlags)
		}
		return nil, errors.New("no configuration: pass --config.file, or set SLS_ENDPOINTS, SLS_PROJECTS and SLS_LOGSTORES (`make demo` runs against the bundled emulator)")
	}
	switch command {
	case testCmd.FullCommand():
		return testCmd.Run(os.Stdout)
	case tailCmd.FullCommand():
		var given []string // --rule replaces the configuration's rules only when given
		if ruleFlagsSet {
			given = *ruleFlags
		}
		return tailCmd.Run(logger, load, given, os.Stdout, os.Stderr)
	}
	cfg, err := load()
	if err != nil {
		logger.Error("Error loading configuration", "err", err)
		return 1
	}
	if *checkConfig {
		fmt.Printf("Configuration is valid: %d logstores, %d rules\n", len(cfg.Targets()), len(cfg.Rules))
		return 0
	}
	logger.Info("Starting sls_keyword_exporter", "version", version.Info())
	logger.Info("Build context", "build_context", version.BuildContext())

	// Bind before any consumer starts: a second instance on the same port
	// must fail here, not join the group under the first one's name.
	listeners, err := bindListeners(toolkitFlags)
	if err != nil {
		logger.Error("Error listening", "err", err)
		return 1
	}

	registry := prometheus.NewRegistry()
	metrics := collector.New(registry)
	registry.MustRegister(credentials.Collector{})
	manager := consumer.NewManager(logger, metrics, *shutdownTimeout)
	metrics.SetStateSource(manager)
	consumerName := defaultConsumerName(*toolkitFlags.WebListenAddresses)
	apply := func(c *config.Config) error {
		err := manager.Apply(c, consumer.SettingsFrom(c, consumerName))
		metrics.SetReloadResult(err == nil, float64(time.Now().Unix()))
		return err
	}
	if err := apply(cfg); err != nil {
		logger.Error("Error starting consumers", "err", err)
		return 1
	}

	gatherers := prometheus.Gatherers{registry}
	if !*disableExporter {
		exporterRegistry := prometheus.NewRegistry()
		exporterRegistry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		gatherers = append(gatherers, exporterRegistry)
	}
	reloadCh := make(chan chan error)
	mux := http.NewServeMux()
	// A scrape by Prometheus acknowledges the counts it was served: only then
	// may checkpoints move past them.
	mux.Handle(*metricsPath, metrics.Acks.Handler(metrics.Handler(gatherers, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})))
	mux.HandleFunc("/-/healthy", healthyHandler)
	mux.HandleFunc("/-/ready", readyHandler(manager))
	mux.HandleFunc("/-/reload", reloadHandler(reloadCh))
	// The status page (statuspage/, docs/status-page.md) renders the same
	// families as the metrics page. It is "/" unless the metrics are served
	// there; then it is "/status".
	status := statuspage.New(metrics.Gatherer(registry), statuspage.CurrentBuild(), statuspage.Options{
		MetricsPath: *metricsPath, Logger: logger,
	})
	if *metricsPath != "/" {
		mux.Handle("/{$}", status)
	} else {
		mux.Handle("/status", status)
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- serve(listeners, server, toolkitFlags, logger) }()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	reload := func() error {
		next, err := load()
		if err == nil {
			err = apply(next)
		} else {
			metrics.SetReloadResult(false, 0)
		}
		if err != nil {
			logger.Error("Error reloading configuration", "err", err)
			return err
		}
		logger.Info("Reloaded configuration", "logstores", len(next.Targets()), "rules", len(next.Rules))
		return nil
	}
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				_ = reload()
				continue
			}
			// The HTTP server keeps serving meanwhile: the last counts must be
			// scraped before their checkpoints are committed.
			logger.Info("Stopping: waiting for a scrape of the last counts, then committing checkpoints", "signal", sig.String(), "timeout", *shutdownTimeout)
			manager.Stop()
			_ = server.Close()
			return 0
		case errCh := <-reloadCh:
			errCh <- reload()
		case err := <-serveErr:
			logger.Error("Error serving HTTP", "err", err)
			manager.Stop()
			return 1
		}
	}
}

// defaultConsumerName is "<hostname>-<port>": stable across restarts of the
// same instance (it resumes its shards at once instead of waiting for the
// group timeout) and unique among processes on one host.
func defaultConsumerName(listenAddresses []string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	port := strings.TrimPrefix(defaultListenAddress, ":")
	if len(listenAddresses) > 0 {
		if _, p, err := net.SplitHostPort(strings.TrimPrefix(listenAddresses[0], "vsock://")); err == nil && p != "" {
			port = p
		}
	}
	return host + "-" + port
}
