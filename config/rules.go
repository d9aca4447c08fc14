// Rules: the schema of a keyword rule (in the main file and in rule_files), its validation, and the match.Spec and match.Sampler it becomes.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// Rule counts logs whose Field (or any field, for "*") matches Regex, when
// every And condition matches the same log and no Unless condition does.
type Rule struct {
	Name  string `yaml:"name"`
	Field string `yaml:"field"`
	Regex string `yaml:"regex"`
	// CaseInsensitive matches Regex ignoring case. The rule's conditions
	// inherit it unless they set case_insensitive themselves.
	CaseInsensitive bool `yaml:"case_insensitive"`
	// And lists conditions that must all match the same log; Unless lists
	// conditions none of which may. Field stays the rule's field label.
	And    []Condition `yaml:"and"`
	Unless []Condition `yaml:"unless"`
	// Logstores scopes the rule: globs over "region/project/logstore"
	// (path.Match: * and ? stay within one segment); empty means everywhere.
	Logstores []string `yaml:"logstores"`
	// SampleFields are the fields the sample label shows; empty means the
	// top-level sample_fields, ["*"] every content field.
	SampleFields []string `yaml:"sample_fields"`
	// SampleMinInterval is how long the sample label of one logstore keeps
	// a value before it may change; nil means the top-level
	// sample_min_interval, 0 off.
	SampleMinInterval *time.Duration `yaml:"sample_min_interval"`

	// Set by validation: where the rule was written, and its sampling.
	source          string
	sampler         *match.Sampler
	sampleSignature string
	minInterval     time.Duration
}

// Condition is a further test on the same log as its rule: Regex matches
// the value of Field ("*": any field).
type Condition struct {
	Field string `yaml:"field"`
	Regex string `yaml:"regex"`
	// CaseInsensitive: nil inherits the rule's case_insensitive.
	CaseInsensitive *bool `yaml:"case_insensitive"`
}

// RuleFile is the schema of a file listed by rule_files.
type RuleFile struct {
	Rules []Rule `yaml:"rules"`
}

// AppliesTo reports whether the rule counts in the logstore named by key
// (region/project/logstore).
func (r *Rule) AppliesTo(key string) bool {
	if len(r.Logstores) == 0 {
		return true
	}
	for _, glob := range r.Logstores {
		if ok, _ := path.Match(glob, key); ok {
			return true
		}
	}
	return false
}

// Source is where the rule is defined, as file:line ("" for rules that
// come from --rule flags).
func (r *Rule) Source() string { return r.source }

// MatchSpec is the rule as the matcher compiles it. A condition's
// case-insensitivity (its own, else the rule's) becomes a (?i) prefix.
func (r *Rule) MatchSpec() match.Spec {
	s := match.Spec{Name: r.Name, Field: r.Field, Regex: r.Regex, CaseInsensitive: r.CaseInsensitive}
	for _, c := range r.And {
		s.And = append(s.And, c.matchCondition(r.CaseInsensitive))
	}
	for _, c := range r.Unless {
		s.Unless = append(s.Unless, c.matchCondition(r.CaseInsensitive))
	}
	return s
}

func (c *Condition) matchCondition(ruleCaseInsensitive bool) match.Condition {
	expr := c.Regex
	if c.caseInsensitive(ruleCaseInsensitive) {
		expr = "(?i)" + expr
	}
	return match.Condition{Field: c.Field, Regex: expr}
}

func (c *Condition) caseInsensitive(ruleCaseInsensitive bool) bool {
	if c.CaseInsensitive != nil {
		return *c.CaseInsensitive
	}
	return ruleCaseInsensitive
}

// Sampler renders the rule's sample label: its sample_fields, the config's
// sample_max_length and redaction. Rules not built by Load or Parse get
// every content field, the default length and the default redaction.
func (r *Rule) Sampler() *match.Sampler {
	if r.sampler == nil {
		return match.NewSampler(match.SamplerOptions{MaxLength: Defaults.SampleMaxLength})
	}
	return r.sampler
}

// EffectiveSampleMinInterval is the rule's sample_min_interval, or the
// top-level one when the rule sets none (0: the label follows every match).
func (r *Rule) EffectiveSampleMinInterval() time.Duration { return r.minInterval }

var ruleNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_:.-]*$`)

// validateRules validates the sample settings, the main file's rules, then
// reads and validates every file of rule_files, appending their rules.
func (c *Config) validateRules(at locate) error {
	if err := c.validateSamples(at); err != nil {
		return err
	}
	defined := map[string]string{} // rule name -> where it was first defined
	for i := range c.Rules {
		where := "" // rules from --rule flags have no file
		if c.file != "" {
			where = fmt.Sprintf("%s:%d", c.file, at(fmt.Sprintf("rules[%d]", i), "").Line) // at locates the path in the main file
		}
		if err := c.validateRule(&c.Rules[i], i, where, at, defined); err != nil {
			return err
		}
	}
	files, err := c.ruleFilePaths(at)
	if err != nil {
		return err
	}
	for _, file := range files {
		if err := c.loadRuleFile(file, defined); err != nil {
			return err
		}
	}
	if len(c.Rules) == 0 {
		return at("rules", "at least one rule is required")
	}
	return nil
}

// ruleFilePaths expands rule_files, relative to the main file's directory,
// each file once. A glob may match nothing; a plain path must exist.
func (c *Config) ruleFilePaths(at locate) ([]string, error) {
	base := filepath.Dir(c.file)
	seen := map[string]bool{}
	var files []string
	for i, pattern := range c.RuleFiles {
		where := fmt.Sprintf("rule_files[%d]", i)
		if strings.TrimSpace(pattern) == "" {
			return nil, at(where, "rule_files[%d] is empty", i)
		}
		full := pattern
		if !filepath.IsAbs(full) {
			full = filepath.Join(base, full)
		}
		matches, err := filepath.Glob(full)
		if err != nil {
			return nil, at(where, "rule_files[%d] %q is not a valid glob: %v", i, pattern, err)
		}
		glob := strings.ContainsAny(pattern, `*?[\`)
		if len(matches) == 0 && !glob {
			return nil, at(where, "rule_files[%d]: no such file %q", i, full)
		}
		for _, m := range matches {
			if info, err := os.Stat(m); err == nil && info.IsDir() {
				if !glob {
					return nil, at(where, "rule_files[%d]: %q is a directory (rules/*.yml reads the files in one)", i, full)
				}
				continue // a glob such as rules/* may match directories
			}
			if !seen[m] {
				seen[m] = true
				files = append(files, m)
			}
		}
	}
	return files, nil
}

// loadRuleFile reads one file of rule_files strictly and appends its rules;
// its errors name that file.
func (c *Config) loadRuleFile(file string, defined map[string]string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return &Error{File: file, Msg: "cannot read rule file: " + err.Error()}
	}
	var rf RuleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil && !errors.Is(err, io.EOF) {
		return nameRuleInYAMLError(yamlError(file, err), data)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	at := func(p string, format string, args ...any) *Error {
		return &Error{File: file, Line: lineOf(&root, p), Msg: fmt.Sprintf(format, args...)}
	}
	for i := range rf.Rules {
		where := fmt.Sprintf("%s:%d", file, lineOf(&root, fmt.Sprintf("rules[%d]", i)))
		if err := c.validateRule(&rf.Rules[i], i, where, at, defined); err != nil {
			return err
		}
	}
	c.Rules = append(c.Rules, rf.Rules...)
	return nil
}

// validateRule checks rule i of a file (at locates its paths) and sets what
// validation derives: its source, sampler and sample interval.
func (c *Config) validateRule(rule *Rule, i int, where string, at locate, defined map[string]string) error {
	rulePath := fmt.Sprintf("rules[%d]", i)
	ruleAt := func(field, format string, args ...any) *Error {
		return at(rulePath+field, format, args...)
	}
	if !ruleNameRE.MatchString(rule.Name) {
		return ruleAt(".name", "rules[%d]: name %q must start with a letter or '_' and hold only letters, digits, '_', ':', '.', '-'", i, rule.Name)
	}
	if first, ok := defined[rule.Name]; ok {
		if first != "" {
			return ruleAt(".name", "rule %s is defined twice (first at %s)", rule.Name, first)
		}
		return ruleAt(".name", "rule %s is defined twice", rule.Name)
	}
	defined[rule.Name] = where
	rule.source = where
	for j, glob := range rule.Logstores {
		if _, err := path.Match(glob, ""); err != nil || strings.Count(glob, "/") != 2 {
			return ruleAt(fmt.Sprintf(".logstores[%d]", j), "rule %s: logstores[%d] %q must be a glob over region/project/logstore (e.g. cn-*/web-*/nginx-*)", rule.Name, j, glob)
		}
	}
	if rule.Field == "" {
		return ruleAt(".field", "rule %s: field is required (a field name, or \"*\" for any field)", rule.Name)
	}
	if err := checkRegex(rule.Regex, rule.CaseInsensitive); err != nil {
		return ruleAt(".regex", "rule %s: invalid regex %q: %v", rule.Name, rule.Regex, err)
	}
	for _, list := range []struct {
		key   string
		conds []Condition
	}{{"and", rule.And}, {"unless", rule.Unless}} {
		for j, cond := range list.conds {
			cpath := fmt.Sprintf(".%s[%d]", list.key, j)
			if cond.Field == "" {
				return ruleAt(cpath+".field", "rule %s: %s[%d]: field is required (a field name, or \"*\" for any field)", rule.Name, list.key, j)
			}
			if err := checkRegex(cond.Regex, cond.caseInsensitive(rule.CaseInsensitive)); err != nil {
				return ruleAt(cpath+".regex", "rule %s: %s[%d]: invalid regex %q: %v", rule.Name, list.key, j, cond.Regex, err)
			}
		}
	}
	fields := c.SampleFields
	if len(rule.SampleFields) > 0 {
		if err := checkSampleFields(rule.SampleFields); err != nil {
			return ruleAt(".sample_fields", "rule %s: %v", rule.Name, err)
		}
		fields = rule.SampleFields
	}
	rule.minInterval = c.SampleMinInterval
	if rule.SampleMinInterval != nil {
		if err := checkSampleMinInterval(*rule.SampleMinInterval); err != nil {
			return ruleAt(".sample_min_interval", "rule %s: %v", rule.Name, err)
		}
		rule.minInterval = *rule.SampleMinInterval
	}
	if len(fields) == 1 && fields[0] == match.FullText {
		fields = nil
	}
	rule.sampler = match.NewSampler(match.SamplerOptions{Fields: fields, MaxLength: c.SampleMaxLength, Redactor: c.redactor})
	rule.sampleSignature = fmt.Sprintf("%q|%d|%+v", fields, c.SampleMaxLength, c.Redact)
	return nil
}

// SampleSignature identifies how the rule's samples are rendered (fields,
// length, redaction): a reload that changes it drops the old samples.
func (r *Rule) SampleSignature() string { return r.sampleSignature }

// checkRegex compiles a rule's or condition's regex as written (so errors
// quote it as written), then as the matcher will.
func checkRegex(expr string, caseInsensitive bool) error {
	if expr == "" {
		return errors.New("regex is empty")
	}
	if _, err := regexp.Compile(expr); err != nil {
		return err
	}
	if caseInsensitive {
		if _, err := regexp.Compile("(?i)" + expr); err != nil {
			return err
		}
	}
	return nil
}

// nameRuleInYAMLError prefixes a YAML error inside a rules: list with the
// name of the rule it is in, so a typo in one of many rules is found.
func nameRuleInYAMLError(err error, data []byte) error {
	e, ok := err.(*Error)
	if !ok || e.Line == 0 {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return err
	}
	doc := root.Content[0].Content
	for k := 0; k+1 < len(doc); k += 2 {
		if doc[k].Value != "rules" || doc[k+1].Kind != yaml.SequenceNode {
			continue
		}
		end := int(^uint(0) >> 1) // the rules block ends where the next top-level key starts
		if k+2 < len(doc) {
			end = doc[k+2].Line
		}
		items := doc[k+1].Content
		for i, item := range items {
			next := end
			if i+1 < len(items) {
				next = items[i+1].Line
			}
			if e.Line >= item.Line && e.Line < next {
				if name := mappingValue(item, "name"); name != nil && name.Kind == yaml.ScalarNode && name.Value != "" {
					e.Msg = "rule " + name.Value + ": " + e.Msg
				} else {
					e.Msg = fmt.Sprintf("rules[%d]: %s", i, e.Msg)
				}
				return e
			}
		}
	}
	return err
}
