// Redaction: masking secrets in log values (by key, in key=value pairs inside values, bearer tokens, URL passwords, custom patterns) before a sample is shown.
package match

import (
	"bytes"
	"fmt"
	"regexp"
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
//   - inside any value, the value of a pair whose key is sensitive: key=value,
//     key: value, key => value, key := value, with blanks on either side of
//     the separator and the key bare, quoted ("password" : "x") or in
//     brackets ([password] => x). ?token=abc&x=1 becomes ?token=***&x=1,
//     "password":"x" becomes "password":"***", "token":{"v":"x"} becomes
//     "token":{***}. After an Authorization key a scheme such as Bearer or
//     Basic is kept and the credentials after it masked; after a Cookie key
//     everything up to the end of the line. When the separator ends its line
//     (password:\n  x, or a YAML block scalar key: |), the lines below that
//     are indented deeper than the key's are masked, or else the next word
//     unless it is itself a key (ends in ':');
//   - the content of an XML element whose name is sensitive
//     (<password>***</password>);
//   - the token after the word Bearer anywhere;
//   - the password of a URL (https://user:***@host).
//
// A key is sensitive when, compared case-insensitively with '-' and '.'
// read as '_', it contains one of the names and the name is followed by
// something other than a lowercase letter (x-auth-token, accessToken,
// DB_PASSWORD), by a final plural 's' (cookies), or, joined in lowercase, by
// one of joinedWords (secretkey, tokenstring, apikeyid): tokenizer and
// secretary are not sensitive.
type Redactor struct {
	names    [][]byte // normalised (lowercase, '_' for '-' and '.')
	defaults bool     // the bearer and URL-password rules
	patterns []redactPattern
}

type redactPattern struct {
	re   *regexp.Regexp
	repl []byte
}

// urlPasswordRE finds the password of a URL's userinfo; schemeSep, which
// it needs, is looked for first, as most values have no URL.
var urlPasswordRE = regexp.MustCompile(`(://[^/\s:@"']*):[^/\s"']+@`) // to the last '@' of the authority: p@ss@host

var schemeSep = []byte("://")

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
		out = r.maskElements(out) // first: a pair's value could swallow a start tag
		out = r.maskPairs(out)
	}
	if r.defaults {
		out = maskBearer(out)
		if bytes.Contains(out, schemeSep) && urlPasswordRE.Match(out) {
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
		for end < len(v) && !endsSecret(v, end, false) {
			end++
		}
		if end == j || string(v[j:end]) == Mask {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(v)+len(Mask))
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
