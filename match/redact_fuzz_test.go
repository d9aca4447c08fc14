// Fuzzing the default redactor: values built of secrets in every documented syntax between non-secret noise, checked for a surviving secret.
package match

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// fuzzSecret is the secret every template holds; the noise cannot spell it.
const fuzzSecret = "Zx9Qv"

// fuzzSecretKeys are sensitive keys in the spellings the redactor
// documents: any case, '-', '.' and '_', camelCase, joined lowercase.
var fuzzSecretKeys = []string{
	"password", "Password", "DB_PASSWORD", "passwd", "pwd", "x-auth-token", "accessToken", "api_key",
	"apikeyid", "secretkey", "tokenstring", "AccessKeySecret", "client.secret", "cookies", "signature",
	"private-key", "credential",
}

// fuzzTemplates place fuzzSecret (S) as the value of a sensitive key (K)
// in each syntax the redactor masks. In templates with a line break, I is
// the key line's indentation plus two blanks (the value is nested deeper),
// J the key line's indentation (a YAML sequence beside its key).
var fuzzTemplates = []string{
	"K=S", "K = S", "K: S", "K :S", "K\t=\tS", `"K":"S"`, `"K" : "S"`, `"K"=>"S"`, "K => S", "[K] => S",
	"'K': 'S'", `K := "S"`, "K:\nIS", "K:\r\nIS tail", "K: |\nIS\nIS", "K:\nS", `{"msg":"K:\n  S"}`,
	`"K":{"v":"S","n":[1,"}"]}`, `"K":["S",1]`, `"K": [ {"a":"S"} ]`, "<K>S</K>", `<K a="1">S</K>`,
	`{\"K\":\"S\"}`, `{\"K\":{\"v\":\"S\"}}`, "?K=S&x=1", "Authorization: Bearer S", "Authorization : Basic S",
	`"Authorization": "Bearer S"`, "bearer S", "https://user:S@host/", "Cookie: a=S; b=1", "K=Basic S",
	"K：S", "K：S，x", "`K`='S'", "'K': b'S'", `["K"]=> string(5) "S"`, "K:\nJ- S\nJ- S", "https://u:S@S@host/",
	"Authorization: Hawk S:S", `Authorization: Digest username="S", response="S"`,
}

// fuzzNoise holds no sensitive name, and no concatenation of it spells one.
var fuzzNoise = []string{
	"user", "alice", "status", "500", "x", "10:15:30", "a=>b", "k=v", "k: v", "k = v", "{", "}", "[", "]",
	"<", ">", "<b>", "</b>", `"`, "'", `\`, `\"`, "=", ":", "==", "!=", "|", "-", "://", "@", "/", "  ",
	"\t", "\n", `{"k":"v"}`, "<k>v</k>", "k:\n  v",
}

// fuzzSeparators end an unquoted value; one follows every piece.
var fuzzSeparators = []string{" ", "\n", ", ", "&", "; ", "\t"}

// buildRedactInput turns bytes into a value: each pair of bytes picks a
// template (with a key) or a noise fragment, and a separator after it. It
// reports how many templates the value holds.
func buildRedactInput(b []byte) (value string, secrets int) {
	r := &reader{b}
	var sb strings.Builder
	indent, inIndent := 0, true // the last line's indentation, kept as it is written so building stays linear
	write := func(piece string) {
		sb.WriteString(piece)
		for i := 0; i < len(piece); i++ {
			switch c := piece[i]; {
			case c == '\r' || c == '\n':
				indent, inIndent = 0, true
			case inIndent && (c == ' ' || c == '\t'):
				indent++
			default:
				inIndent = false
			}
		}
	}
	for len(r.b) > 0 {
		op := r.next()
		if op%3 == 0 {
			tmpl := fuzzTemplates[r.next()%len(fuzzTemplates)]
			key := fuzzSecretKeys[r.next()%len(fuzzSecretKeys)]
			t := strings.ReplaceAll(tmpl, "I", strings.Repeat(" ", indent+2))
			t = strings.ReplaceAll(t, "J", strings.Repeat(" ", indent))
			t = strings.ReplaceAll(strings.ReplaceAll(t, "S", fuzzSecret), "K", key) // keys hold S
			write(t)
			secrets++
		} else {
			write(fuzzNoise[r.next()%len(fuzzNoise)])
		}
		write(fuzzSeparators[op%len(fuzzSeparators)])
	}
	return sb.String(), secrets
}

// FuzzRedactMasksEverySecret checks that the default redactor leaves no
// secret visible in values mixing every documented syntax, that it never
// writes into the value, that a value without secrets comes back as it
// is, and that redacting again changes nothing. go test runs the seed
// corpus; go test -fuzz FuzzRedactMasksEverySecret runs it longer.
func FuzzRedactMasksEverySecret(f *testing.F) {
	for i := range fuzzTemplates { // each template alone, then after noise
		f.Add([]byte{0, byte(i), byte(i)})
		f.Add([]byte{1, byte(i), 3, byte(i), byte(i * 7)})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		b := make([]byte, rng.IntN(60))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f.Add(b)
	}
	r := DefaultRedactor()
	f.Fuzz(func(t *testing.T, b []byte) {
		value, secrets := buildRedactInput(b)
		v := []byte(value)
		got := r.Redact([]byte("msg"), v)
		if string(v) != value {
			t.Fatalf("Redact wrote into the value %q", value)
		}
		if bytes.Contains(got, []byte(fuzzSecret)) {
			t.Fatalf("a secret survived:\n value %q\n   got %q", value, got)
		}
		if secrets == 0 && !strings.Contains(value, "@") && string(got) != value {
			t.Fatalf("a value without secrets changed:\n value %q\n   got %q", value, got)
		}
		if again := r.Redact([]byte("msg"), got); !bytes.Equal(again, got) {
			t.Fatalf("redacting again changed the value:\n value %q\n  once %q\n twice %q", value, got, again)
		}
	})
}
