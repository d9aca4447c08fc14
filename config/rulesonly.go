// Rules given outside the main file (rules test and rules tail): --rule flags and rule files, validated as Load validates rule_files.
package config

import (
	"errors"
	"fmt"
)

// WithRules returns a copy of c whose rules are c's own (keep) or none,
// followed by the rules of flags ("FIELD=REGEX" as --rule takes them) and
// of files (a top-level rules: list each, as rule_files reads them). They
// are validated exactly as Load validates rules: names unique across all
// of them, errors naming file and line, and each rule's sampler built with
// c's sample_fields, sample_max_length and redact. c must be validated
// (Load, Parse, FromEnvironment or RulesOnly); it is not changed.
func (c *Config) WithRules(keep bool, flags, files []string) (*Config, error) {
	out := *c
	defined := map[string]string{}
	out.Rules = nil
	if keep {
		out.Rules = append(out.Rules, c.Rules...)
		for i := range out.Rules {
			defined[out.Rules[i].Name] = out.Rules[i].Source()
		}
	}
	if len(flags) > 0 {
		rules, err := RulesFromFlags(flags)
		if err != nil {
			return nil, err
		}
		at := func(_ string, format string, args ...any) *Error {
			return &Error{Msg: "--rule: " + fmt.Sprintf(format, args...)}
		}
		for i := range rules {
			if err := out.validateRule(&rules[i], len(out.Rules)+i, "", at, defined); err != nil {
				return nil, err
			}
		}
		out.Rules = append(out.Rules, rules...)
	}
	for _, file := range files {
		if err := out.loadRuleFile(file, defined); err != nil {
			return nil, err
		}
	}
	if len(out.Rules) == 0 {
		return nil, errors.New("no rules")
	}
	return &out, nil
}

// RulesOnly is a configuration of nothing but rules, from flags and files
// as WithRules reads them, with the default sample settings and redaction:
// for rules tested without a configuration file. It has no regions.
func RulesOnly(flags, files []string) (*Config, error) {
	base := Defaults
	if err := base.validateSamples(func(path string, format string, args ...any) *Error {
		return &Error{Msg: fmt.Sprintf(format, args...)}
	}); err != nil {
		return nil, err
	}
	return base.WithRules(false, flags, files)
}
