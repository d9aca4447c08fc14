// Errors made safe to log: response bodies, URL queries, known secrets and token-like strings removed from what credentials-go and the STS and metadata services say.
package credentials

import (
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// maxErrorLength caps an error's text.
const maxErrorLength = 1200

// sanitize makes a source's error safe to log, count and show: credentials-go
// puts response bodies (which may hold credentials) and request URLs (whose
// query holds a signature and maybe a token) into its errors.
func sanitize(desc string, err error, secrets []string, cur *value) error {
	if cur != nil {
		secrets = append(secrets, cur.creds.AccessKeySecret, cur.creds.SecurityToken)
	}
	var safe *safeError
	if errors.As(err, &safe) {
		// Sanitized already (the chain's links): only known secrets, again.
		text := err.Error()
		for _, secret := range secrets {
			if len(secret) >= 4 {
				text = strings.ReplaceAll(text, secret, "<withheld>")
			}
		}
		return errors.New(desc + ": " + text)
	}
	return errors.New(desc + ": " + sanitizeText(err.Error(), secrets))
}

// safeError is an error whose text was sanitized.
type safeError struct{ text string }

func (e *safeError) Error() string { return e.text }

var (
	// bodyMarkers precede a response body (or a file's content) in
	// credentials-go's errors.
	bodyMarkers = []string{"message = ", "failed: "}
	// transportPrefixes start the text of a transport error, which holds
	// no body.
	transportPrefixes = []string{`Get "`, `Post "`, `Put "`, `Head "`, "dial ", "read ", "write ", "context ",
		"EOF", "unexpected EOF", "net/http", "x509", "tls", "proxyconnect", "open ", "lookup "}
	queryRE       = regexp.MustCompile(`(https?://[^\s"'?]*)\?[^\s"'<][^\s"']*`)
	invalidCharRE = regexp.MustCompile(`invalid character '[^']{1,4}'`)
	tokenRE       = regexp.MustCompile(`[A-Za-z0-9+=_-]{20,}`)
	safeFieldRE   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,80}$`)
)

// sanitizeText strips from an error's text: response bodies (keeping an
// STS or metadata error's Code and RequestId), URL queries, the given
// secret values and anything that looks like a key or token.
func sanitizeText(s string, secrets []string) string {
	summary := "" // what is kept of a body: already safe
	for pos := 0; ; {
		i, marker := -1, ""
		for _, m := range bodyMarkers {
			if j := strings.Index(s[pos:], m); j >= 0 && (i < 0 || pos+j < i) {
				i, marker = pos+j, m
			}
		}
		if i < 0 {
			break
		}
		rest := s[i+len(marker):]
		if !isTransportError(rest) {
			s, summary = s[:i+len(marker)], summarizeBody(rest)
			break
		}
		pos = i + len(marker)
	}
	s = queryRE.ReplaceAllString(s, "$1?<query withheld>")
	s = invalidCharRE.ReplaceAllString(s, "invalid character")
	for _, secret := range secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "<withheld>")
		}
	}
	s = scrubTokens(s) + summary
	if len(s) > maxErrorLength {
		s = s[:maxErrorLength] + "…"
	}
	return s
}

// scrubTokens withholds what looks like a key or token, except in paths.
func scrubTokens(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range tokenRE.FindAllStringIndex(s, -1) {
		if !looksLikeToken(s[m[0]:m[1]]) || m[0] > 0 && s[m[0]-1] == '/' {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString("<withheld>")
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

func isTransportError(s string) bool {
	for _, p := range transportPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// summarizeBody keeps of a response body only the error Code and RequestId
// of a JSON answer.
func summarizeBody(body string) string {
	body = strings.TrimSpace(body)
	if body == "" {
		return "(empty response)"
	}
	var doc map[string]any
	if json.Unmarshal([]byte(body), &doc) == nil {
		var parts []string
		for _, k := range []string{"Code", "RequestId"} {
			if v, ok := doc[k].(string); ok && safeFieldRE.MatchString(v) && !looksLikeToken(v) {
				parts = append(parts, k+"="+v)
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, " ") + " (response body withheld)"
		}
		return "(JSON response body withheld)"
	}
	return "(" + strconv.Itoa(len(body)) + "-byte response body withheld)"
}

// looksLikeToken: long and mixing upper case, lower case and digits, as
// keys, secrets and tokens do (and names, paths and UUIDs do not).
func looksLikeToken(s string) bool {
	if len(s) < 20 {
		return false
	}
	var upper, lower, digit bool
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	return upper && lower && digit
}
