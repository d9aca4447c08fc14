// Evaluation plan: which atoms each field of a log is tried against, and trying them in one pass per value.
package match

import (
	"encoding/binary"
	"math/bits"
	"regexp"
	"regexp/syntax"
	"unsafe"
)

// state is one Match call's scratch: atoms found to match, and the
// candidates of the value being scanned.
type state struct {
	atoms []*atom
	done  []uint64
	cand  []uint64 // candidates of the current value, by group-local index
	found bool     // cand is not empty
}

func (st *state) has(id int32) bool { return st.done[id>>6]&(1<<(id&63)) != 0 }
func (st *state) set(id int32)      { st.done[id>>6] |= 1 << (id & 63) }

func (st *state) all(ids []int32) bool {
	for _, id := range ids {
		if !st.has(id) {
			return false
		}
	}
	return true
}

func (st *state) none(ids []int32) bool {
	for _, id := range ids {
		if st.has(id) {
			return false
		}
	}
	return true
}

// atom is one compiled (field, regex) with its cheapest exact-or-filter test.
type atom struct {
	field  string
	re     *regexp.Regexp
	lits   []lit     // required literals; none: tried on every value
	exact  bool      // a literal hit is a match
	anchor *anchored // prefix a value must start with; nil when not anchored
}

func newAtom(field, expr string, re *regexp.Regexp) *atom {
	a := &atom{field: field, re: re}
	tree, err := syntax.Parse(expr, syntax.Perl) // what regexp.Compile parsed
	if err != nil {
		return a
	}
	tree = tree.Simplify()
	if an, ok := planAnchored(tree); ok && (len(an.sets) > 0 || an.mode != anchorFilter) {
		a.anchor = &an
		if an.mode != anchorFilter {
			return a // the prefix alone decides
		}
	}
	if lp, ok := planLiterals(tree); ok {
		a.lits, a.exact = lp.lits, lp.exact
	}
	return a
}

// check decides whether v matches, once its literals (if any) were found.
func (a *atom) check(v []byte) bool {
	if a.anchor != nil {
		if !a.anchor.match(v) {
			return false
		}
		if a.anchor.mode != anchorFilter {
			return true
		}
	}
	return a.exact || a.re.Match(v)
}

// plan routes each field of a log to the group of atoms to try on it.
type plan struct {
	byLen    [][]namedGroup // by len(name): the groups of named fields
	fullText *group         // any other field; nil without full-text atoms
}

type namedGroup struct {
	name       string
	head, tail uint64 // first and last 8 (4 when shorter) bytes of name
	g          *group
}

func newNamedGroup(name string, g *group) namedGroup {
	e := namedGroup{name: name, g: g}
	b := []byte(name)
	switch n := len(b); {
	case n >= 8:
		e.head, e.tail = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	case n >= 4:
		e.head, e.tail = uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[n-4:]))
	}
	return e
}

// is reports whether key is the name: word compares instead of a memequal
// call, which matters at one lookup per field of every log.
func (e *namedGroup) is(key []byte) bool {
	switch n := len(key); {
	case n >= 8:
		return binary.LittleEndian.Uint64(key) == e.head && binary.LittleEndian.Uint64(key[n-8:]) == e.tail &&
			(n <= 16 || string(key[8:n-8]) == e.name[8:n-8])
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(key)) == e.head && uint64(binary.LittleEndian.Uint32(key[n-4:])) == e.tail
	}
	return string(key) == e.name
}

// newPlan groups atoms [from, to): one group per named field (its atoms
// plus the full-text ones, so each value is scanned once) and one for the
// other fields.
func (rs *RuleSet) newPlan(from, to int) plan {
	var p plan
	var fullText []int32
	byField := map[string][]int32{}
	var names []string
	for id := from; id < to; id++ {
		a := rs.atoms[id]
		if a.field == FullText {
			fullText = append(fullText, int32(id))
			continue
		}
		if _, ok := byField[a.field]; !ok {
			names = append(names, a.field)
		}
		byField[a.field] = append(byField[a.field], int32(id))
	}
	for _, name := range names {
		if len(name) >= len(p.byLen) {
			p.byLen = append(p.byLen, make([][]namedGroup, len(name)+1-len(p.byLen))...)
		}
		g := rs.newGroup(append(byField[name], fullText...))
		p.byLen[len(name)] = append(p.byLen[len(name)], newNamedGroup(name, g))
	}
	if len(fullText) > 0 {
		p.fullText = rs.newGroup(fullText)
	}
	return p
}

// eval tries the plan's atoms on every field of a log. The pair filter's
// loop is inlined here, the hottest code of all: a call per value would
// cost as much as scanning a short value.
func (p *plan) eval(fields []Field, st *state) {
	var g *group
	var v []byte
	hit := func(l int32) bool { g.hit(l, st); return true }
	for i := range fields {
		key := fields[i].Key
		g = p.fullText
		if n := len(key); n < len(p.byLen) {
			for k := range p.byLen[n] {
				if e := &p.byLen[n][k]; e.is(key) {
					g = e.g
					break
				}
			}
		}
		if g == nil {
			continue
		}
		v = fields[i].Value
		if s := g.search; s != nil && len(v) >= s.minLen {
			if s.one == nil && s.singles == nil {
				// Unchecked loads: j+1 < len(v) holds, and bounds checks
				// would be a third of the loop.
				pairs, step, base := s.pairs, s.stride, unsafe.Pointer(unsafe.SliceData(v))
				for j := 0; j < len(v)-1; j += step {
					w := uint16(*(*byte)(unsafe.Add(base, j))) | uint16(*(*byte)(unsafe.Add(base, j+1)))<<8
					if pairs[w>>6]&(1<<(w&63)) != 0 {
						s.confirm(v, j, hit)
					}
				}
			} else {
				s.scan(v, hit)
			}
			if st.found {
				g.verify(v, st)
			}
		}
		if len(g.direct) > 0 {
			g.evalDirect(v, st)
		}
	}
}

// group is the atoms tried on one field: those with literals through one
// searcher over all their literals, the others on every value.
type group struct {
	search *searcher
	owners [][]int32 // literal -> local indexes into ids of the atoms requiring it
	ids    []int32   // atoms with literals
	direct []int32   // atoms without
}

func (rs *RuleSet) newGroup(ids []int32) *group {
	g := &group{}
	var lits []lit
	litIndex := map[lit]int32{}
	for _, id := range ids {
		a := rs.atoms[id]
		if len(a.lits) == 0 {
			g.direct = append(g.direct, id)
			continue
		}
		local := int32(len(g.ids))
		g.ids = append(g.ids, id)
		for _, l := range a.lits {
			li, ok := litIndex[l]
			if !ok {
				li = int32(len(lits))
				litIndex[l] = li
				lits = append(lits, l)
				g.owners = append(g.owners, nil)
			}
			g.owners[li] = append(g.owners[li], local)
		}
	}
	if len(lits) > 0 {
		g.search = newSearcher(lits)
	}
	rs.candWords = max(rs.candWords, (len(g.ids)+63)/64)
	return g
}

// hit records that a value holds literal l: its exact atoms match, the
// others become candidates.
func (g *group) hit(l int32, st *state) {
	for _, j := range g.owners[l] {
		id := g.ids[j]
		if st.has(id) || st.cand[j>>6]&(1<<(j&63)) != 0 {
			continue
		}
		if a := st.atoms[id]; a.exact && a.anchor == nil {
			st.set(id)
			continue
		}
		st.cand[j>>6] |= 1 << (j & 63)
		st.found = true
	}
}

// verify runs the candidates' checks on the value, once each, and clears
// the candidates.
func (g *group) verify(v []byte, st *state) {
	for w := range st.cand {
		for word := st.cand[w]; word != 0; word &= word - 1 {
			id := g.ids[w*64+bits.TrailingZeros64(word)]
			if !st.has(id) && st.atoms[id].check(v) {
				st.set(id)
			}
		}
		st.cand[w] = 0
	}
	st.found = false
}

// evalDirect tries the atoms without literals.
func (g *group) evalDirect(v []byte, st *state) {
	for _, id := range g.direct {
		if !st.has(id) && st.atoms[id].check(v) {
			st.set(id)
		}
	}
}
