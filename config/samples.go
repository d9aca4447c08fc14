// Samples: the schema and validation of sample_fields, sample_min_interval and redact, and the match.Redactor they build.
package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

// Redact configures how secrets are masked in samples before they are cut
// and shown (the sample label, rules test and tail, the status page).
type Redact struct {
	// DisableDefaults drops the built-in key names (match.DefaultRedactKeys),
	// bearer-token and URL-password masking; Keys and Patterns still apply.
	DisableDefaults bool `yaml:"disable_defaults"`
	// Keys are more key names whose values are masked, matched like the
	// built-in ones: case-insensitively, '-', '.' and '_' alike, anywhere
	// in a field's key and in key=value pairs inside values.
	Keys []string `yaml:"keys"`
	// Patterns replace what they match in every value shown.
	Patterns []RedactPattern `yaml:"patterns"`
}

// RedactPattern replaces every match of Regex by Replacement ($1 is the
// first group; empty means "***").
type RedactPattern struct {
	Regex       string `yaml:"regex"`
	Replacement string `yaml:"replacement"`
}

// redactKeyRE is what a key name of redact.keys may hold.
var redactKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// minSampleMinInterval: below one scrape interval a hold changes nothing.
const minSampleMinInterval = time.Second

// validateSamples checks the top-level sample settings and builds the redactor.
func (c *Config) validateSamples(at locate) error {
	if err := checkSampleFields(c.SampleFields); err != nil {
		return at("sample_fields", "%v", err)
	}
	if err := checkSampleMinInterval(c.SampleMinInterval); err != nil {
		return at("sample_min_interval", "%v", err)
	}
	opts := match.RedactOptions{DisableDefaults: c.Redact.DisableDefaults}
	for i, k := range c.Redact.Keys {
		if !redactKeyRE.MatchString(k) {
			return at(fmt.Sprintf("redact.keys[%d]", i), "redact: keys[%d] %q must be letters, digits, '_', '-' or '.'", i, k)
		}
		opts.Keys = append(opts.Keys, k)
	}
	for i, p := range c.Redact.Patterns {
		if p.Regex == "" {
			return at(fmt.Sprintf("redact.patterns[%d]", i), "redact: patterns[%d]: regex is required", i)
		}
		if _, err := regexp.Compile(p.Regex); err != nil {
			return at(fmt.Sprintf("redact.patterns[%d].regex", i), "redact: patterns[%d]: invalid regex %q: %v", i, p.Regex, err)
		}
		opts.Patterns = append(opts.Patterns, match.RedactPattern{Regex: p.Regex, Replacement: p.Replacement})
	}
	r, err := match.NewRedactor(opts)
	if err != nil { // the patterns compiled above
		return at("redact", "redact: %v", err)
	}
	c.redactor = r
	return nil
}

// Redactor masks secrets the way samples do, for whatever shows a log
// (rules test and tail, the status page). It is set by Load and Parse.
func (c *Config) Redactor() *match.Redactor {
	if c.redactor == nil {
		return match.DefaultRedactor()
	}
	return c.redactor
}

// checkSampleFields: non-empty names, each once, "*" (every field) alone.
func checkSampleFields(fields []string) error {
	seen := map[string]bool{}
	for i, f := range fields {
		switch {
		case strings.TrimSpace(f) == "":
			return fmt.Errorf("sample_fields[%d] is empty", i)
		case f == match.FullText && len(fields) > 1:
			return errors.New(`sample_fields: "*" (every field) must be alone`)
		case seen[f]:
			return fmt.Errorf("sample_fields[%d] %q is listed twice", i, f)
		}
		seen[f] = true
	}
	return nil
}

func checkSampleMinInterval(d time.Duration) error {
	if d != 0 && d < minSampleMinInterval {
		return fmt.Errorf("sample_min_interval must be 0 (off) or at least %s, got %s", minSampleMinInterval, d)
	}
	return nil
}
