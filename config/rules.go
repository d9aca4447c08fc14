// Rules: the schema of a keyword rule and its validation.
package config

import (
	"errors"
	"fmt"
	"regexp"
)

// Rule counts logs whose Field (or any field, for "*") matches Regex.
type Rule struct {
	Name  string `yaml:"name"`
	Field string `yaml:"field"`
	Regex string `yaml:"regex"`
}

var ruleNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_:.-]*$`)

func (c *Config) validateRules(at locate) error {
	if len(c.Rules) == 0 {
		return at("rules", "at least one rule is required")
	}
	ruleNames := map[string]bool{}
	for i, rule := range c.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		if !ruleNameRE.MatchString(rule.Name) {
			return at(path+".name", "rules[%d]: name %q must start with a letter or '_' and hold only letters, digits, '_', ':', '.', '-'", i, rule.Name)
		}
		if ruleNames[rule.Name] {
			return at(path+".name", "rule %s is defined twice", rule.Name)
		}
		ruleNames[rule.Name] = true
		if rule.Field == "" {
			return at(path+".field", "rule %s: field is required (a field name, or \"*\" for any field)", rule.Name)
		}
		if _, err := regexp.Compile(rule.Regex); err != nil || rule.Regex == "" {
			if err == nil {
				err = errors.New("regex is empty")
			}
			return at(path+".regex", "rule %s: invalid regex %q: %v", rule.Name, rule.Regex, err)
		}
	}
	return nil
}
