// Which keys are sensitive: a name contained in any case and spelling, a joined word or plural after it, unless the key only describes a secret.
package match

import (
	"bytes"
)

// normaliseKey lowercases ASCII and reads '-' and '.' as '_'.
func normaliseKey(k []byte) []byte {
	k = bytes.TrimSpace(k)
	out := make([]byte, len(k))
	for i, c := range k {
		out[i] = normaliseByte(c)
	}
	return out
}

func normaliseByte(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	case c == '-' || c == '.' || c == ' ':
		return '_'
	}
	return c
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

// SensitiveKey reports whether values of key are masked whole.
func (r *Redactor) SensitiveKey(key []byte) bool {
	for _, name := range r.names {
		if containsName(key, name) {
			return !r.defaults || !describesSecret(key)
		}
	}
	return false
}

// metaWords, as a key's last word, make it describe a secret rather than
// hold one: password_length, tokenCount, secret_name, token_expires_at.
var metaWords = []string{
	"count", "length", "len", "size", "type", "kind", "name", "names", "expired", "expires", "expiry",
	"expiration", "ttl", "at", "in", "valid", "validity", "algorithm", "alg", "provider", "enabled",
	"required", "reset", "usage", "limit", "used", "policy", "version", "format", "source", "status",
	"strength", "rotation", "days",
}

// tokenCountWords, before a last word "tokens", make a key count the tokens
// of a language model (prompt_tokens, max_new_tokens).
var tokenCountWords = []string{"prompt", "completion", "total", "max", "new", "input", "output", "cached", "reasoning", "num"}

// describesSecret reports whether key, of more than one word, ends in one
// of metaWords or counts tokens. Words are separated by '_', '-', '.',
// blanks, or start with a capital after a lowercase letter (camelCase).
func describesSecret(key []byte) bool {
	last, rest, ok := lastWord(key)
	if !ok {
		return false
	}
	for _, w := range metaWords {
		if bytes.EqualFold(last, []byte(w)) {
			return true
		}
	}
	if !bytes.EqualFold(last, []byte("tokens")) {
		return false
	}
	prev, _, _ := lastWord(rest)
	if len(prev) == 0 {
		prev = rest
	}
	for _, w := range tokenCountWords {
		if bytes.EqualFold(prev, []byte(w)) {
			return true
		}
	}
	return false
}

// lastWord splits key into its last word and what comes before it (its
// separator dropped); ok is false when key is a single word.
func lastWord(key []byte) (last, rest []byte, ok bool) {
	for i := len(key) - 1; i > 0; i-- {
		switch c := key[i]; {
		case c == '_' || c == '-' || c == '.' || isBlank(c):
			return key[i+1:], key[:i], i+1 < len(key)
		case c >= 'A' && c <= 'Z' && isLower(key[i-1]):
			return key[i:], key[:i], true
		}
	}
	return key, nil, false
}

// joinedWords may follow a name in a key written in lowercase without
// separators, as the camelCase key would (secretkey as secretKey,
// tokenstring, apikeyid, passwordhash); each may itself be followed by
// another or a plural 's' (secretkeyids).
var joinedWords = [][]byte{
	[]byte("key"), []byte("id"), []byte("string"), []byte("str"), []byte("value"), []byte("val"),
	[]byte("text"), []byte("data"), []byte("hash"), []byte("hex"), []byte("b64"), []byte("base64"),
	[]byte("bytes"), []byte("header"), []byte("secret"), []byte("token"), []byte("pair"),
}

// containsName reports whether key holds name (normalised) ending a word:
// not followed by a lowercase letter, a final plural 's' and joinedWords
// aside.
func containsName(key, name []byte) bool {
	for start := 0; start+len(name) <= len(key); start++ {
		j := 0
		for j < len(name) && normaliseByte(key[start+j]) == name[j] {
			j++
		}
		if j == len(name) && endsWord(key, start+len(name), 3) {
			return true
		}
	}
	return false
}

// endsWord reports whether a name ending at end of key ends a word: end is
// the end of key, or not a lowercase letter, or a final plural 's', or the
// start of one of joinedWords that ends a word in turn (up to depth deep).
func endsWord(key []byte, end, depth int) bool {
	if end == len(key) || !isLower(key[end]) {
		return true
	}
	if key[end] == 's' && (end+1 == len(key) || !isLower(key[end+1])) {
		return true
	}
	if depth == 0 {
		return false
	}
	for _, w := range joinedWords {
		if len(key)-end >= len(w) && w[0] == key[end] && bytes.Equal(key[end:end+len(w)], w) && endsWord(key, end+len(w), depth-1) {
			return true
		}
	}
	return false
}
