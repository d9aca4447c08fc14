// Package match holds compiled keyword rules and applies them to a log seen as (key, value) byte pairs.
package match

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
)

// Field is one key/value pair of a log. Both slices may alias the source
// buffer and are only valid during the call they are passed to.
type Field struct {
	Key   []byte
	Value []byte
}

// Spec is a rule as configured.
type Spec struct {
	Name  string
	Field string // a field name, or "*" for any field
	Regex string
}

// FullText is the Spec.Field that matches any field.
const FullText = "*"

// Rule is a compiled rule.
type Rule struct {
	Name  string
	Field string
	re    *regexp.Regexp
	// literal is set when the whole regex is a plain string: bytes.Index
	// is far faster than the regexp engine.
	literal []byte
	// prefix is a literal every match starts with, checked before the regexp.
	prefix []byte
}

// RuleSet is an immutable set of compiled rules, safe for concurrent use.
type RuleSet struct {
	Rules    []*Rule
	byField  map[string][]int // field name -> rule indexes
	fullText []int            // indexes of "*" rules
}

// Compile compiles specs; an error names the rule whose regex is invalid.
func Compile(specs []Spec) (*RuleSet, error) {
	rs := &RuleSet{byField: map[string][]int{}}
	for i, s := range specs {
		re, err := regexp.Compile(s.Regex)
		if err != nil {
			return nil, fmt.Errorf("rule %s: invalid regex %q: %w", s.Name, s.Regex, err)
		}
		r := &Rule{Name: s.Name, Field: s.Field, re: re}
		if lit, complete := re.LiteralPrefix(); complete && !hasFlags(s.Regex) {
			r.literal = []byte(lit)
		} else if lit != "" {
			r.prefix = []byte(lit)
		}
		rs.Rules = append(rs.Rules, r)
		if s.Field == FullText {
			rs.fullText = append(rs.fullText, i)
		} else {
			rs.byField[s.Field] = append(rs.byField[s.Field], i)
		}
	}
	return rs, nil
}

// hasFlags reports whether a regex sets flags such as (?i), which
// LiteralPrefix does not account for.
func hasFlags(expr string) bool {
	re, err := syntax.Parse(expr, syntax.Perl)
	return err != nil || re.Flags&syntax.FoldCase != 0
}

// MatchValue reports whether v matches the rule.
func (r *Rule) MatchValue(v []byte) bool {
	if r.literal != nil {
		return bytes.Contains(v, r.literal)
	}
	if r.prefix != nil && !bytes.Contains(v, r.prefix) {
		return false
	}
	return r.re.Match(v)
}

// Match sets matched[i] for every rule i the log matches (a rule counts a
// log once, however many of its fields match) and reports whether any did.
// matched must have len(rs.Rules) entries and be all false on entry.
func (rs *RuleSet) Match(fields []Field, matched []bool) bool {
	any := false
	for _, f := range fields {
		for _, i := range rs.byField[string(f.Key)] {
			if !matched[i] && rs.Rules[i].MatchValue(f.Value) {
				matched[i], any = true, true
			}
		}
	}
	for _, i := range rs.fullText {
		for _, f := range fields {
			if rs.Rules[i].MatchValue(f.Value) {
				matched[i], any = true, true
				break
			}
		}
	}
	return any
}
