// The plain-regexp reference matcher that the fuzz test and the benchmarks compare RuleSet with.
package match

import "regexp"

// refMatcher runs regexp.Match on every value a rule or condition can see,
// with no prefilter: the semantics RuleSet must reproduce exactly.
type refMatcher struct{ rules []refRule }

type refRule struct {
	main        refCond
	and, unless []refCond
}

type refCond struct {
	field string
	re    *regexp.Regexp
}

func newRefMatcher(specs []Spec) (*refMatcher, error) {
	m := &refMatcher{}
	cond := func(field, expr string) (refCond, error) {
		re, err := regexp.Compile(expr)
		return refCond{field, re}, err
	}
	for _, s := range specs {
		expr := s.Regex
		if s.CaseInsensitive {
			expr = "(?i)" + expr
		}
		main, err := cond(s.Field, expr)
		if err != nil {
			return nil, err
		}
		r := refRule{main: main}
		for _, c := range s.And {
			rc, err := cond(c.Field, c.Regex)
			if err != nil {
				return nil, err
			}
			r.and = append(r.and, rc)
		}
		for _, c := range s.Unless {
			rc, err := cond(c.Field, c.Regex)
			if err != nil {
				return nil, err
			}
			r.unless = append(r.unless, rc)
		}
		m.rules = append(m.rules, r)
	}
	return m, nil
}

// matches reports whether c's regex matches some value of its field.
func (c *refCond) matches(fields []Field) bool {
	for _, f := range fields {
		if (c.field == FullText || string(f.Key) == c.field) && c.re.Match(f.Value) {
			return true
		}
	}
	return false
}

// Match has RuleSet.Match's contract.
func (m *refMatcher) Match(fields []Field, matched []bool) bool {
	any := false
	for i := range m.rules {
		r := &m.rules[i]
		if !r.main.matches(fields) {
			continue
		}
		ok := true
		for j := range r.and {
			ok = ok && r.and[j].matches(fields)
		}
		for j := range r.unless {
			ok = ok && !r.unless[j].matches(fields)
		}
		if ok {
			matched[i], any = true, true
		}
	}
	return any
}
