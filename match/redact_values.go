// Where a sensitive pair's secret ends: a quoted value, an object or array, an unquoted word, a header's line, an Authorization value after its scheme, a YAML block below the key.
package match

import (
	"bytes"
	"strings"
)

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

// spanKind tells how a secret's span was found.
type spanKind int

const (
	spanInline spanKind = iota // after the separator, on the key's line
	spanWord                   // the next line's first word, perhaps a key
	spanBlock                  // the lines below, indented deeper than the key's
)

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
