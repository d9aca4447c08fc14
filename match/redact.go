// Redaction: masking secrets in log values (by key, in key=value pairs inside values, bearer tokens, URL passwords, custom patterns) before a sample is shown.
package match

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
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

var (
	cookieName        = []byte("cookie")
	authorizationName = []byte("authorization")
)

// endsSecret reports whether an unquoted secret ends at v[e]: at what ends
// a value, or with wholeLine (a Cookie header's pairs are separated by
// "; ", an Authorization header's parameters by ", ") at the end of the
// line or a quote. A line break or quote written out in an escaped string
// (\n, \r, \t, \") ends it too.
func endsSecret(v []byte, e int, wholeLine bool) bool {
	c := v[e]
	if c == '\\' && e+1 < len(v) {
		switch v[e+1] {
		case 'n', 'r', 't', '"':
			return true
		}
	}
	if wholeLine {
		return c == '\n' || c == '\r' || c == '"'
	}
	if c == 0xEF && e+2 < len(v) && v[e+1] == 0xBC && (v[e+2] == 0x8C || v[e+2] == 0x9B) { // '，' '；'
		return true
	}
	return endsValue(c)
}

// looksLikeScheme: a known scheme, or a capitalised word of letters only
// (OSS, Hawk, SharedKey), which API keys and hex tokens are not.
func looksLikeScheme(word []byte) bool {
	if isAuthScheme(word) {
		return true
	}
	if len(word) > 20 || word[0] < 'A' || word[0] > 'Z' {
		return false
	}
	for _, c := range word {
		if !isLetter(c) {
			return false
		}
	}
	return true
}

// skipValuePrefix skips what may come before a quoted value: a Python
// string prefix (b'x', u"x", rb'x') or a PHP var_dump type (string(7) "x").
func skipValuePrefix(v []byte, j int) int {
	k := j
	for k < len(v) && k-j < 2 && strings.IndexByte("bBuUrRfF", v[k]) >= 0 {
		k++
	}
	if k > j && k < len(v) && (v[k] == '"' || v[k] == '\'') {
		return k
	}
	if bytes.HasPrefix(v[j:], []byte("string(")) {
		k = j + len("string(")
		for k < len(v) && v[k] >= '0' && v[k] <= '9' {
			k++
		}
		if k < len(v) && v[k] == ')' {
			k++
			for k < len(v) && isBlank(v[k]) {
				k++
			}
			if k < len(v) && v[k] == '"' {
				return k
			}
		}
	}
	return j
}

// skipQuoted returns the end of a quoted string ("x", or \"x\" in an
// escaped string) starting at v[i], or i when none starts there.
func skipQuoted(v []byte, i int) int {
	switch {
	case i < len(v) && v[i] == '"':
		if k := bytes.IndexByte(v[i+1:], '"'); k >= 0 {
			return i + 1 + k + 1
		}
	case i+1 < len(v) && v[i] == '\\' && v[i+1] == '"':
		if k := bytes.Index(v[i+2:], []byte(`\"`)); k >= 0 {
			return i + 2 + k + 2
		}
	}
	return i
}

// isHeaderLineKey reports whether an unquoted value of key runs to the end
// of its line: the key is a Cookie or Set-Cookie header (it ends in cookie
// or cookies), or holds authorization.
func isHeaderLineKey(key []byte) bool {
	if containsName(key, authorizationName) {
		return true
	}
	k := bytes.TrimSuffix(bytes.TrimSuffix(key, []byte("s")), []byte("S"))
	if len(k) < len(cookieName) {
		return false
	}
	tail := k[len(k)-len(cookieName):]
	return bytes.EqualFold(tail, cookieName)
}

// schemeEnd is where the credentials start after an Authorization scheme
// (Bearer, Basic, OSS, AWS4-HMAC-SHA256, …) at v[start:end]: after the
// scheme's word and the blanks that follow it, when more follows; else
// start.
func schemeEnd(v []byte, start, end int) int {
	w := start
	for w < end && w-start <= 32 && (isLetter(v[w]) || v[w] >= '0' && v[w] <= '9' || v[w] == '-') {
		w++
	}
	if w == start || w == end || !isBlank(v[w]) || !looksLikeScheme(v[start:w]) {
		return start
	}
	for w < end && isBlank(v[w]) {
		w++
	}
	if w == end {
		return start
	}
	return w
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

// maskPairs masks the values of sensitive key=value, key: value, key =>
// value and key := value pairs inside v.
func (r *Redactor) maskPairs(v []byte) []byte {
	var out []byte
	last := 0
	keyFloor := 0             // keys start here or later, not inside a masked span
	budget := 4*len(v) + 4096 // bytes hiddenPair may scan: linear time whatever v
	for i := 0; i < len(v); i++ {
		from, keyStart, keyEnd, escaped := pairAt(v, i, keyFloor)
		if from == 0 || keyStart < keyFloor || !r.SensitiveKey(v[keyStart:keyEnd]) {
			continue
		}
		start, end, kind := secretSpan(v, from, keyStart, v[keyStart:keyEnd], escaped)
		if end <= start || string(v[start:end]) == Mask {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(v)+len(Mask))
		}
		out = append(out, v[last:start]...)
		// The span may hide a sensitive key whose value runs past it
		// (Cookie: a=1; token="x", a quote left open over a line holding
		// password := "x"): that value is masked too, as part of the span
		// when it starts inside it, else as a span of its own.
		for scan := start; ; {
			i, s, e := r.hiddenPair(v, scan, start, end, &budget)
			if i < 0 {
				break
			}
			if scan = i + 1; s <= end {
				end = e
				continue
			}
			out = append(append(out, Mask...), v[end:s]...)
			start, end, scan, kind = s, e, s, spanInline
		}
		out = append(out, Mask...)
		// A word taken from the next line may be a key itself (secret:\n
		// password = x): its value is masked too.
		last, i, keyFloor = end, end-1, end
		if kind == spanWord {
			keyFloor = start
		}
	}
	if out == nil {
		return v
	}
	return append(out, v[last:]...)
}

// pairAt reads a pair whose separator starts at v[i]: from is where its
// value may start (0: there is no pair at i), v[keyStart:keyEnd] its key.
// The separator is '=', ':', "=>" or ":=", with blanks around it; the key
// bare, quoted ("password", \"password\" with escaped set) or in brackets
// ([password]). "==", "!=", "<=" and ">=" are comparisons, not pairs. A
// quoted key's opening quote is not looked for before floor (the end of
// what was masked).
func pairAt(v []byte, i, floor int) (from, keyStart, keyEnd int, escaped bool) {
	c, n := v[i], 1
	if c == 0xEF && i+2 < len(v) && v[i+1] == 0xBC && v[i+2] == 0x9A { // '：', the fullwidth colon of CJK text
		c, n = ':', 3
	}
	if c != '=' && c != ':' {
		return 0, 0, 0, false
	}
	from = i + n
	if c == '=' {
		if from < len(v) && v[from] == '=' || i > 0 && (v[i-1] == '=' || v[i-1] == '!' || v[i-1] == '<' || v[i-1] == '>') {
			return 0, 0, 0, false // token == nil, a != b
		}
		if from < len(v) && v[from] == '>' { // "password"=>"x"
			from++
		}
	} else if from < len(v) && v[from] == '=' { // password := "x"
		from++
	}
	keyEnd = i
	for keyEnd > 0 && isBlank(v[keyEnd-1]) { // password = x, "password" : "x"
		keyEnd--
	}
	if keyEnd > 0 && v[keyEnd-1] == ']' { // [password] => x
		keyEnd--
	}
	var quote byte
	if keyEnd > 0 && (v[keyEnd-1] == '"' || v[keyEnd-1] == '\'' || v[keyEnd-1] == '`') { // "password": or \"password\":
		keyEnd--
		quote = v[keyEnd]
		if keyEnd > 0 && v[keyEnd-1] == '\\' {
			keyEnd--
			escaped = true
		}
	}
	keyStart = keyEnd
	for keyStart > 0 && isKeyByte(v[keyStart-1]) {
		keyStart--
	}
	if quote != 0 && keyStart > 0 && isBlank(v[keyStart-1]) {
		// A quoted key may hold blanks ("API Key", "Secret Access Key"):
		// the whole of it, when its opening quote is near.
		for k := keyStart - 1; k >= floor && keyEnd-k <= 64 && (isKeyByte(v[k]) || isBlank(v[k]) || v[k] == quote); k-- {
			if v[k] == quote {
				keyStart = k + 1
				break
			}
		}
	}
	if keyStart == keyEnd {
		return 0, 0, 0, false
	}
	return from, keyStart, keyEnd, escaped
}

// hiddenPair finds, from scan on, the separator i of a sensitive key held
// in v[start:end] whose value v[s:e] ends past end; i is -1 if none. The
// values it measures are taken from *budget; once it is spent, the rest of
// v is the value (masked rather than measured).
func (r *Redactor) hiddenPair(v []byte, scan, start, end int, budget *int) (i, s, e int) {
	for i = scan; i < end && end < len(v); i++ {
		from, keyStart, keyEnd, escaped := pairAt(v, i, start)
		if from == 0 || keyStart < start || !r.SensitiveKey(v[keyStart:keyEnd]) {
			continue
		}
		if *budget < 0 {
			return i, start, len(v)
		}
		s, e, _ = secretSpan(v, from, keyStart, v[keyStart:keyEnd], escaped)
		*budget -= max(e, from) - i
		if e > end && e > s {
			return i, s, e
		}
		if s > 0 && (v[s-1] == '{' || v[s-1] == '[') && e < len(v) {
			i = max(i, e-1) // what a closed object or array holds ends inside it
		}
	}
	return -1, 0, 0
}

// spanKind tells how a secret's span was found.
type spanKind int

const (
	spanInline spanKind = iota // after the separator, on the key's line
	spanWord                   // the next line's first word, perhaps a key
	spanBlock                  // the lines below, indented deeper than the key's
)

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// lineBreak is the length of the line break at v[j]: a real one (\n, \r\n,
// \r) or, inside an escaped string, \n or \r written out; 0 if none.
func lineBreak(v []byte, j int) (n int, written bool) {
	switch {
	case j >= len(v):
		return 0, false
	case v[j] == '\r' && j+1 < len(v) && v[j+1] == '\n':
		return 2, false
	case v[j] == '\n' || v[j] == '\r':
		return 1, false
	case v[j] == '\\' && j+1 < len(v) && (v[j+1] == 'n' || v[j+1] == 'r'):
		return 2, true
	}
	return 0, false
}

// secretSpan is the part of v to mask for a sensitive key (starting at
// keyStart) whose separator ends at from: see valueSpan, or, when the
// separator (or a YAML block indicator after it) ends its line,
// belowSpan. escaped: the key was quoted as \"key\".
func secretSpan(v []byte, from, keyStart int, key []byte, escaped bool) (start, end int, kind spanKind) {
	j := from
	for j < len(v) && isBlank(v[j]) {
		j++
	}
	if j < len(v) && (v[j] == '|' || v[j] == '>') { // password: |  (a YAML block scalar)
		k := j + 1
		for k < len(v) && (v[k] == '-' || v[k] == '+' || v[k] >= '1' && v[k] <= '9') {
			k++
		}
		for k < len(v) && isBlank(v[k]) {
			k++
		}
		if n, _ := lineBreak(v, k); n > 0 {
			j = k
		}
	}
	if n, written := lineBreak(v, j); n > 0 {
		return belowSpan(v, j, keyStart, key, written, escaped)
	}
	start, end = valueSpan(v, j, key, escaped)
	return start, end, spanInline
}

// belowSpan is the secret of a key whose line ends at the line break at j:
// the block of lines below indented deeper than the key's line (a YAML
// nested value or block scalar), else the next value unless it is a bare
// word ending in ':' (the next key, with its own value). written: the line
// break is written out (\n in an escaped string), where only the next
// value is taken.
func belowSpan(v []byte, j, keyStart int, key []byte, written, escaped bool) (start, end int, kind spanKind) {
	k := j
	for k < len(v) {
		if n, _ := lineBreak(v, k); n > 0 {
			k += n
		} else if isBlank(v[k]) {
			k++
		} else if v[k] == '\\' && k+1 < len(v) && v[k+1] == 't' {
			k += 2
		} else {
			break
		}
	}
	if k == len(v) {
		return k, k, spanInline
	}
	if !written {
		keyIndent := indentAt(v, keyStart)
		// A YAML sequence may sit at its key's indentation (password:\n- a).
		seq := indentAt(v, k) == keyIndent && isSeqItem(v, k)
		if indentAt(v, k) > keyIndent || seq {
			end = k
			for e := k; e < len(v); {
				lineEnd := e
				for lineEnd < len(v) && v[lineEnd] != '\n' && v[lineEnd] != '\r' {
					lineEnd++
				}
				blank := true
				for _, c := range v[e:lineEnd] {
					blank = blank && isBlank(c)
				}
				if !blank {
					if in := indentAt(v, e); e > k && in <= keyIndent && !(seq && in == keyIndent && isSeqItem(v, e+in)) {
						break
					}
					end = lineEnd
				}
				e = lineEnd
				if n, _ := lineBreak(v, e); n > 0 {
					e += n
				} else {
					break
				}
			}
			return k, end, spanBlock
		}
	}
	start, end = valueSpan(v, k, key, escaped)
	if start != k {
		return start, end, spanWord
	}
	w := k
	for w < len(v) && !endsSecret(v, w, false) {
		w++
	}
	if w > k && v[w-1] == ':' {
		return k, k, spanInline // the next key, with its own value
	}
	return start, end, spanWord
}

// isSeqItem reports whether a YAML sequence item ("- ") starts at v[p].
func isSeqItem(v []byte, p int) bool {
	return p < len(v) && v[p] == '-' && (p+1 == len(v) || isBlank(v[p+1]) || v[p+1] == '\n' || v[p+1] == '\r')
}

// indentAt is the number of blanks that start the line holding v[i].
func indentAt(v []byte, i int) int {
	ls := i
	for ls > 0 && v[ls-1] != '\n' && v[ls-1] != '\r' {
		ls--
	}
	n := 0
	for ls+n < len(v) && isBlank(v[ls+n]) {
		n++
	}
	return n
}

// valueSpan is the secret of a sensitive key whose value starts at j: a
// quoted value's inside, an object's or array's inside ({***}), an unquoted
// token, the rest of the line after a Cookie key, the credentials after an
// Authorization scheme.
func valueSpan(v []byte, j int, key []byte, escaped bool) (start, end int) {
	wholeLine := isHeaderLineKey(key)
	auth := containsName(key, authorizationName)
	j = skipValuePrefix(v, j)
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
	case j < len(v) && (v[j] == '{' || v[j] == '['):
		return j + 1, closingBracket(v, j, escaped)
	default:
		start, end = j, j
		for end < len(v) && !endsSecret(v, end, wholeLine) {
			end++
			if auth && v[end-1] == '=' {
				end = skipQuoted(v, end) // Digest username="bob": that quote does not end it
			}
		}
		if auth {
			return schemeEnd(v, start, end), end // any scheme is kept
		}
		if wholeLine || end == start {
			return start, end
		}
		if isAuthScheme(v[start:end]) { // keep the scheme, mask what follows it
			k := end
			for k < len(v) && isBlank(v[k]) {
				k++
			}
			if k > end {
				e := k
				for e < len(v) && !endsSecret(v, e, false) {
					e++
				}
				if e > k {
					return k, e
				}
			}
		}
		return start, end
	}
	// Inside quotes: "Bearer xyz" keeps its scheme too, an Authorization
	// value any scheme.
	if auth {
		return schemeEnd(v, start, end), end
	}
	if !wholeLine {
		w := start
		for w < end && !isBlank(v[w]) {
			w++
		}
		if w < end && isAuthScheme(v[start:w]) {
			for w < end && isBlank(v[w]) {
				w++
			}
			if w < end {
				return w, end
			}
		}
	}
	return start, end
}

// closingBracket is the index of the bracket that closes the one at open,
// skipping quoted strings, or len(v) when it is not closed. escaped: the
// text is inside an escaped string, where \" is a quote and \\ a
// backslash, and a bare '"' ends the enclosing string (and the search).
func closingBracket(v []byte, open int, escaped bool) int {
	depth := 0
	var quote byte
	esc := false // inside a string, after a backslash
	for k := open; k < len(v); {
		c, n := v[k], 1
		if escaped {
			if c == '"' {
				return k
			}
			if c == '\\' && k+1 < len(v) {
				c, n = v[k+1], 2
				if c != '"' && c != '\\' {
					c = 'x' // \n, \t, \u…: an ordinary character
				}
			}
		}
		switch {
		case quote != 0:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == quote:
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return k
			}
		}
		k += n
	}
	return len(v)
}

// maskElements masks the content of XML elements whose name is sensitive:
// <password>x</password>, <AccessKeySecret>x</AccessKeySecret>, up to the
// closing tag, or the next '<' when there is none.
func (r *Redactor) maskElements(v []byte) []byte {
	var out []byte
	var closes map[string][]int // built once a sensitive element is found
	last := 0
	for i := bytes.IndexByte(v, '<'); i >= 0; {
		nameEnd := i + 1
		for nameEnd < len(v) && isNameByte(v[nameEnd]) {
			nameEnd++
		}
		name := v[i+1 : nameEnd]
		next := nameEnd
		if len(name) > 0 && isNameStart(name[0]) && r.SensitiveKey(name) {
			gt := bytes.IndexByte(v[nameEnd:], '>')
			if gt < 0 {
				break // no tag ends after this one
			}
			if v[nameEnd+gt-1] != '/' {
				if closes == nil {
					closes = r.closingTags(v)
				}
				start := nameEnd + gt + 1
				end := closingTag(v, start, closes[strings.ToLower(string(name))])
				if end > start && string(v[start:end]) != Mask {
					if out == nil {
						out = make([]byte, 0, len(v)+len(Mask))
					}
					out = append(out, v[last:start]...)
					out = append(out, Mask...)
					last = end
				}
				next = max(end, start)
			} else {
				next = nameEnd + gt + 1 // <password/>: nothing to mask
			}
		}
		k := bytes.IndexByte(v[min(next, len(v)):], '<')
		if k < 0 {
			break
		}
		i = next + k
	}
	if out == nil {
		return v
	}
	return append(out, v[last:]...)
}

// isNameStart, isNameByte: the bytes of an XML element's name.
func isNameStart(c byte) bool { return isLetter(c) || c == '_' }
func isNameByte(c byte) bool  { return isKeyByte(c) || c == ':' }

// closingTags indexes the closing tags of sensitive elements in v (</name>,
// blanks allowed before '>'): the ascending positions of their '<' by
// lowercase name.
func (r *Redactor) closingTags(v []byte) map[string][]int {
	closes := map[string][]int{}
	for k := 0; ; {
		o := bytes.Index(v[k:], []byte("</"))
		if o < 0 {
			return closes
		}
		p := k + o
		e := p + 2
		for e < len(v) && isNameByte(v[e]) {
			e++
		}
		name := v[p+2 : e]
		for e < len(v) && isBlank(v[e]) {
			e++
		}
		if len(name) > 0 && (e == len(v) || v[e] == '>') && r.SensitiveKey(name) {
			n := strings.ToLower(string(name))
			closes[n] = append(closes[n], p)
		}
		k = p + 2
	}
}

// closingTag is the first of closes (an element's closing tags) from start
// on, or else the index of the next '<', or len(v).
func closingTag(v []byte, start int, closes []int) int {
	if i := sort.SearchInts(closes, start); i < len(closes) {
		return closes[i]
	}
	if o := bytes.IndexByte(v[start:], '<'); o >= 0 {
		return start + o
	}
	return len(v)
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
