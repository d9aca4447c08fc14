// rules tail: its flags, the match lines (text or JSON) on stdout and the summary on stderr; the reading itself is consumer.Tail.
package rulescli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
)

// maxTailRate bounds --rate: a shard's read quota is shared with the
// consumers in production.
const maxTailRate = 20

// TailCommand is `rules tail`.
type TailCommand struct {
	cmd       *kingpin.CmdClause
	ruleFiles *[]string
	logstores *[]string
	since     *time.Duration
	duration  *time.Duration
	rate      *float64
	output    *string
}

// NewTailCommand adds `tail` under parent (the `rules` command). The
// configuration (--config.file or the SLS_* environment) and --rule are the
// application's flags, shared with the exporter.
func NewTailCommand(parent *kingpin.CmdClause) *TailCommand {
	cmd := parent.Command("tail", "Print matches as they arrive in every configured logstore, without joining the consumer group or touching checkpoints. --rule or --rules replace the configuration's rules for the run.")
	return &TailCommand{
		cmd:       cmd,
		ruleFiles: cmd.Flag("rules", "A rule file (a top-level rules: list, as rule_files reads them) replacing the configuration's rules. Repeatable; with --rule, both apply.").PlaceHolder("FILE").ExistingFiles(),
		logstores: cmd.Flag("logstore", "Follow only the logstores matching this glob over region/project/logstore (path.Match, as a rule's logstores:). Repeatable.").PlaceHolder("GLOB").Strings(),
		since:     cmd.Flag("since", "Read from this long ago, then follow (default: only what arrives from now on).").PlaceHolder("DURATION").Duration(),
		duration:  cmd.Flag("duration", "Stop after this long (default: at SIGINT or SIGTERM).").PlaceHolder("DURATION").Duration(),
		rate:      cmd.Flag("rate", fmt.Sprintf("Most pulls per second of one shard (at most %d), one at a time: tail shares each shard's read quota with the production consumers.", maxTailRate)).Default("2").Float64(),
		output:    cmd.Flag("output", "Match lines as text, or one JSON object per line.").Default("text").Enum("text", "json"),
	}
}

// FullCommand is what kingpin's Parse returns when the command was chosen.
func (c *TailCommand) FullCommand() string { return c.cmd.FullCommand() }

// Run tails until SIGINT, SIGTERM or --duration and returns the exit code.
// load reads the configuration as the exporter does; ruleFlags are the
// --rule flags the user gave (nil for none).
func (c *TailCommand) Run(logger *slog.Logger, load func() (*config.Config, error), ruleFlags []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *c.duration)
		defer cancel()
	}
	return c.run(ctx, logger, load, ruleFlags, stdout, stderr)
}

func (c *TailCommand) run(ctx context.Context, logger *slog.Logger, load func() (*config.Config, error), ruleFlags []string, stdout, stderr io.Writer) int {
	fail := func(format string, args ...any) int {
		logger.Error("rules tail: " + fmt.Sprintf(format, args...))
		return 1
	}
	if *c.rate <= 0 || *c.rate > maxTailRate {
		return fail("--rate must be above 0 and at most %d, got %g", maxTailRate, *c.rate)
	}
	if *c.since < 0 || *c.duration < 0 {
		return fail("--since and --duration must not be negative")
	}
	for _, glob := range *c.logstores {
		if _, err := path.Match(glob, ""); err != nil || strings.Count(glob, "/") != 2 {
			return fail("--logstore %q must be a glob over region/project/logstore (e.g. cn-*/web-*/nginx-*)", glob)
		}
	}
	cfg, err := load()
	if err != nil {
		return fail("loading the configuration: %v", err)
	}
	if len(ruleFlags) > 0 || len(*c.ruleFiles) > 0 {
		if cfg, err = cfg.WithRules(false, ruleFlags, *c.ruleFiles); err != nil {
			return fail("%v", err)
		}
	}
	opts := consumer.TailOptions{Config: cfg, Rate: *c.rate, Logger: logger}
	if globs := *c.logstores; len(globs) > 0 {
		opts.Include = func(key string) bool {
			for _, glob := range globs {
				if ok, _ := path.Match(glob, key); ok {
					return true
				}
			}
			return false
		}
	}
	from := "from now on"
	if *c.since > 0 {
		opts.Since = time.Now().Add(-*c.since)
		from = "since " + opts.Since.UTC().Format(time.RFC3339)
	}
	opts.Started = func(s consumer.TailStart) {
		msg := fmt.Sprintf("rules tail: following %d logstores (%d shards) %s", s.Logstores, s.Shards, from)
		if s.Failed > 0 {
			msg += fmt.Sprintf("; %d failed to start and are retried", s.Failed)
		}
		fmt.Fprintln(stderr, msg)
	}
	began := time.Now()
	write := c.writer(stdout)
	stats, err := consumer.Tail(ctx, opts, write)
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stderr, "rules tail: %s in %s\n", stats, time.Since(began).Round(time.Millisecond))
	for _, m := range stats.Matches {
		fmt.Fprintf(stderr, "  %s %s %d\n", m.Key, m.Rule, m.Count)
	}
	return 0
}

// tailLine is a match as --output=json prints it.
type tailLine struct {
	Time     string  `json:"time"`     // the log's time, RFC 3339, UTC
	LogTime  float64 `json:"log_time"` // the same in unix seconds
	Region   string  `json:"region"`
	Project  string  `json:"project"`
	Logstore string  `json:"logstore"`
	Shard    int     `json:"shard"`
	Rule     string  `json:"rule"`
	Field    string  `json:"field"`
	Sample   string  `json:"sample"`
}

// writer prints one line per match: "TIME REGION/PROJECT/LOGSTORE RULE
// SAMPLE", or a JSON object.
func (c *TailCommand) writer(w io.Writer) func(consumer.TailMatch) {
	asJSON := *c.output == "json"
	return func(m consumer.TailMatch) {
		at := formatLogTime(m.LogTime)
		if asJSON {
			line, _ := json.Marshal(tailLine{at, m.LogTime, m.Region, m.Project, m.Logstore, m.Shard, m.Rule, m.Field, m.Sample})
			fmt.Fprintf(w, "%s\n", line)
			return
		}
		fmt.Fprintf(w, "%s %s/%s/%s %s %s\n", at, m.Region, m.Project, m.Logstore, m.Rule, m.Sample)
	}
}

// formatLogTime renders a log time in UTC, to the microsecond a float64
// of unix seconds holds.
func formatLogTime(seconds float64) string {
	return time.Unix(0, int64(math.Round(seconds*1e6))*1000).UTC().Format(time.RFC3339Nano)
}
