// Package match holds compiled keyword rules and applies them to a log seen as (key, value) byte pairs.
//
// Matching skips what cannot match. Each regex is reduced to literals that
// any match must contain (literals.go) or to the bytes a value must start
// with when it is anchored (anchored.go). All the literals tried on a
// field are looked for in one pass over its value (prefilter.go, plan.go);
// the regex runs only on values that hold one of its literals, and not at
// all when the literals are exactly its language. The results are those of
// regexp.Match on every value, which FuzzMatchEqualsRegexp checks.
package match

import (
	"fmt"
	"math/bits"
	"regexp"
	"sync"
)

// Field is one key/value pair of a log. Both slices may alias the source
// buffer and are only valid during the call they are passed to.
type Field struct {
	Key   []byte
	Value []byte
}

// Spec is a rule as configured. A log matches it when Regex matches the
// value of Field (any field for "*"), every And condition matches the same
// log, and no Unless condition does.
type Spec struct {
	Name  string
	Field string // a field name, or "*" for any field
	Regex string
	// CaseInsensitive is the same as a (?i) prefix on Regex; it does not
	// apply to the conditions, which can carry their own (?i).
	CaseInsensitive bool
	And             []Condition
	Unless          []Condition
}

// Condition is a further test on the same log: Regex matches the value of
// Field ("*" for any field).
type Condition struct {
	Field string
	Regex string
}

// FullText is the Spec.Field that matches any field.
const FullText = "*"

// Rule is a compiled rule.
type Rule struct {
	Name  string
	Field string
	re    *regexp.Regexp
	main  int32   // atom of Field/Regex
	and   []int32 // atoms that must match
	nor   []int32 // atoms that must not match
}

// MatchValue reports whether v matches the rule's own regex (conditions
// aside).
func (r *Rule) MatchValue(v []byte) bool { return r.re.Match(v) }

// RuleSet is an immutable set of compiled rules, safe for concurrent use.
//
// Each distinct (field, regex) of the rules and their conditions is an
// atom. Atoms of the rules' own regexes are evaluated for every log
// (stage 0); atoms only conditions use (stage 1) only when a rule with
// conditions matched its own regex.
type RuleSet struct {
	Rules     []*Rule
	atoms     []*atom
	nMain     int       // atoms [0, nMain) are stage 0
	stages    [2]plan   // per stage: which atoms to try on which field
	mainRules [][]int32 // atom -> rules whose own regex it is
	condRules []int32   // rules with conditions
	words     int       // uint64 words of a bit per atom
	candWords int       // uint64 words of a bit per literal atom of the largest group
	pool      sync.Pool // scratch bits when they do not fit on the stack
}

// Compile compiles specs; an error names the rule (and condition) whose
// regex is invalid.
func Compile(specs []Spec) (*RuleSet, error) {
	rs := &RuleSet{}
	index := map[[2]string]int32{}
	type pending struct {
		rule  int
		field string
		expr  string
		where string
		dst   *int32
	}
	var conds []pending
	for i, s := range specs {
		expr := s.Regex
		if s.CaseInsensitive {
			expr = "(?i)" + expr
		}
		r := &Rule{Name: s.Name, Field: s.Field}
		rs.Rules = append(rs.Rules, r)
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("rule %s: invalid regex %q: %w", s.Name, s.Regex, err)
		}
		r.re = re
		r.main = rs.atomFor(index, s.Field, expr, re)
		r.and = make([]int32, len(s.And))
		r.nor = make([]int32, len(s.Unless))
		for j, c := range s.And {
			conds = append(conds, pending{i, c.Field, c.Regex, fmt.Sprintf("and[%d] on field %q", j, c.Field), &r.and[j]})
		}
		for j, c := range s.Unless {
			conds = append(conds, pending{i, c.Field, c.Regex, fmt.Sprintf("unless[%d] on field %q", j, c.Field), &r.nor[j]})
		}
		if len(s.And)+len(s.Unless) > 0 {
			rs.condRules = append(rs.condRules, int32(i))
		}
	}
	rs.nMain = len(rs.atoms)
	for _, c := range conds {
		re, err := regexp.Compile(c.expr)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %s: invalid regex %q: %w", specs[c.rule].Name, c.where, c.expr, err)
		}
		*c.dst = rs.atomFor(index, c.field, c.expr, re)
	}
	rs.mainRules = make([][]int32, len(rs.atoms))
	for i, r := range rs.Rules {
		rs.mainRules[r.main] = append(rs.mainRules[r.main], int32(i))
	}
	rs.words = (len(rs.atoms) + 63) / 64
	rs.stages[0] = rs.newPlan(0, rs.nMain)
	rs.stages[1] = rs.newPlan(rs.nMain, len(rs.atoms))
	return rs, nil
}

// atomFor returns the atom of (field, expr), adding it when new.
func (rs *RuleSet) atomFor(index map[[2]string]int32, field, expr string, re *regexp.Regexp) int32 {
	key := [2]string{field, expr}
	if id, ok := index[key]; ok {
		return id
	}
	id := int32(len(rs.atoms))
	index[key] = id
	rs.atoms = append(rs.atoms, newAtom(field, expr, re))
	return id
}

// inlineWords of scratch bits live on Match's stack: 256 atoms and 256
// literal atoms per group.
const inlineWords = 4

// Match sets matched[i] for every rule i the log matches (a rule counts a
// log once, however many of its fields match) and reports whether any did.
// matched must have len(rs.Rules) entries and be all false on entry.
func (rs *RuleSet) Match(fields []Field, matched []bool) bool {
	var buf [2 * inlineWords]uint64
	st := state{atoms: rs.atoms}
	if rs.words <= inlineWords && rs.candWords <= inlineWords {
		st.done, st.cand = buf[:rs.words], buf[inlineWords:inlineWords+rs.candWords]
	} else {
		p, _ := rs.pool.Get().(*[]uint64)
		if p == nil {
			s := make([]uint64, rs.words+rs.candWords)
			p = &s
		}
		defer rs.pool.Put(p)
		clear(*p)
		st.done, st.cand = (*p)[:rs.words], (*p)[rs.words:]
	}

	rs.stages[0].eval(fields, &st)
	any, conds := false, false
	for w, word := range st.done {
		for ; word != 0; word &= word - 1 {
			for _, i := range rs.mainRules[w*64+bits.TrailingZeros64(word)] {
				if r := rs.Rules[i]; len(r.and) > 0 || len(r.nor) > 0 {
					conds = true
				} else {
					matched[i], any = true, true
				}
			}
		}
	}
	if !conds {
		return any
	}
	rs.stages[1].eval(fields, &st)
	for _, i := range rs.condRules {
		if r := rs.Rules[i]; st.has(r.main) && st.all(r.and) && st.none(r.nor) {
			matched[i], any = true, true
		}
	}
	return any
}
