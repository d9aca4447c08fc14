// Spliced LZ4 blocks decode to exactly the concatenated groups, with Go's and the reference decoders' rules.
package slsemu

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"
)

// sampleGroups returns groups of varied shape: compressible text, random
// (incompressible) bytes, and tiny ones.
func sampleGroups(rng *rand.Rand, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		var b []byte
		switch rng.IntN(4) {
		case 0: // repetitive access-log text
			for j := 0; j < 1+rng.IntN(200); j++ {
				b = append(b, "status=200 method=GET path=/api/v1/orders/"...)
				b = strconv.AppendInt(b, int64(rng.IntN(100000)), 10)
			}
		case 1: // incompressible
			b = make([]byte, rng.IntN(3000))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		case 2: // tiny
			b = []byte("x=" + strconv.Itoa(rng.IntN(10)))
		default: // long runs
			b = bytes.Repeat([]byte{byte(rng.IntN(256))}, rng.IntN(70000))
		}
		out[i] = b
	}
	return out
}

func checkSplice(t *testing.T, raws [][]byte) {
	t.Helper()
	var groups []*storedGroup
	var want []byte
	for _, raw := range raws {
		g := newStoredGroup(raw, 1, time.Now())
		groups = append(groups, g)
		// newStoredGroup frames raw as a LogGroupList entry.
		framed := append([]byte{0x0a}, appendVarint(nil, uint64(len(raw)))...)
		want = append(want, append(framed, raw...)...)
	}
	block, rawLen := appendSplicedBlock(nil, groups)
	if rawLen != len(want) {
		t.Fatalf("raw length %d, want %d", rawLen, len(want))
	}
	if len(block) > spliceBound(groups) {
		t.Fatalf("block of %d bytes exceeds its bound %d", len(block), spliceBound(groups))
	}
	got := make([]byte, rawLen)
	n, err := lz4.UncompressBlock(block, got)
	if err != nil || n != rawLen || !bytes.Equal(got, want) {
		t.Fatalf("spliced block of %d groups does not decode: n=%d err=%v equal=%v", len(raws), n, err, bytes.Equal(got[:n], want))
	}
	checkReferenceDecoderRules(t, block, rawLen)
}

// checkReferenceDecoderRules applies the end-of-block rules that the
// reference LZ4_decompress_safe (used by python-lz4) enforces and Go's
// decoder does not: the last 5 bytes are literals and the last match starts
// at least 12 bytes before the end; a literal run reaching into the last 12
// bytes must end the block.
func checkReferenceDecoderRules(t *testing.T, block []byte, rawLen int) {
	t.Helper()
	pos, out := 0, 0
	for pos < len(block) {
		token := block[pos]
		pos++
		litLen, next, err := readLength(block, pos, int(token>>4))
		if err != nil {
			t.Fatal(err)
		}
		pos = next + litLen
		out += litLen
		if pos == len(block) {
			break
		}
		if out > rawLen-12 {
			t.Fatalf("a literal run ends %d bytes before the end but more sequences follow", rawLen-out)
		}
		matchLen, next, err := readLength(block, pos+2, int(token&0x0f))
		if err != nil {
			t.Fatal(err)
		}
		pos = next
		out += matchLen + 4
		if out > rawLen-5 {
			t.Fatalf("a match reaches into the last 5 bytes (ends %d before the end)", rawLen-out)
		}
	}
	if out != rawLen {
		t.Fatalf("walked %d output bytes, want %d", out, rawLen)
	}
}

func TestSplicedBlocksDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		raws := sampleGroups(rng, 1+rng.IntN(12))
		t.Run(strconv.Itoa(trial), func(t *testing.T) { checkSplice(t, raws) })
	}
}

func FuzzSplice(f *testing.F) {
	f.Add([]byte("status=500 status=500 status=500"), []byte{1, 2, 3}, []byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
	f.Add([]byte{}, []byte{}, []byte("x"))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		checkSplice(t, [][]byte{a, b, c})
		checkSplice(t, [][]byte{c, a})
	})
}

func TestRetentionDropsOldestGroups(t *testing.T) {
	sh := newShards(1, time.Now())[0]
	keep := Retention{MaxBytesPerShard: 10_000}
	raw := bytes.Repeat([]byte("y"), 1000)
	for range 50 {
		sh.append(newStoredGroup(raw, 1, time.Now()), keep)
	}
	groups, _, rawBytes := sh.stats()
	if rawBytes > 10_000 || groups != 9 { // each framed group is 1003 bytes
		t.Fatalf("kept %d groups, %d bytes; want 9 groups within 10000 bytes", groups, rawBytes)
	}
	begin, _ := sh.cursorAt("begin")
	if v, _ := decodeCursor(begin); v != sh.cursorBase+41 {
		t.Fatalf("begin cursor is index %d, want 41", v-sh.cursorBase)
	}
	// A cursor into the dropped range is no longer valid.
	if _, apiErr := sh.read(encodeCursor(sh.cursorBase+3), "", 10, 1<<20); apiErr == nil || apiErr.Code != "InvalidCursor" {
		t.Fatalf("reading a dropped cursor: %v, want InvalidCursor", apiErr)
	}

	old := newShards(1, time.Now())[0]
	keepAge := Retention{MaxAge: time.Minute}
	old.append(newStoredGroup(raw, 1, time.Now().Add(-2*time.Minute)), keepAge)
	old.append(newStoredGroup(raw, 1, time.Now()), keepAge)
	if groups, _, _ := old.stats(); groups != 1 {
		t.Fatalf("age retention kept %d groups, want 1", groups)
	}
}
