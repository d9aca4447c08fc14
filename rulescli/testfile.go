// rules test: the YAML test-file format (rules under test, input logs, expected matches and samples) and its runner with a per-rule, per-log diff.
package rulescli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"go.yaml.in/yaml/v3"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/consumer"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// testFile is the schema of a test file. Paths are relative to the file.
type testFile struct {
	// Config is a configuration file: its rules (rule_files included), its
	// sample settings and redact.
	Config string `yaml:"config"`
	// RuleFiles are rule files (globs allowed), added after the config's
	// rules, or the only rules (with the default sample settings).
	RuleFiles []string   `yaml:"rule_files"`
	Tests     []testCase `yaml:"tests"`
}

// testCase is one batch of logs and what the rules must make of it.
type testCase struct {
	Name string `yaml:"name"`
	// Target is the logstore the logs come from, region/project/logstore:
	// only the rules whose logstores: globs match it apply. Empty applies
	// every rule.
	Target string    `yaml:"target"`
	Logs   []testLog `yaml:"logs"`
	// Expect lists, per rule, what it matches. A rule not listed must
	// match nothing.
	Expect map[string]expectation `yaml:"expect"`
}

// testLog is one input log and its group's metadata.
type testLog struct {
	// ID names the log in expect and in the diff; default its index (0, 1, …).
	ID string `yaml:"id"`
	// Time is RFC 3339 or unix seconds; default baseTime plus the index in seconds.
	Time   string `yaml:"time"`
	Topic  string `yaml:"topic"`
	Source string `yaml:"source"`
	Tags   pairs  `yaml:"tags"`
	Fields pairs  `yaml:"fields"`
}

// expectation is what one rule must do with a test's logs; at least one
// of its keys is set.
type expectation struct {
	// Matches are the IDs of exactly the logs the rule matches.
	Matches *[]string `yaml:"matches"`
	// Count is how many logs the rule matches.
	Count *int `yaml:"count"`
	// Sample is the sample label of the newest match (by log time; the
	// later log of equal times), exactly as /metrics shows it.
	Sample *string `yaml:"sample"`
}

// pairs is a YAML mapping of scalars, kept in order.
type pairs [][2]string

func (p *pairs) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of names to values", node.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: %q: want a plain value (quote it if needed)", k.Line, k.Value)
		}
		if seen[k.Value] {
			return fmt.Errorf("line %d: %q is given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		value := v.Value
		if v.Tag == "!!null" {
			value = ""
		}
		*p = append(*p, [2]string{k.Value, value})
	}
	return nil
}

// baseTime is the time of log 0 when a log gives none; log i is i seconds later.
var baseTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testSummary counts what RunTests checked.
type testSummary struct {
	Files, FailedFiles int
	Tests, Logs        int
}

// RunTests runs every test file and writes, per file, PASSED with a count
// of what it checked, or FAILED with a diff per test, rule and log; then a
// summary line. It reports whether every file passed.
func RunTests(w io.Writer, files []string) bool {
	var sum testSummary
	for _, file := range files {
		sum.Files++
		report, tests, logs, err := runTestFile(file)
		sum.Tests += tests
		sum.Logs += logs
		switch {
		case err != nil:
			sum.FailedFiles++
			fmt.Fprintf(w, "%s: FAILED: %v\n", file, err)
		case report != "":
			sum.FailedFiles++
			fmt.Fprintf(w, "%s: FAILED\n%s", file, report)
		default:
			fmt.Fprintf(w, "%s: PASSED (%s, %s)\n", file, plural(tests, "test"), plural(logs, "log"))
		}
	}
	if sum.FailedFiles > 0 {
		fmt.Fprintf(w, "rules test: %d of %s FAILED\n", sum.FailedFiles, plural(sum.Files, "file"))
		return false
	}
	fmt.Fprintf(w, "rules test: %s PASSED (%s, %s)\n", plural(sum.Files, "file"), plural(sum.Tests, "test"), plural(sum.Logs, "log"))
	return true
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// runTestFile runs one file: report is empty when every test passed.
func runTestFile(file string) (report string, tests, logs int, err error) {
	tf, err := readTestFile(file)
	if err != nil {
		return "", 0, 0, err
	}
	cfg, err := tf.rules(filepath.Dir(file))
	if err != nil {
		return "", 0, 0, err
	}
	var out strings.Builder
	for i := range tf.Tests {
		tc := &tf.Tests[i]
		diff, err := tc.run(cfg)
		if err != nil {
			return "", 0, 0, fmt.Errorf("%s: %w", tc.title(i), err)
		}
		if diff != "" {
			fmt.Fprintf(&out, "  %s:\n%s", tc.title(i), diff)
		}
		logs += len(tc.Logs)
	}
	return out.String(), len(tf.Tests), logs, nil
}

// yamlTypeRE finds the Go type names in yaml's errors about unknown keys.
var yamlTypeRE = regexp.MustCompile(` in type \S+`)

func readTestFile(file string) (*testFile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return nil, fmt.Errorf("cannot read: %v", err)
	}
	var tf testFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, errors.New(yamlMessage(err))
	}
	if len(tf.Tests) == 0 {
		return nil, errors.New("no tests: list them under tests:")
	}
	return &tf, nil
}

// yamlMessage is a YAML error on one line, without Go type names:
// "line 3: field logz not found; line 5: …".
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		lines = append(lines, strings.TrimSpace(yamlTypeRE.ReplaceAllString(l, "")))
	}
	return strings.Join(lines, "; ")
}

// rules loads the rules under test as the exporter would: the config file
// through config.LoadForRules (its rule_files too; credentials are not
// resolved: nothing is sent to SLS), rule files as rule_files reads
// them.
func (tf *testFile) rules(dir string) (*config.Config, error) {
	resolve := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	var files []string
	for i, pattern := range tf.RuleFiles {
		full := resolve(pattern)
		if !strings.ContainsAny(pattern, `*?[\`) {
			files = append(files, full)
			continue
		}
		matches, err := filepath.Glob(full)
		if err != nil {
			return nil, fmt.Errorf("rule_files[%d] %q is not a valid glob: %v", i, pattern, err)
		}
		files = append(files, matches...)
	}
	if tf.Config == "" {
		if len(files) == 0 {
			return nil, errors.New("no rules under test: name a config file (config:) and/or rule files (rule_files:)")
		}
		return config.RulesOnly(nil, files)
	}
	cfg, err := config.LoadForRules(resolve(tf.Config))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return cfg, nil
	}
	return cfg.WithRules(true, nil, files)
}

func (tc *testCase) title(i int) string {
	name := tc.Name
	if name == "" {
		name = "test " + strconv.Itoa(i+1)
	}
	title := strconv.Quote(name)
	if tc.Target != "" {
		title += " (target " + tc.Target + ")"
	}
	return "test " + title
}

// run evaluates the test's logs as one pulled batch of its target and
// compares with the expectations; diff is empty when they hold. err is a
// mistake in the test itself.
func (tc *testCase) run(cfg *config.Config) (diff string, err error) {
	if tc.Target != "" {
		if _, err := path.Match(tc.Target, ""); err != nil || strings.Count(tc.Target, "/") != 2 || strings.ContainsAny(tc.Target, "*?[") {
			return "", fmt.Errorf("target %q must be region/project/logstore", tc.Target)
		}
	}
	ids := make([]string, len(tc.Logs))
	index := map[string]int{}
	for i, l := range tc.Logs {
		ids[i] = l.ID
		if ids[i] == "" {
			ids[i] = strconv.Itoa(i)
		}
		if _, dup := index[ids[i]]; dup {
			return "", fmt.Errorf("two logs have the id %q", ids[i])
		}
		index[ids[i]] = i
	}
	known := map[string]*config.Rule{}
	for i := range cfg.Rules {
		known[cfg.Rules[i].Name] = &cfg.Rules[i]
	}
	for _, name := range sortedKeys(tc.Expect) {
		exp := tc.Expect[name]
		if known[name] == nil {
			return "", fmt.Errorf("expect: no rule %s among the rules under test (%s)", name, ruleNames(cfg.Rules))
		}
		if exp.Matches == nil && exp.Count == nil && exp.Sample == nil {
			return "", fmt.Errorf("expect: rule %s: give matches, count and/or sample", name)
		}
		if exp.Matches != nil {
			for _, id := range *exp.Matches {
				if _, ok := index[id]; !ok {
					return "", fmt.Errorf("expect: rule %s: matches: no log has the id %q", name, id)
				}
			}
		}
	}

	raw, err := tc.logGroups()
	if err != nil {
		return "", err
	}
	eval, err := consumer.NewRuleEvaluator(cfg.Rules, tc.Target)
	if err != nil {
		return "", err
	}
	type result struct {
		matched []bool
		count   int
		newest  float64
		sample  string
	}
	results := map[string]*result{}
	if _, err := eval.Eval(raw, func(m consumer.Match) {
		r := results[m.Rule]
		if r == nil {
			r = &result{matched: make([]bool, len(tc.Logs))}
			results[m.Rule] = r
		}
		r.matched[m.Log] = true
		r.count++
		if r.count == 1 || m.LogTime >= r.newest { // as the match loop picks a batch's sample
			r.newest, r.sample = m.LogTime, m.Sample
		}
	}); err != nil {
		return "", err
	}
	applies := map[string]bool{}
	for _, r := range eval.Rules() {
		applies[r.Name] = true
	}

	// Logs are shown with their content fields, masked as samples are.
	show := match.NewSampler(match.SamplerOptions{MaxLength: 120, Redactor: cfg.Redactor()})
	describe := func(i int) string {
		fields := make([]match.Field, len(tc.Logs[i].Fields))
		for j, f := range tc.Logs[i].Fields {
			fields[j] = match.Field{Key: []byte(f[0]), Value: []byte(f[1])}
		}
		return "log " + ids[i] + " (" + show.Render(fields) + ")"
	}
	var out strings.Builder
	for i := range cfg.Rules {
		rule := &cfg.Rules[i]
		got := results[rule.Name]
		if got == nil {
			got = &result{matched: make([]bool, len(tc.Logs))}
		}
		exp, listed := tc.Expect[rule.Name]
		var lines []string
		var want []bool
		switch {
		case !listed:
			want = make([]bool, len(tc.Logs))
		case exp.Matches != nil:
			want = make([]bool, len(tc.Logs))
			for _, id := range *exp.Matches {
				want[index[id]] = true
			}
		}
		if want != nil {
			for j := range tc.Logs {
				switch {
				case want[j] && !got.matched[j]:
					lines = append(lines, describe(j)+": expected a match, got none")
				case !want[j] && got.matched[j]:
					lines = append(lines, describe(j)+": got a match, expected none")
				}
			}
		}
		if listed && exp.Count != nil && *exp.Count != got.count {
			lines = append(lines, fmt.Sprintf("count: expected %d, got %d", *exp.Count, got.count))
			if want == nil { // show which logs matched
				for j := range tc.Logs {
					if got.matched[j] {
						lines = append(lines, "  matched "+describe(j))
					}
				}
			}
		}
		if listed && exp.Sample != nil && (got.count == 0 || *exp.Sample != got.sample) {
			gotSample := got.sample
			if got.count == 0 {
				gotSample = "(no match, no sample)"
			}
			lines = append(lines, "sample:", "  expected: "+*exp.Sample, "  got:      "+gotSample)
		}
		if len(lines) == 0 {
			continue
		}
		header := "rule " + rule.Name
		switch {
		case !applies[rule.Name]:
			header += fmt.Sprintf(" (does not apply to %s: its logstores are %s)", tc.Target, strings.Join(rule.Logstores, ", "))
		case !listed:
			header += " (not in expect: expected to match nothing)"
		}
		fmt.Fprintf(&out, "    %s:\n", header)
		for _, l := range lines {
			fmt.Fprintf(&out, "      %s\n", l)
		}
	}
	return out.String(), nil
}

// logGroups encodes the logs as a PullLogs body would carry them: a
// LogGroupList, one group per log with its topic, source and tags.
func (tc *testCase) logGroups() ([]byte, error) {
	list := &sls.LogGroupList{}
	for i, l := range tc.Logs {
		at := baseTime.Add(time.Duration(i) * time.Second)
		if l.Time != "" {
			var err error
			if at, err = parseLogTime(l.Time); err != nil {
				return nil, fmt.Errorf("logs[%d]: time %q: want RFC 3339 (2026-01-02T15:04:05Z) or unix seconds", i, l.Time)
			}
		}
		sec, ns := uint32(at.Unix()), uint32(at.Nanosecond())
		log := &sls.Log{Time: &sec}
		if ns != 0 {
			log.TimeNs = &ns
		}
		for _, f := range l.Fields {
			log.Contents = append(log.Contents, &sls.LogContent{Key: new(f[0]), Value: new(f[1])})
		}
		group := &sls.LogGroup{Logs: []*sls.Log{log}}
		if l.Topic != "" {
			group.Topic = new(l.Topic)
		}
		if l.Source != "" {
			group.Source = new(l.Source)
		}
		for _, tag := range l.Tags {
			group.LogTags = append(group.LogTags, &sls.LogTag{Key: new(tag[0]), Value: new(tag[1])})
		}
		list.LogGroups = append(list.LogGroups, group)
	}
	return list.Marshal()
}

func parseLogTime(s string) (time.Time, error) {
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		if sec < 0 || sec > 1<<32-1 {
			return time.Time{}, errors.New("out of range")
		}
		return time.Unix(sec, 0), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil && (t.Unix() < 0 || t.Unix() > 1<<32-1) {
		return time.Time{}, errors.New("out of range")
	}
	return t, err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ruleNames(rules []config.Rule) string {
	names := make([]string, len(rules))
	for i := range rules {
		names[i] = rules[i].Name
	}
	return strings.Join(names, ", ")
}
