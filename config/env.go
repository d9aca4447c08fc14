// The seed monitor's environment (SLS_ENDPOINTS, SLS_PROJECTS, SLS_LOGSTORES, SLS_AK_*, SLS_CG) as a Config.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// DefaultRuleFlag is the seed's only keyword: HTTP 5xx in the status field.
const DefaultRuleFlag = `status=5\d{2}`

// HasSeedEnvironment reports whether SLS_ENDPOINTS is set.
func HasSeedEnvironment() bool { return os.Getenv("SLS_ENDPOINTS") != "" }

// FromEnvironment builds a Config the way the seed monitor read its
// environment: the i-th entries of SLS_ENDPOINTS, SLS_PROJECTS and
// SLS_LOGSTORES (separated by ';') belong together, and a project's
// logstores are separated by ','. Rules come from "FIELD=REGEX" strings.
func FromEnvironment(ruleFlags []string) (*Config, error) {
	split := func(name string) []string {
		v := strings.TrimSpace(os.Getenv(name))
		if v == "" {
			return nil
		}
		// Empty entries (a trailing or doubled ';') are skipped, as the seed did.
		var parts []string
		for _, p := range strings.Split(v, ";") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		return parts
	}
	endpoints, projects, logstores := split("SLS_ENDPOINTS"), split("SLS_PROJECTS"), split("SLS_LOGSTORES")
	if len(endpoints) == 0 {
		return nil, errors.New("environment: SLS_ENDPOINTS is not set (and no --config.file was given)")
	}
	if len(projects) != len(endpoints) || len(logstores) != len(endpoints) {
		return nil, fmt.Errorf("environment: SLS_ENDPOINTS has %d entries, SLS_PROJECTS %d and SLS_LOGSTORES %d; separated by ';' they must pair up",
			len(endpoints), len(projects), len(logstores))
	}
	cfg := Defaults
	if cg := os.Getenv("SLS_CG"); cg != "" {
		cfg.ConsumerGroup = cg
	}
	regionIndex := map[string]int{}
	for i, endpoint := range endpoints {
		var stores []string
		for _, l := range strings.Split(logstores[i], ",") {
			if l = strings.TrimSpace(l); l != "" {
				stores = append(stores, l)
			}
		}
		idx, ok := regionIndex[endpoint]
		if !ok {
			idx = len(cfg.Regions)
			regionIndex[endpoint] = idx
			cfg.Regions = append(cfg.Regions, Region{Endpoint: endpoint})
		}
		cfg.Regions[idx].Projects = append(cfg.Regions[idx].Projects, Project{Name: projects[i], Logstores: stores})
	}
	rules, err := RulesFromFlags(ruleFlags)
	if err != nil {
		return nil, err
	}
	cfg.Rules = rules
	if err := cfg.validate(nil); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	return &cfg, nil
}

// RulesFromFlags turns "FIELD=REGEX" strings into rules named after the
// field ("fulltext" for "*"), numbered when a field has several.
func RulesFromFlags(flags []string) ([]Rule, error) {
	if len(flags) == 0 {
		flags = []string{DefaultRuleFlag}
	}
	var rules []Rule
	perField := map[string]int{}
	for _, f := range flags {
		field, regex, ok := strings.Cut(f, "=")
		if !ok || field == "" || regex == "" {
			return nil, fmt.Errorf("--rule %q: want FIELD=REGEX (FIELD may be \"*\" for any field)", f)
		}
		base := field
		if field == FullTextField {
			base = "fulltext"
		}
		base = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
				return r
			}
			return '_'
		}, base)
		if base[0] >= '0' && base[0] <= '9' {
			base = "_" + base
		}
		perField[base]++
		name := base
		if n := perField[base]; n > 1 {
			name = fmt.Sprintf("%s_%d", base, n)
		}
		rules = append(rules, Rule{Name: name, Field: field, Regex: regex})
	}
	return rules, nil
}
