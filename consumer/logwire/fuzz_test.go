// Differential fuzz test: on any body the walker agrees with sls.LogsBytesDecode plus the consumer's flattening.
package logwire

import (
	"encoding/binary"
	"testing"
)

// FuzzWalkerMatchesSDK checks, for every input, that the Walker and the SDK
// (sls.LogsBytesDecode, then sdkBatch's flattening as restated in sdkAll):
//   - both fail, or neither does (the walker fails without panicking);
//   - when they succeed: the same number of logs, the same fields in the
//     same order with byte-equal keys and values, bit-equal times, and
//     Contents(ref) giving the log's contents again.
//
// Exceptions: none. The walker follows the gogo-generated code even where
// it is odd (field numbers truncated to int32, 10-byte varints with their
// excess bits dropped, field number 0 inside an unknown group).
//
// Each input is checked twice: as a body, and as a program for build,
// which writes well-framed nested messages that byte mutations of a body,
// breaking every enclosing length, seldom reach.
//
// Seeds: real bodies marshalled by the SDK, every hand-built case of
// walker_test.go, and the entries under testdata/fuzz.
func FuzzWalkerMatchesSDK(f *testing.F) {
	f.Add(accessBody(f, 1, 1, 1))
	f.Add(accessBody(f, 2, 2, 3))
	f.Add(accessBody(f, 3, 3, 2)[:100]) // truncated
	for _, c := range walkCases {
		f.Add(c.body)
	}
	for _, p := range programSeeds {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if d := diffSDK(in); d != "" {
			t.Fatalf("as a body: %s", d)
		}
		p := &program{in: in}
		body := p.message(0)
		if d := diffSDK(body); d != "" {
			t.Fatalf("as a program, body %x: %s", body, d)
		}
	})
}

// programSeeds are programs for build that write bodies with logs, which
// the fuzzer would not keep on its own: the body seeds already cover them.
var programSeeds = [][]byte{
	// list{group{log{Time 2, content{"ab" "c"}, TimeNs}, Topic "ab", tag{"a" "d"}}}
	{0x03, 0x03, 0x00, 0x02, 0x1b, 0x02, 0x02, 0x00, 0x01, 0x1a, 0x01, 0x02, 0x05,
		0x31, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x2a, 0x02, 0x00, 0x01,
		0x4b, 0x02, 0x01, 0x00, 0x1a, 0x01, 0x03, 0x05, 0x05},
	// The same with an unknown group (number 15) in the log and the group,
	// an unknown varint (7) in the content, and a second log.
	{0x03, 0x03, 0x66, 0x00, 0x04, 0x31, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x05, 0x00, 0x02,
		0x1b, 0x02, 0x02, 0x00, 0x01, 0x58, 0x02, 0x1a, 0x01, 0x02, 0x05, 0x05,
		0x03, 0x00, 0x04, 0x05, 0x66, 0x05, 0x4b, 0x02, 0x01, 0x00, 0x1a, 0x01, 0x03, 0x05, 0x05},
}

// program turns fuzz bytes into a protobuf body, one field per op.
type program struct {
	in []byte
	i  int
}

func (p *program) next() byte {
	if p.i >= len(p.in) {
		return 0
	}
	p.i++
	return p.in[p.i-1]
}

func (p *program) done() bool { return p.i >= len(p.in) }

// fieldNums are the schema's numbers, more likely drawn, and odd ones.
var fieldNums = []uint64{1, 1, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 15, 16, 0, 1 << 29, 1<<32 | 1, 1 << 31}

// message writes fields until the input ends or an end op; depth bounds
// the nesting.
func (p *program) message(depth int) []byte {
	var b []byte
	for !p.done() {
		op := p.next()
		num := fieldNums[int(op>>3)%len(fieldNums)]
		switch op & 7 {
		case 0: // varint: a small value, or a wide one
			v := uint64(p.next())
			if v&1 != 0 {
				v = v<<56 | uint64(p.next())<<28 | uint64(p.next())
			}
			b = append(append(b, key(num, wtVarint)...), uv(v)...)
		case 1: // fixed32, or fixed64
			wt, n := wtFixed32, 4
			if p.next()&1 != 0 {
				wt, n = wtFixed64, 8
			}
			b = append(b, key(num, wt)...)
			for range n {
				b = append(b, p.next())
			}
		case 2: // a short string
			s := make([]byte, p.next()%8)
			for j := range s {
				s[j] = 'a' + p.next()%4
			}
			b = append(b, ld(num, s)...)
		case 3, 4: // a nested message
			if depth < 5 {
				b = append(b, ld(num, p.message(depth+1))...)
			}
		case 5: // end of this message
			if depth > 0 {
				return b
			}
		case 6: // a group, of fields, or ended early
			if depth < 5 {
				b = append(append(append(b, key(num, wtStartGroup)...), p.message(depth+1)...), key(num, wtEndGroup)...)
			}
		case 7: // raw bytes: junk, or a wrong wire type such as 4, 6, 7
			b = binary.AppendUvarint(b, uint64(p.next())<<3|uint64(p.next()&7))
		}
	}
	return b
}
