// Request signature checks: SLS V1 (HMAC-SHA1) and V4 (SLS4-HMAC-SHA256), as the SDKs sign.
package slsemu

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// AccessKey is a credential the emulator accepts.
type AccessKey struct {
	ID            string `yaml:"id"`
	Secret        string `yaml:"secret"`
	SecurityToken string `yaml:"security_token,omitempty"` // when set, requests must carry it (STS)
	// Expires, when set, is when the key stops working: requests signed
	// with it then get 401 Unauthorized "...has expired." (sls-api.md §3.3).
	Expires time.Time `yaml:"expires,omitempty"`
}

const maxClockSkew = 15 * time.Minute

// authenticate checks the request's signature against keys and returns the
// AccessKeyId used. body is the exact request body received.
func authenticate(r *http.Request, body []byte, keys map[string]AccessKey, now time.Time) (string, *APIError) {
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		return "", newAPIError(http.StatusUnauthorized, "Unauthorized", "missing Authorization header")
	case strings.HasPrefix(auth, "LOG "):
		return verifyV1(r, body, auth[len("LOG "):], keys, now)
	case strings.HasPrefix(auth, "SLS4-HMAC-SHA256 "):
		return verifyV4(r, auth[len("SLS4-HMAC-SHA256 "):], keys, now)
	default:
		return "", newAPIError(http.StatusUnauthorized, "Unauthorized", "unsupported Authorization scheme")
	}
}

func lookupKey(id string, r *http.Request, keys map[string]AccessKey, now time.Time) (AccessKey, *APIError) {
	key, ok := keys[id]
	if !ok {
		return key, newAPIError(http.StatusUnauthorized, "Unauthorized", "AccessKeyId not found: %s", id)
	}
	if key.SecurityToken != "" && r.Header.Get("x-acs-security-token") != key.SecurityToken {
		return key, newAPIError(http.StatusUnauthorized, "Unauthorized", "The security token you provided is invalid.")
	}
	if !key.Expires.IsZero() && !now.Before(key.Expires) {
		return key, newAPIError(http.StatusUnauthorized, "Unauthorized", "The security token you provided has expired.")
	}
	return key, nil
}

func verifyV1(r *http.Request, body []byte, credential string, keys map[string]AccessKey, now time.Time) (string, *APIError) {
	sep := strings.LastIndexByte(credential, ':')
	if sep < 0 {
		return "", newAPIError(http.StatusUnauthorized, "Unauthorized", "malformed Authorization header")
	}
	id, signature := credential[:sep], credential[sep+1:]
	key, apiErr := lookupKey(id, r, keys, now)
	if apiErr != nil {
		return id, apiErr
	}
	contentMD5 := r.Header.Get("Content-MD5")
	if contentMD5 != "" && !strings.EqualFold(contentMD5, fmt.Sprintf("%X", md5.Sum(body))) {
		return id, newAPIError(http.StatusBadRequest, "InvalidContentMD5", "Content-MD5 does not match the body")
	}
	// Python signs Date and then adds x-log-date with the same value.
	date := r.Header.Get("x-log-date")
	if date == "" {
		date = r.Header.Get("Date")
	}
	if date == "" {
		return id, newAPIError(http.StatusBadRequest, "MissingDate", "the Date header is required")
	}
	at, err := time.Parse(time.RFC1123, date)
	if err != nil {
		return id, newAPIError(http.StatusBadRequest, "InvalidDateFormat", "Date %q is not RFC 1123", date)
	}
	if skew := now.Sub(at); skew > maxClockSkew || skew < -maxClockSkew {
		return id, newAPIError(http.StatusBadRequest, "RequestTimeTooSkewed", "request time %s is more than 15 minutes from server time", date)
	}

	var logHeaders []string
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		if lower == "x-log-date" || !(strings.HasPrefix(lower, "x-log-") || strings.HasPrefix(lower, "x-acs-")) {
			continue
		}
		logHeaders = append(logHeaders, lower+":"+strings.TrimSpace(strings.Join(values, ",")))
	}
	sort.Strings(logHeaders)

	toSign := r.Method + "\n" + contentMD5 + "\n" + r.Header.Get("Content-Type") + "\n" + date + "\n" +
		strings.Join(logHeaders, "\n") + "\n" + canonicalResourceV1(r.URL)
	mac := hmac.New(sha1.New, []byte(key.Secret))
	mac.Write([]byte(toSign))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		return id, newAPIError(http.StatusUnauthorized, "SignatureNotMatch", "Signature %s is not matched.", signature)
	}
	return id, nil
}

// canonicalResourceV1 is the escaped path plus the query sorted by key with
// decoded values; repeated keys are concatenated as the Go SDK does.
func canonicalResourceV1(u *url.URL) string {
	resource := u.EscapedPath()
	if u.RawQuery == "" {
		return resource
	}
	values := u.Query()
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(resource)
	b.WriteByte('?')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		for _, v := range values[k] {
			b.WriteString(k + "=" + v)
		}
	}
	return b.String()
}

func verifyV4(r *http.Request, params string, keys map[string]AccessKey, now time.Time) (string, *APIError) {
	var credential, signature string
	for part := range strings.SplitSeq(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "Signature":
			signature = v
		}
	}
	scopeParts := strings.Split(credential, "/")
	if len(scopeParts) != 5 || signature == "" {
		return "", newAPIError(http.StatusUnauthorized, "Unauthorized", "malformed SLS4-HMAC-SHA256 Authorization header")
	}
	id, date, regionName := scopeParts[0], scopeParts[1], scopeParts[2]
	key, apiErr := lookupKey(id, r, keys, now)
	if apiErr != nil {
		return id, apiErr
	}
	dateTime := r.Header.Get("x-log-date")
	at, err := time.Parse("20060102T150405Z", dateTime)
	if err != nil {
		return id, newAPIError(http.StatusBadRequest, "InvalidDateFormat", "x-log-date %q is not YYYYMMDDTHHMMSSZ", dateTime)
	}
	if skew := now.Sub(at); skew > maxClockSkew || skew < -maxClockSkew {
		return id, newAPIError(http.StatusBadRequest, "RequestTimeTooSkewed", "request time %s is more than 15 minutes from server time", dateTime)
	}

	signed := map[string]string{"host": r.Host}
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-log-meta-") {
			continue
		}
		if strings.HasPrefix(lower, "x-log-") || strings.HasPrefix(lower, "x-acs-") || lower == "content-type" {
			signed[lower] = strings.Join(values, ",")
		}
	}
	names := make([]string, 0, len(signed))
	for k := range signed {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonicalHeaders strings.Builder
	for _, k := range names {
		canonicalHeaders.WriteString(k + ":" + signed[k] + "\n")
	}

	query := r.URL.Query()
	queryKeys := make([]string, 0, len(query))
	for k := range query {
		queryKeys = append(queryKeys, k)
	}
	sort.Strings(queryKeys)
	var canonicalQuery strings.Builder
	for i, k := range queryKeys {
		if i > 0 {
			canonicalQuery.WriteByte('&')
		}
		canonicalQuery.WriteString(k)
		if v := query.Get(k); v != "" {
			canonicalQuery.WriteString("=" + strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	payloadHash := r.Header.Get("x-log-content-sha256")

	canonicalRequest := r.Method + "\n" + r.URL.EscapedPath() + "\n" + canonicalQuery.String() + "\n" +
		canonicalHeaders.String() + "\n" + strings.Join(names, ";") + "\n" + payloadHash
	scope := date + "/" + regionName + "/sls/aliyun_v4_request"
	requestHash := sha256.Sum256([]byte(canonicalRequest))
	toSign := "SLS4-HMAC-SHA256\n" + dateTime + "\n" + scope + "\n" + hex.EncodeToString(requestHash[:])

	signingKey := hmacSHA256([]byte("aliyun_v4"+key.Secret), date)
	signingKey = hmacSHA256(signingKey, regionName)
	signingKey = hmacSHA256(signingKey, "sls")
	signingKey = hmacSHA256(signingKey, "aliyun_v4_request")
	want := hex.EncodeToString(hmacSHA256(signingKey, toSign))
	if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		return id, newAPIError(http.StatusUnauthorized, "SignatureNotMatch", "Signature %s is not matched.", signature)
	}
	return id, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}
