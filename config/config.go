// Package config holds the exporter's YAML schema, its defaults and strict validation with file:line errors.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// Config is the whole configuration file.
type Config struct {
	// ConsumerGroup is the SLS consumer group every replica joins.
	ConsumerGroup string `yaml:"consumer_group"`
	// ConsumerName identifies this replica in the group. Empty means
	// "<hostname>-<listen port>", chosen in main.go.
	ConsumerName string `yaml:"consumer_name"`
	// CursorStart is where a group with no checkpoint starts: begin, end or a time.
	CursorStart string `yaml:"cursor_start"`

	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// ConsumerTimeout is the group's timeout (whole seconds). Zero keeps an
	// existing group's timeout (SDK members heartbeat every 20 s: a lower
	// timeout would expire them) and creates a missing group with
	// DefaultConsumerTimeout.
	ConsumerTimeout time.Duration `yaml:"consumer_timeout"`
	FetchInterval   time.Duration `yaml:"fetch_interval"`
	// IdlePollInterval is how often a quiet shard is polled; zero chooses it
	// from the number of shards held (see consumer.idlePollInterval).
	IdlePollInterval time.Duration `yaml:"idle_poll_interval"`
	CommitInterval   time.Duration `yaml:"commit_interval"`
	// UnscrapedCommitAfter: when no scrape has acknowledged counts for this
	// long, checkpoints advance anyway (and a metric counts it).
	UnscrapedCommitAfter time.Duration `yaml:"unscraped_commit_after"`
	MaxFetchGroups       int           `yaml:"max_fetch_log_groups"`
	PullWorkers          int           `yaml:"pull_workers"`
	PullBufferBytes      ByteSize      `yaml:"pull_buffer_bytes"`
	LagInterval          time.Duration `yaml:"lag_interval"`
	// DiscoveryInterval is how often projects with logstore patterns are listed.
	DiscoveryInterval time.Duration `yaml:"discovery_interval"`
	RequestTimeout    time.Duration `yaml:"request_timeout"`
	// RetryTimeout is accepted for old configuration files and ignored:
	// the consumer retries failed calls itself with a capped backoff.
	RetryTimeout    time.Duration `yaml:"retry_timeout"`
	SampleMaxLength int           `yaml:"sample_max_length"`

	Credentials Credentials `yaml:"credentials"`
	Regions     []Region    `yaml:"regions"`
	Rules       []Rule      `yaml:"rules"`
	Canary      Canary      `yaml:"canary"`

	// RuleFiles are globs of files holding more rules (a top-level rules:
	// list each), relative to this file's directory; read again on reload.
	RuleFiles []string `yaml:"rule_files"`
	// SampleFields and SampleMinInterval are the rules' defaults (rules.go);
	// Redact masks secrets in samples (samples.go).
	SampleFields      []string      `yaml:"sample_fields"`
	SampleMinInterval time.Duration `yaml:"sample_min_interval"`
	Redact            Redact        `yaml:"redact"`

	// cursorStartTime is CursorStart parsed, when it is a time.
	cursorStartTime time.Time
	// file is where Parse read the config: rule_files are relative to it.
	file string
	// redactor is Redact compiled.
	redactor *match.Redactor
	// skipCredentials: LoadForRules, which does not resolve credentials.
	skipCredentials bool
}

// Credentials says where a region's SLS credentials come from: an AccessKey
// (type access_key, the default) or temporary credentials that are
// refreshed before they expire. docs/credentials.md describes every key.
type Credentials struct {
	// Type is access_key (default), sts_token_file, ecs_ram_role,
	// oidc_role_arn, ram_role_arn or default.
	Type string `yaml:"type"`

	// access_key, and the AccessKey that assumes the role of ram_role_arn.
	AccessKeyID         string `yaml:"access_key_id"`
	AccessKeySecret     Secret `yaml:"access_key_secret"`
	AccessKeySecretFile string `yaml:"access_key_secret_file"`
	SecurityToken       Secret `yaml:"security_token"`

	// sts_token_file: a JSON file holding an STS token, re-read when it changes.
	TokenFile string `yaml:"token_file"`

	// ecs_ram_role: the instance's RAM role; empty discovers it.
	RoleName      string `yaml:"role_name"`
	DisableIMDSv1 bool   `yaml:"disable_imds_v1"`

	// oidc_role_arn and ram_role_arn: the role to assume.
	RoleARN         string        `yaml:"role_arn"`
	RoleSessionName string        `yaml:"role_session_name"`
	SessionDuration time.Duration `yaml:"session_duration"`
	Policy          string        `yaml:"policy"`
	ExternalID      Secret        `yaml:"external_id"`
	OIDCProviderARN string        `yaml:"oidc_provider_arn"`
	OIDCTokenFile   string        `yaml:"oidc_token_file"`

	// Where the STS and metadata-service calls go, and how long one may take.
	STSEndpoint string `yaml:"sts_endpoint"`
	STSRegion   string `yaml:"sts_region"`
	STSVPC      bool   `yaml:"sts_vpc"`
	ProxyURL    string `yaml:"proxy_url"` // for STS
	// MetadataProxyURL reaches the ECS metadata service (100.100.100.200)
	// through an HTTP proxy; normally unset.
	MetadataProxyURL string        `yaml:"metadata_proxy_url"`
	Timeout          time.Duration `yaml:"timeout"`
}

// Canary writes a tagged log into each logstore every Interval and measures
// how long it takes to be counted. Off by default: it needs write permission.
type Canary struct {
	Enabled  bool          `yaml:"enabled"`
	Interval time.Duration `yaml:"interval"`
}

// FullTextField is the Rule.Field that matches any field.
const FullTextField = "*"

// Defaults are tuned for a monitor: the SDK's 20 s heartbeat and 60 s
// failover are too slow when alerts must fire within seconds.
var Defaults = Config{
	ConsumerGroup:        "keyword-monitor",
	CursorStart:          "end",
	HeartbeatInterval:    2 * time.Second,
	FetchInterval:        200 * time.Millisecond,
	CommitInterval:       5 * time.Second,
	UnscrapedCommitAfter: 5 * time.Minute,
	MaxFetchGroups:       1000,
	PullWorkers:          8,
	PullBufferBytes:      32 << 20,
	LagInterval:          5 * time.Second,
	DiscoveryInterval:    time.Minute,
	RequestTimeout:       10 * time.Second,
	SampleMaxLength:      200,
	Canary:               Canary{Interval: 10 * time.Second},
}

// DefaultConsumerTimeout is the timeout of a consumer group the exporter
// creates when consumer_timeout is not set: a dead replica's shards move
// within seconds.
const DefaultConsumerTimeout = 8 * time.Second

// Error is a configuration problem, located in the file when possible.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// LoadForRules reads and validates a configuration file for its rules
// (rules test): credentials are not resolved, so a file whose secrets come
// from files or the environment of the machine that runs the exporter can
// be tested anywhere. Its targets carry no credentials.
func LoadForRules(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(data, path, true)
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Parse decodes YAML strictly (unknown keys are errors), applies defaults and
// validates. file names the source in errors.
func Parse(data []byte, file string) (*Config, error) {
	return parse(data, file, false)
}

func parse(data []byte, file string, skipCredentials bool) (*Config, error) {
	cfg := Defaults
	cfg.skipCredentials = skipCredentials
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, nameRuleInYAMLError(yamlError(file, err), data)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	cfg.file = file
	if err := cfg.validate(&root); err != nil {
		if e, ok := err.(*Error); ok && e.File == "" { // errors in rule_files name their file
			e.File = file
		}
		return nil, err
	}
	return &cfg, nil
}

// yamlError turns yaml's "line N: msg" errors into file:line errors.
func yamlError(file string, err error) error {
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) && len(typeErr.Errors) > 0 {
		var msgs []string
		line := 0
		for _, e := range typeErr.Errors {
			if m := yamlLineRE.FindStringSubmatch(e); m != nil {
				if line == 0 {
					line, _ = strconv.Atoi(m[1]) // m[1] is digits
				}
				msgs = append(msgs, "line "+m[1]+": "+m[2])
			} else {
				msgs = append(msgs, e)
			}
		}
		if len(msgs) == 1 {
			_, msg, _ := strings.Cut(msgs[0], ": ")
			return &Error{File: file, Line: line, Msg: msg}
		}
		return &Error{File: file, Line: line, Msg: strings.Join(msgs, "; ")}
	}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1]) // m[1] is digits
		return &Error{File: file, Line: line, Msg: m[2]}
	}
	return &Error{File: file, Msg: err.Error()}
}

// CursorStartTime is the parsed cursor_start when it is a time (zero otherwise).
func (c *Config) CursorStartTime() time.Time { return c.cursorStartTime }

// nameRE is what SLS allows as a project, logstore or consumer group name.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,127}$`)

// locate builds an error at a dotted path of the YAML tree.
type locate func(path string, format string, args ...any) *Error

// cursorTimeLayouts are the accepted forms of a cursor_start time.
var cursorTimeLayouts = []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

func (c *Config) validate(root *yaml.Node) error {
	at := func(path string, format string, args ...any) *Error {
		return &Error{Line: lineOf(root, path), Msg: fmt.Sprintf(format, args...)}
	}
	if !nameRE.MatchString(c.ConsumerGroup) {
		return at("consumer_group", "consumer_group %q must be 2-128 lowercase letters, digits, '-' or '_'", c.ConsumerGroup)
	}
	switch c.CursorStart {
	case "begin", "end":
	default:
		parsed := false
		for _, layout := range cursorTimeLayouts {
			if t, err := time.ParseInLocation(layout, c.CursorStart, time.Local); err == nil {
				c.cursorStartTime, parsed = t, true
				break
			}
		}
		if !parsed {
			return at("cursor_start", "cursor_start %q must be begin, end, an RFC 3339 time or \"2006-01-02 15:04:05\"", c.CursorStart)
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
		min time.Duration
		sec bool
	}{
		{"heartbeat_interval", c.HeartbeatInterval, 100 * time.Millisecond, false},
		{"fetch_interval", c.FetchInterval, 10 * time.Millisecond, false},
		{"commit_interval", c.CommitInterval, 100 * time.Millisecond, false},
		{"unscraped_commit_after", c.UnscrapedCommitAfter, time.Second, false},
		{"lag_interval", c.LagInterval, 100 * time.Millisecond, false},
		{"discovery_interval", c.DiscoveryInterval, 100 * time.Millisecond, false},
		{"request_timeout", c.RequestTimeout, time.Second, false},
	} {
		if d.v < d.min {
			return at(d.key, "%s must be at least %s, got %s", d.key, d.min, d.v)
		}
	}
	if c.IdlePollInterval != 0 && (c.IdlePollInterval < 10*time.Millisecond || c.IdlePollInterval > time.Minute) {
		return at("idle_poll_interval", "idle_poll_interval must be between 10ms and 1m (or unset for automatic), got %s", c.IdlePollInterval)
	}
	if c.ConsumerTimeout != 0 {
		if c.ConsumerTimeout%time.Second != 0 || c.ConsumerTimeout < time.Second {
			return at("consumer_timeout", "consumer_timeout must be whole seconds (SLS's unit), got %s", c.ConsumerTimeout)
		}
		if c.ConsumerTimeout < 2*c.HeartbeatInterval {
			return at("consumer_timeout", "consumer_timeout (%s) must be at least twice heartbeat_interval (%s)", c.ConsumerTimeout, c.HeartbeatInterval)
		}
	}
	if c.MaxFetchGroups < 1 || c.MaxFetchGroups > 1000 {
		return at("max_fetch_log_groups", "max_fetch_log_groups must be 1..1000, got %d", c.MaxFetchGroups)
	}
	if c.PullWorkers < 1 || c.PullWorkers > 256 {
		return at("pull_workers", "pull_workers must be 1..256, got %d", c.PullWorkers)
	}
	if c.PullBufferBytes < 1<<20 {
		return at("pull_buffer_bytes", "pull_buffer_bytes must be at least 1MiB, got %d bytes", int64(c.PullBufferBytes))
	}
	if c.SampleMaxLength < 16 || c.SampleMaxLength > 4096 {
		return at("sample_max_length", "sample_max_length must be 16..4096, got %d", c.SampleMaxLength)
	}
	if c.Canary.Interval < time.Second {
		return at("canary.interval", "canary.interval must be at least 1s, got %s", c.Canary.Interval)
	}
	if err := c.Credentials.validate(TypeAccessKey); err != nil {
		return at(blockPath("credentials", &c.Credentials, err.(*credentialsError).field), "credentials: %v", err)
	}
	if err := c.validateRegions(at); err != nil {
		return err
	}
	return c.validateRules(at)
}

// lineOf returns the line of a dotted path such as "rules[2].regex" in the
// YAML tree, falling back to the nearest existing parent (0 if none).
func lineOf(root *yaml.Node, path string) int {
	if root == nil || len(root.Content) == 0 {
		return 0
	}
	node := root.Content[0]
	line := node.Line
	for _, part := range strings.Split(path, ".") {
		key, index := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			if n, err := strconv.Atoi(part[i+1 : len(part)-1]); err == nil {
				index = n
			}
		}
		next := mappingValue(node, key)
		if next == nil {
			return line
		}
		line, node = next.Line, next
		if index >= 0 {
			if node.Kind != yaml.SequenceNode || index >= len(node.Content) {
				return line
			}
			node = node.Content[index]
			line = node.Line
		}
	}
	return line
}

func mappingValue(node *yaml.Node, key string) *yaml.Node {
	if node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			if node.Content[i+1].Kind == yaml.ScalarNode {
				return node.Content[i+1]
			}
			v := *node.Content[i+1]
			v.Line = node.Content[i].Line
			return &v
		}
	}
	return nil
}
