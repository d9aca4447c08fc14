// Rules: the schema of a keyword rule and its validation.
package config

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Rule counts logs whose Field (or any field, for "*") matches Regex.
type Rule struct {
	Name  string `yaml:"name"`
	Field string `yaml:"field"`
	Regex string `yaml:"regex"`
	// Logstores scopes the rule: globs over "region/project/logstore"
	// (path.Match: * and ? stay within one segment); empty means everywhere.
	Logstores []string `yaml:"logstores"`
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

var ruleNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_:.-]*$`)

func (c *Config) validateRules(at locate) error {
	if len(c.Rules) == 0 {
		return at("rules", "at least one rule is required")
	}
	ruleNames := map[string]bool{}
	for i, rule := range c.Rules {
		at := func(field, format string, args ...any) *Error {
			return at(fmt.Sprintf("rules[%d]", i)+field, format, args...)
		}
		if !ruleNameRE.MatchString(rule.Name) {
			return at(".name", "rules[%d]: name %q must start with a letter or '_' and hold only letters, digits, '_', ':', '.', '-'", i, rule.Name)
		}
		if ruleNames[rule.Name] {
			return at(".name", "rule %s is defined twice", rule.Name)
		}
		ruleNames[rule.Name] = true
		for j, glob := range rule.Logstores {
			if _, err := path.Match(glob, ""); err != nil || strings.Count(glob, "/") != 2 {
				return at(fmt.Sprintf(".logstores[%d]", j), "rule %s: logstores[%d] %q must be a glob over region/project/logstore (e.g. cn-*/web-*/nginx-*)", rule.Name, j, glob)
			}
		}
		if rule.Field == "" {
			return at(".field", "rule %s: field is required (a field name, or \"*\" for any field)", rule.Name)
		}
		if _, err := regexp.Compile(rule.Regex); err != nil || rule.Regex == "" {
			if err == nil {
				err = errors.New("regex is empty")
			}
			return at(".regex", "rule %s: invalid regex %q: %v", rule.Name, rule.Regex, err)
		}
	}
	return nil
}
