// Hand-built edge cases: each states what the walker must produce and checks the SDK's decoder agrees.
package logwire

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

type walkCase struct {
	name    string
	body    []byte
	want    []string // rendered logs (flatLog.String); nil with wantErr
	wantErr bool
}

// group wraps LogGroup fields into a LogGroupList entry.
func group(fields ...[]byte) []byte { return ld(fLogGroups, fields...) }

var walkCases = []walkCase{
	{name: "empty body", body: nil, want: []string{}},
	{name: "empty group", body: group(), want: []string{}},
	{name: "two empty groups", body: cat(group(), group()), want: []string{}},
	{
		name: "group without logs",
		body: group(str(fTopic, "t"), ld(fLogTags, pairMsg("a", "b"))),
		want: []string{},
	},
	{
		name: "one log, SDK field order",
		body: group(ld(fLogs, logMsg(100, "k", "v")), str(fTopic, "top"), str(fSource, "src"), ld(fLogTags, pairMsg("host", "h1"))),
		want: []string{"100 k=v __topic__=top __source__=src __tag__:host=h1"},
	},
	{
		name: "tags, topic and source before the logs",
		body: group(ld(fLogTags, pairMsg("a", "1")), str(fSource, "src"), ld(fLogTags, pairMsg("b", "2")), str(fTopic, "top"),
			ld(fLogs, logMsg(1, "k", "v")), ld(fLogs, logMsg(2, "k2", "v2", "k3", "v3"))),
		want: []string{
			"1 k=v __topic__=top __source__=src __tag__:a=1 __tag__:b=2",
			"2 k2=v2 k3=v3 __topic__=top __source__=src __tag__:a=1 __tag__:b=2",
		},
	},
	{
		name: "metadata is per group",
		body: cat(
			group(ld(fLogs, logMsg(1, "k", "v")), str(fTopic, "t1"), ld(fLogTags, pairMsg("a", "1"))),
			group(ld(fLogs, logMsg(2, "k", "v"))),
			group(ld(fLogs, logMsg(3, "k", "v")), ld(fLogTags, pairMsg("longer-key", "x"))),
		),
		want: []string{"1 k=v __topic__=t1 __tag__:a=1", "2 k=v", "3 k=v __tag__:longer-key=x"},
	},
	{
		name: "duplicated Topic and Source: the last wins",
		body: group(str(fTopic, "first"), str(fSource, "s1"), ld(fLogs, logMsg(1, "k", "v")), str(fTopic, "second"), str(fSource, "s2")),
		want: []string{"1 k=v __topic__=second __source__=s2"},
	},
	{
		name: "duplicated Topic, the last empty: none",
		body: group(str(fTopic, "first"), ld(fLogs, logMsg(1, "k", "v")), str(fTopic, "")),
		want: []string{"1 k=v"},
	},
	{
		name: "empty Topic and Source are left out",
		body: group(ld(fLogs, logMsg(1, "k", "v")), str(fTopic, ""), str(fSource, "")),
		want: []string{"1 k=v"},
	},
	{
		name: "empty tag key and value, empty content key and value",
		body: group(ld(fLogs, logMsg(1, "", "")), ld(fLogTags, pairMsg("", ""))),
		want: []string{"1 = __tag__:="},
	},
	{
		name: "duplicated content key and value fields: the last wins",
		body: group(ld(fLogs, key(fTime, wtVarint), uv(1), ld(fContents, str(1, "k1"), str(2, "v1"), str(1, "k2"), str(2, "v2")))),
		want: []string{"1 k2=v2"},
	},
	{
		name: "content value before key",
		body: group(ld(fLogs, key(fTime, wtVarint), uv(1), ld(fContents, str(2, "v"), str(1, "k")))),
		want: []string{"1 k=v"},
	},
	{name: "log without contents", body: group(ld(fLogs, logMsg(7))), want: []string{"7"}},
	{
		name: "TimeNs present",
		body: group(ld(fLogs, logMsg(100, "k", "v"), fixed32(fTimeNs, 500_000_000))),
		want: []string{"100.5 k=v"},
	},
	{
		name: "TimeNs before Time, duplicated Time and TimeNs: the last wins",
		body: group(ld(fLogs, fixed32(fTimeNs, 1), key(fTime, wtVarint), uv(5), fixed32(fTimeNs, 250_000_000), key(fTime, wtVarint), uv(10))),
		want: []string{"10.25"},
	},
	{
		name: "TimeNs zero is still present",
		body: group(ld(fLogs, logMsg(3), fixed32(fTimeNs, 0))),
		want: []string{"3"},
	},
	{
		name: "Time wider than 32 bits keeps its low 32 bits",
		body: group(ld(fLogs, key(fTime, wtVarint), uv(1<<40|42))),
		want: []string{"42"},
	},
	{
		name: "Time as a 10-byte varint with junk in the last byte",
		body: group(ld(fLogs, key(fTime, wtVarint), []byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f})),
		want: []string{"1"},
	},
	{
		name: "Category and MachineUUID are read and ignored",
		body: group(str(fCategory, "c"), ld(fLogs, logMsg(1, "k", "v")), str(fMachine, "m")),
		want: []string{"1 k=v"},
	},
	{
		name: "unknown fields of every wire type at every level",
		body: cat(
			unknowns(9),
			group(unknowns(7), ld(fLogs, unknowns(3), logMsg(1), ld(fContents, unknowns(3), pairMsg("k", "v"), unknowns(4)), unknowns(5)),
				ld(fLogTags, unknowns(3), pairMsg("t", "x"), unknowns(100_000))),
			unknowns(2),
		),
		want: []string{"1 k=v __tag__:t=x"},
	},
	{
		name: "field number wraps to int32 as in gogo: 2^32+1 is LogGroups",
		body: cat(key(1<<32|1, wtBytes), uv(uint64(len(ld(fLogs, logMsg(4))))), ld(fLogs, logMsg(4))),
		want: []string{"4"},
	},
	{
		name: "unknown group holding a field number 0 and nested groups",
		body: cat(key(20, wtStartGroup), key(0, wtVarint), uv(1), key(21, wtStartGroup), key(22, wtEndGroup), key(23, wtEndGroup), group(ld(fLogs, logMsg(1)))),
		want: []string{"1"},
	},

	// Malformed input.
	{name: "missing Time", body: group(ld(fLogs, ld(fContents, pairMsg("k", "v")))), wantErr: true},
	{name: "missing Time, TimeNs only", body: group(ld(fLogs, fixed32(fTimeNs, 5))), wantErr: true},
	{name: "empty log", body: group(ld(fLogs)), wantErr: true},
	{name: "content without Value", body: group(ld(fLogs, logMsg(1), ld(fContents, str(1, "k")))), wantErr: true},
	{name: "content without Key", body: group(ld(fLogs, logMsg(1), ld(fContents, str(2, "v")))), wantErr: true},
	{name: "tag without Value", body: group(ld(fLogTags, str(1, "k"))), wantErr: true},
	{name: "tag without Key", body: group(ld(fLogTags, str(2, "v"))), wantErr: true},
	{name: "LogGroups as a varint", body: cat(key(fLogGroups, wtVarint), uv(1)), wantErr: true},
	{name: "Topic as a varint", body: group(key(fTopic, wtVarint), uv(1)), wantErr: true},
	{name: "Category as fixed32", body: group(fixed32(fCategory, 1)), wantErr: true},
	{name: "Time as fixed32", body: group(ld(fLogs, fixed32(fTime, 1))), wantErr: true},
	{name: "TimeNs as a varint", body: group(ld(fLogs, logMsg(1), key(fTimeNs, wtVarint), uv(1))), wantErr: true},
	{name: "Contents as a start group", body: group(ld(fLogs, logMsg(1), key(fContents, wtStartGroup), key(fContents, wtEndGroup))), wantErr: true},
	{name: "content Key as a varint", body: group(ld(fLogs, logMsg(1), ld(fContents, key(1, wtVarint), uv(0), str(2, "v")))), wantErr: true},
	{name: "end group at top level", body: key(9, wtEndGroup), wantErr: true},
	{name: "end group in a log", body: group(ld(fLogs, logMsg(1), key(9, wtEndGroup))), wantErr: true},
	{name: "wire type 6", body: key(9, 6), wantErr: true},
	{name: "wire type 7 in a tag", body: group(ld(fLogTags, pairMsg("k", "v"), key(9, 7))), wantErr: true},
	{name: "field number 0", body: cat(key(0, wtVarint), uv(1)), wantErr: true},
	{name: "field number negative as int32", body: cat(key(1<<31, wtVarint), uv(1)), wantErr: true},
	{name: "unterminated group", body: cat(key(20, wtStartGroup), key(21, wtVarint), uv(1)), wantErr: true},
	{name: "two groups opened, one closed", body: cat(key(20, wtStartGroup), key(21, wtStartGroup), key(21, wtEndGroup)), wantErr: true},
	{name: "truncated TimeNs", body: group(ld(fLogs, logMsg(1), key(fTimeNs, wtFixed32), []byte{1, 2, 3})), wantErr: true},
	{name: "truncated unknown fixed64", body: cat(key(9, wtFixed64), []byte{1, 2, 3, 4, 5, 6, 7}), wantErr: true},
	{name: "truncated unknown fixed32 in a group", body: cat(key(20, wtStartGroup), key(9, wtFixed32), []byte{1, 2}), wantErr: true},
	{name: "truncated varint", body: cat(key(9, wtVarint), []byte{0x80}), wantErr: true},
	{name: "truncated key", body: []byte{0x80}, wantErr: true},
	{name: "length past the end", body: cat(key(fLogGroups, wtBytes), uv(5), []byte{1}), wantErr: true},
	{name: "log length past its group", body: group(key(fLogs, wtBytes), uv(50), logMsg(1)), wantErr: true},
	{name: "negative length", body: cat(key(fLogGroups, wtBytes), uv(math.MaxUint64)), wantErr: true},
	{name: "negative length of an unknown field", body: cat(key(9, wtBytes), uv(1<<63)), wantErr: true},
	{name: "length overflowing the index", body: cat(key(9, wtVarint), uv(0), key(9, wtBytes), uv(math.MaxInt64)), wantErr: true},
	{name: "length overflowing inside a group", body: cat(key(20, wtStartGroup), key(9, wtBytes), uv(math.MaxInt64-1), key(20, wtEndGroup)), wantErr: true},
	{name: "11-byte varint", body: cat(key(9, wtVarint), []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), wantErr: true},
	{name: "11-byte key", body: []byte{0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, wantErr: true},
	{name: "11-byte Time", body: group(ld(fLogs, key(fTime, wtVarint), []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})), wantErr: true},
	{name: "LogGroups length overflowing the index", body: cat(key(fLogGroups, wtBytes), uv(math.MaxInt64)), wantErr: true},
	{name: "11-byte key inside a group", body: cat(key(20, wtStartGroup), []byte{0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), wantErr: true},
	{name: "malformed second group after a good one", body: cat(group(ld(fLogs, logMsg(1))), group(ld(fLogs))), wantErr: true},
}

// unknowns is one unknown field num of each wire type: varint, fixed64,
// bytes, fixed32, and a group holding one of each.
func unknowns(num uint64) []byte {
	flat := cat(key(num, wtVarint), uv(300), key(num, wtFixed64), make([]byte, 8), str(num, "junk"), fixed32(num, 7))
	return cat(flat, key(num, wtStartGroup), flat, key(num+1, wtStartGroup), key(num+1, wtEndGroup), key(num, wtEndGroup))
}

func TestWalkCases(t *testing.T) {
	for _, c := range walkCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := walkAll(new(Walker), c.body)
			if c.wantErr {
				if err == nil {
					t.Fatalf("no error; logs %q", render(got))
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("error %v does not match ErrMalformed", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if r := render(got); !slices.Equal(r, c.want) {
					t.Errorf("got  %q\nwant %q", r, c.want)
				}
			}
			if d := diffSDK(c.body); d != "" {
				t.Errorf("disagrees with the SDK: %s", d)
			}
		})
	}
}

// Every prefix of a real body, and every body with one byte changed to a
// few telling values: the walker fails exactly when the SDK does.
func TestTruncatedAndCorruptedBodies(t *testing.T) {
	body := accessBody(t, 3, 2, 3)
	for n := range len(body) {
		if d := diffSDK(body[:n]); d != "" {
			t.Fatalf("prefix of %d bytes: %s", n, d)
		}
	}
	mutated := make([]byte, len(body))
	for i := range body {
		for _, v := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff, body[i] ^ 0x07} {
			copy(mutated, body)
			mutated[i] = v
			if d := diffSDK(mutated); d != "" {
				t.Fatalf("byte %d set to %#x: %s", i, v, d)
			}
		}
	}
}

func TestAccessLogsMatchSDK(t *testing.T) {
	body := accessBody(t, 7, 5, 40)
	if d := diffSDK(body); d != "" {
		t.Fatal(d)
	}
	// Reusing a walker gives the same results.
	var w Walker
	first, err := walkAll(&w, body)
	if err != nil {
		t.Fatal(err)
	}
	second, err := walkAll(&w, body)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(render(first), render(second)) {
		t.Fatal("a second walk with the same Walker differs")
	}
	if len(first) != 200 || len(first[0].fields) != 7+4 {
		t.Fatalf("%d logs, %d fields in the first", len(first), len(first[0].fields))
	}
}

func TestFieldsAreCappedAndAliasBody(t *testing.T) {
	body := group(ld(fLogs, logMsg(1, "k", "value", "k2", "v2")), ld(fLogTags, pairMsg("a", "b")), str(fTopic, "t"))
	var w Walker
	_, err := w.Walk(body, func(_ LogRef, fields []match.Field, _ float64) {
		for _, f := range fields {
			if cap(f.Key) != len(f.Key) || cap(f.Value) != len(f.Value) {
				t.Errorf("%s=%s: capacity not capped", f.Key, f.Value)
			}
		}
		// A caller appending to a value must not overwrite the body.
		_ = append(fields[0].Value, "XXXX"...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSDK(body); d != "" {
		t.Fatal(d)
	}
}

func TestLogRefAndContents(t *testing.T) {
	body := cat(group(ld(fLogs, logMsg(1, "a", "1")), ld(fLogs, logMsg(2, "b", "2", "c", "3")), str(fTopic, "t")))
	var w Walker
	var refs []LogRef
	if _, err := w.Walk(body, func(ref LogRef, _ []match.Field, _ float64) { refs = append(refs, ref) }); err != nil {
		t.Fatal(err)
	}
	// Another walk in between does not invalidate a ref into the first body.
	if _, err := w.Walk(accessBody(t, 1, 1, 3), func(LogRef, []match.Field, float64) {}); err != nil {
		t.Fatal(err)
	}
	got := w.Contents(body, refs[1], []match.Field{{Key: []byte("x"), Value: []byte("y")}})
	if r := (flatLog{fields: got}).String(); r != "0 x=y b=2 c=3" {
		t.Errorf("Contents appended %q", r)
	}
	if want := logMsg(2, "b", "2", "c", "3"); string(body[refs[1].Start:refs[1].End]) != string(want) {
		t.Errorf("ref %+v does not frame the Log message", refs[1])
	}
	// A ref that does not fit the body leaves dst alone.
	for _, bad := range []LogRef{{-1, 3}, {3, 2}, {0, len(body) + 1}, {0, 1}} {
		if got := w.Contents(body, bad, nil); got != nil {
			t.Errorf("Contents(%+v) = %v", bad, got)
		}
	}
}

func TestWalkAllocatesNothing(t *testing.T) {
	body := accessBody(t, 1, 10, 50)
	var w Walker
	fields := 0
	fn := func(_ LogRef, f []match.Field, _ float64) { fields += len(f) }
	if _, err := w.Walk(body, fn); err != nil { // grows the buffers
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := w.Walk(body, fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per walk", allocs)
	}
	if fields == 0 {
		t.Fatal("no fields")
	}
}

// The fuzz test's program seeds do write logs, as they claim.
func TestProgramSeedsMakeLogs(t *testing.T) {
	for i, seed := range programSeeds {
		body := (&program{in: seed}).message(0)
		logs, err := walkAll(new(Walker), body)
		if err != nil || len(logs) == 0 {
			t.Errorf("seed %d: %d logs, %v; body %x", i, len(logs), err, body)
		}
		t.Logf("seed %d: %q", i, render(logs))
		if d := diffSDK(body); d != "" {
			t.Errorf("seed %d: %s", i, d)
		}
	}
}

// Lengths of three bytes or more leave the fast path for the general one.
func TestLongValues(t *testing.T) {
	long := strings.Repeat("x", 20_000)
	body := group(ld(fLogs, logMsg(1, "short", "v", "long", long, long, "v")), ld(fLogTags, pairMsg(long, "v")))
	logs, err := walkAll(new(Walker), body)
	if err != nil {
		t.Fatal(err)
	}
	want := "1 short=v long=" + long + " " + long + "=v __tag__:" + long + "=v"
	if len(logs) != 1 || logs[0].String() != want {
		t.Errorf("got %.80q...", render(logs))
	}
	if d := diffSDK(body); d != "" {
		t.Error(d)
	}
}
