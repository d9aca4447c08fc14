// Redaction: masking secrets in log values (by key, in key=value pairs inside values, bearer tokens, URL passwords, custom patterns) before a sample is shown.
package match

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Mask replaces a redacted value.
const Mask = "***"

// DefaultRedactKeys are the key names whose values are masked unless
// RedactOptions.DisableDefaults is set. A key is sensitive when it contains
// one of them (see Redactor), so x-auth-token, db_password, accessToken and
// ALIBABA_CLOUD_ACCESS_KEY_SECRET are too.
var DefaultRedactKeys = []string{
	"password", "passwd", "pwd", "token", "secret", "authorization",
	"cookie", "set-cookie", "api_key", "apikey", "access_key", "accesskey",
	"private_key", "privatekey", "credential", "signature",
}

// RedactOptions configures a Redactor.
type RedactOptions struct {
	// DisableDefaults drops DefaultRedactKeys, the bearer-token rule and
	// the URL-password rule; Keys and Patterns still apply.
	DisableDefaults bool
	// Keys are more sensitive key names, matched like the defaults.
	Keys []string
	// Patterns are applied to every value shown, after the key rules.
	Patterns []RedactPattern
}

// RedactPattern replaces every match of Regex in a value by Replacement
// (regexp.Expand syntax: $1 is the first group); an empty Replacement
// means Mask.
type RedactPattern struct {
	Regex       string
	Replacement string
}

// Redactor masks secrets in log values. It is immutable and safe for
// concurrent use.
//
// With the defaults it masks:
//   - the whole value of a field whose key is sensitive;
//   - inside any value, the value of a key=value or key: value pair whose key
//     is sensitive (?token=abc&x=1 becomes ?token=***&x=1, "password":"x"
//     becomes "password":"***"); after an Authorization key a scheme such
//     as Bearer or Basic is kept and the credentials after it masked; after
//     a Cookie key everything up to the end of the line;
//   - the token after the word Bearer anywhere;
//   - the password of a URL (https://user:***@host).
//
// A key is sensitive when, compared case-insensitively with '-' and '.'
// read as '_', it contains one of the names and the name is not followed by
// a lowercase letter other than a final plural 's': x-auth-token,
// accessToken, DB_PASSWORD and cookies are sensitive; tokenizer and
// secretary are not.
type Redactor struct {
	names    [][]byte // normalised (lowercase, '_' for '-' and '.')
	defaults bool     // the bearer and URL-password rules
	patterns []redactPattern
}

type redactPattern struct {
	re   *regexp.Regexp
	repl []byte
}

// urlPasswordRE finds the password of a URL's userinfo.
var urlPasswordRE = regexp.MustCompile(`(://[^/\s:@"']*):[^/\s@"']+@`)

// NewRedactor compiles opts; an error names the pattern whose regex is invalid.
func NewRedactor(opts RedactOptions) (*Redactor, error) {
	r := &Redactor{defaults: !opts.DisableDefaults}
	var names []string
	if r.defaults {
		names = append(names, DefaultRedactKeys...)
	}
	for _, k := range append(names, opts.Keys...) {
		if n := normaliseKey([]byte(k)); len(n) > 0 {
			r.names = append(r.names, n)
		}
	}
	for i, p := range opts.Patterns {
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return nil, fmt.Errorf("patterns[%d]: invalid regex %q: %w", i, p.Regex, err)
		}
		repl := p.Replacement
		if repl == "" {
			repl = Mask
		}
		r.patterns = append(r.patterns, redactPattern{re, []byte(repl)})
	}
	return r, nil
}

// defaultRedactor is DefaultRedactor's value, built once.
var defaultRedactor, _ = NewRedactor(RedactOptions{})

// DefaultRedactor masks with the defaults only.
func DefaultRedactor() *Redactor { return defaultRedactor }

// normaliseKey lowercases ASCII and reads '-' and '.' as '_'.
func normaliseKey(k []byte) []byte {
	out := make([]byte, len(k))
	for i, c := range k {
		out[i] = normaliseByte(c)
	}
	return []byte(strings.TrimSpace(string(out)))
}

func normaliseByte(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	case c == '-' || c == '.':
		return '_'
	}
	return c
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

// SensitiveKey reports whether values of key are masked whole.
func (r *Redactor) SensitiveKey(key []byte) bool {
	for _, name := range r.names {
		if containsName(key, name) {
			return true
		}
	}
	return false
}

// containsName reports whether key holds name (normalised) not followed by
// a lowercase letter, a final plural 's' aside.
func containsName(key, name []byte) bool {
	for start := 0; start+len(name) <= len(key); start++ {
		j := 0
		for j < len(name) && normaliseByte(key[start+j]) == name[j] {
			j++
		}
		if j < len(name) {
			continue
		}
		end := start + len(name)
		if end == len(key) || !isLower(key[end]) {
			return true
		}
		if key[end] == 's' && (end+1 == len(key) || !isLower(key[end+1])) {
			return true
		}
	}
	return false
}

// Redact returns value with its secrets masked. It returns value itself
// when nothing was masked, and never writes into it.
func (r *Redactor) Redact(key, value []byte) []byte {
	if r == nil {
		return value
	}
	if r.SensitiveKey(key) {
		if len(value) == 0 {
			return value
		}
		return []byte(Mask)
	}
	out := value
	if len(r.names) > 0 {
		out = r.maskPairs(out)
	}
	if r.defaults {
		out = maskBearer(out)
		if urlPasswordRE.Match(out) {
			out = urlPasswordRE.ReplaceAll(out, []byte("$1:"+Mask+"@"))
		}
	}
	for _, p := range r.patterns {
		if p.re.Match(out) {
			out = p.re.ReplaceAll(out, p.repl)
		}
	}
	return out
}

// isKeyByte: the bytes of a key inside a value (token=, "password":, x-api-key:).
func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// endsValue: the bytes that end an unquoted value inside a value.
func endsValue(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '&', ',', ';', '"', '\'', '}', ']', '>':
		return true
	}
	return false
}

var cookieName = []byte("cookie")

// endsSecret: what ends an unquoted secret; a Cookie header's runs to the
// end of its line, its pairs being separated by "; ".
func endsSecret(c byte, cookie bool) bool {
	if cookie {
		return c == '\n' || c == '\r' || c == '"'
	}
	return endsValue(c)
}

// authSchemes are kept in front of masked credentials (lowercase).
var authSchemes = [][]byte{[]byte("bearer"), []byte("basic"), []byte("digest"), []byte("negotiate"), []byte("ntlm"), []byte("token"), []byte("apikey"), []byte("log"), []byte("acs"), []byte("hmac"), []byte("aws4-hmac-sha256")}

func isAuthScheme(word []byte) bool {
	for _, s := range authSchemes {
		if bytes.EqualFold(word, s) {
			return true
		}
	}
	return false
}

// maskPairs masks the values of sensitive key=value and key: value pairs
// inside v.
func (r *Redactor) maskPairs(v []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != '=' && c != ':' {
			continue
		}
		keyEnd := i
		if keyEnd > 0 && (v[keyEnd-1] == '"' || v[keyEnd-1] == '\'') { // "password": or \"password\":
			keyEnd--
			if keyEnd > 0 && v[keyEnd-1] == '\\' {
				keyEnd--
			}
		}
		keyStart := keyEnd
		for keyStart > 0 && isKeyByte(v[keyStart-1]) {
			keyStart--
		}
		if keyStart == keyEnd || keyStart < last || !r.SensitiveKey(v[keyStart:keyEnd]) {
			continue
		}
		start, end := r.secretSpan(v, i+1, v[keyStart:keyEnd])
		if end <= start {
			continue
		}
		out = append(out, v[last:start]...)
		out = append(out, Mask...)
		last, i = end, end-1
	}
	if out == nil {
		return v
	}
	return append(out, v[last:]...)
}

// secretSpan is the part of v to mask for a sensitive key whose separator
// ends at from: a quoted value's inside, an unquoted token, the rest of the
// line after a Cookie key, the credentials after an Authorization scheme.
func (r *Redactor) secretSpan(v []byte, from int, key []byte) (start, end int) {
	j := from
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	cookie := containsName(key, cookieName)
	switch {
	case j+1 < len(v) && v[j] == '\\' && (v[j+1] == '"' || v[j+1] == '\''): // \"...\" inside an escaped string
		start = j + 2
		end = start
		for end < len(v) && !(v[end] == '\\' && end+1 < len(v) && v[end+1] == v[j+1]) {
			end++
		}
	case j < len(v) && (v[j] == '"' || v[j] == '\''):
		start = j + 1
		end = start
		for end < len(v) && v[end] != v[j] {
			if v[end] == '\\' {
				end++
			}
			end++
		}
		end = min(end, len(v))
	default:
		start, end = j, j
		for end < len(v) && !endsSecret(v[end], cookie) {
			end++
		}
		if cookie || end == start {
			return start, end
		}
		if isAuthScheme(v[start:end]) { // keep the scheme, mask what follows it
			k := end
			for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
				k++
			}
			if k > end {
				e := k
				for e < len(v) && !endsValue(v[e]) {
					e++
				}
				if e > k {
					return k, e
				}
			}
		}
		return start, end
	}
	// Inside quotes: "Bearer xyz" keeps its scheme too.
	if !cookie {
		w := start
		for w < end && v[w] != ' ' && v[w] != '\t' {
			w++
		}
		if w < end && isAuthScheme(v[start:w]) {
			for w < end && (v[w] == ' ' || v[w] == '\t') {
				w++
			}
			if w < end {
				return w, end
			}
		}
	}
	return start, end
}

// maskBearer masks the token after the word Bearer (any case, not inside a
// longer word).
func maskBearer(v []byte) []byte {
	var out []byte
	last := 0
	word := []byte("bearer")
	for i := 0; i+len(word) < len(v); i++ {
		if v[i] != 'b' && v[i] != 'B' || !bytes.EqualFold(v[i:i+len(word)], word) {
			continue
		}
		if i > 0 && isKeyByte(v[i-1]) {
			continue
		}
		j := i + len(word)
		if v[j] != ' ' && v[j] != '\t' {
			continue
		}
		for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
			j++
		}
		end := j
		for end < len(v) && !endsValue(v[end]) {
			end++
		}
		if end == j || string(v[j:end]) == Mask {
			continue
		}
		out = append(out, v[last:j]...)
		out = append(out, Mask...)
		last, i = end, end-1
	}
	if out == nil {
		return v
	}
	return append(out, v[last:]...)
}
