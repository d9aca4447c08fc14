// Package credemu holds local stand-ins for Alibaba Cloud STS (AssumeRole, AssumeRoleWithOIDC) and the ECS instance metadata service, issuing temporary credentials whose expiry the test controls.
package credemu

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Issued is a set of temporary credentials a stand-in handed out.
type Issued struct {
	Action          string // AssumeRole, AssumeRoleWithOIDC or ECSMetadata
	RoleARN         string // or the instance role's name
	SessionName     string
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
	Expiration      time.Time // what the answer says (whole seconds)
}

// Fault is an answer a stand-in gives instead of the real one.
type Fault struct {
	Status int
	Body   string
}

// STS answers the RPC-style STS API the way credentials-go calls it: POST
// /?Action=…&Format=JSON&Version=2015-04-01 with the parameters in a form
// body, over HTTPS. AssumeRole must be signed (HMAC-SHA1, RPC signature
// version 1.0) by a known AccessKey; AssumeRoleWithOIDC must carry an OIDC
// token the stand-in accepts. Its methods are safe for concurrent use.
type STS struct {
	// Endpoint is host:port, for credentials-go's STS endpoint option.
	Endpoint string
	// URL is https://Endpoint/.
	URL string

	srv *httptest.Server

	mu              sync.Mutex
	accessKeys      map[string]string // AccessKeyId -> secret, allowed to AssumeRole
	externalIDs     map[string]string // role ARN -> the ExternalId it requires
	oidcProviderARN string
	oidcTokens      map[string]bool
	lifetime        time.Duration // 0: the DurationSeconds asked for
	faults          []Fault
	onIssue         func(Issued)
	issued          []Issued
	calls           map[string]int
	nonces          map[string]bool
	serial          int
}

// StartSTS serves an STS stand-in on a loopback port with a certificate of
// the stand-ins' CA (see TrustInProcess). Close it when done.
func StartSTS() (*STS, error) {
	cfg, err := serverTLS()
	if err != nil {
		return nil, err
	}
	s := &STS{
		accessKeys:  map[string]string{},
		externalIDs: map[string]string{},
		oidcTokens:  map[string]bool{},
		calls:       map[string]int{},
		nonces:      map[string]bool{},
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = cfg
	s.srv.StartTLS()
	s.URL = s.srv.URL + "/"
	s.Endpoint = strings.TrimPrefix(s.srv.URL, "https://")
	return s, nil
}

// Close stops the server.
func (s *STS) Close() { s.srv.Close() }

// AllowAccessKey lets an AccessKey call AssumeRole.
func (s *STS) AllowAccessKey(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessKeys[id] = secret
}

// RequireExternalID makes AssumeRole of a role require an ExternalId.
func (s *STS) RequireExternalID(roleARN, externalID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.externalIDs[roleARN] = externalID
}

// SetOIDCProvider sets the OIDC provider ARN AssumeRoleWithOIDC requires.
func (s *STS) SetOIDCProvider(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oidcProviderARN = arn
}

// AcceptOIDCToken makes an OIDC token valid (or no longer, with ok false).
func (s *STS) AcceptOIDCToken(token string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.oidcTokens[token] = true
	} else {
		delete(s.oidcTokens, token)
	}
}

// SetLifetime makes issued credentials expire this long after they are
// issued, whatever DurationSeconds asked (0: as asked).
func (s *STS) SetLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// FailNext makes the next calls answer with these faults, one each.
func (s *STS) FailNext(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// OnIssue calls fn with every set of credentials issued, before the answer
// is sent.
func (s *STS) OnIssue(fn func(Issued)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onIssue = fn
}

// Issued lists the credentials issued so far.
func (s *STS) Issued() []Issued {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Issued(nil), s.issued...)
}

// Calls counts the requests of an action (faulted ones included).
func (s *STS) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// stsError is STS's error answer.
func stsError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{
		"RequestId": newRequestID(), "HostId": "sts.aliyuncs.com", "Code": code, "Message": message,
		"Recommend": "https://api.aliyun.com/troubleshoot?q=" + code,
	})
}

func (s *STS) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		stsError(w, http.StatusMethodNotAllowed, "UnsupportedHTTPMethod", "use POST")
		return
	}
	query := r.URL.Query()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		stsError(w, http.StatusBadRequest, "InvalidParameter", "the body is not a form")
		return
	}
	action := query.Get("Action")
	s.mu.Lock()
	s.calls[action]++
	var fault *Fault
	if len(s.faults) > 0 {
		fault = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()
	if fault != nil {
		w.WriteHeader(fault.Status)
		io.WriteString(w, fault.Body)
		return
	}
	if query.Get("Format") != "JSON" || query.Get("Version") != "2015-04-01" {
		stsError(w, http.StatusBadRequest, "InvalidParameter", "Format must be JSON and Version 2015-04-01")
		return
	}
	roleARN, session := form.Get("RoleArn"), form.Get("RoleSessionName")
	if !strings.HasPrefix(roleARN, "acs:ram::") || !strings.Contains(roleARN, ":role/") {
		stsError(w, http.StatusBadRequest, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.")
		return
	}
	if len(session) < 2 || len(session) > 64 {
		stsError(w, http.StatusBadRequest, "InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly formed.")
		return
	}
	duration, err := strconv.Atoi(form.Get("DurationSeconds"))
	if err != nil || duration < 900 || duration > 43200 {
		stsError(w, http.StatusBadRequest, "InvalidParameter.DurationSeconds", "DurationSeconds must be 900 to 43200.")
		return
	}
	switch action {
	case "AssumeRole":
		if code, msg := s.checkSignature(r.Method, query, form); code != "" {
			status := http.StatusBadRequest
			if code == "InvalidAccessKeyId.NotFound" {
				status = http.StatusNotFound
			}
			stsError(w, status, code, msg)
			return
		}
		s.mu.Lock()
		want, needs := s.externalIDs[roleARN]
		s.mu.Unlock()
		if needs && subtle.ConstantTimeCompare([]byte(want), []byte(form.Get("ExternalId"))) != 1 {
			stsError(w, http.StatusForbidden, "NoPermission", "You are not authorized to do this action: the ExternalId does not match.")
			return
		}
	case "AssumeRoleWithOIDC":
		s.mu.Lock()
		providerOK := form.Get("OIDCProviderArn") == s.oidcProviderARN
		tokenOK := s.oidcTokens[form.Get("OIDCToken")]
		s.mu.Unlock()
		if !providerOK {
			stsError(w, http.StatusNotFound, "EntityNotExist.OIDCProvider", "The specified OIDC provider does not exist.")
			return
		}
		if !tokenOK {
			stsError(w, http.StatusBadRequest, "AuthenticationFail.OIDCToken.Invalid", "The OIDC token is invalid or expired.")
			return
		}
	default:
		stsError(w, http.StatusBadRequest, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
		return
	}

	s.mu.Lock()
	lifetime := s.lifetime
	if lifetime == 0 {
		lifetime = time.Duration(duration) * time.Second
	}
	s.serial++
	issued := Issued{
		Action: action, RoleARN: roleARN, SessionName: session,
		AccessKeyID:     fmt.Sprintf("STS.emu%04d%s", s.serial, randomHex(6)),
		AccessKeySecret: randomToken(30),
		SecurityToken:   "CAIS" + randomToken(120),
		Expiration:      time.Now().Add(lifetime).UTC().Truncate(time.Second),
	}
	s.issued = append(s.issued, issued)
	onIssue := s.onIssue
	s.mu.Unlock()
	if onIssue != nil {
		onIssue(issued)
	}
	roleName := roleARN[strings.LastIndex(roleARN, "/")+1:]
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{
		"RequestId": newRequestID(),
		"AssumedRoleUser": map[string]string{
			"Arn":           strings.Replace(roleARN, ":role/", ":assumed-role/", 1) + "/" + session,
			"AssumedRoleId": "3" + randomHex(8) + ":" + session,
		},
		"Credentials": map[string]string{
			"AccessKeyId":     issued.AccessKeyID,
			"AccessKeySecret": issued.AccessKeySecret,
			"SecurityToken":   issued.SecurityToken,
			"Expiration":      issued.Expiration.Format("2006-01-02T15:04:05Z"),
		},
		"SourceIdentity": roleName,
	})
}

// checkSignature verifies an RPC-style request signature (HMAC-SHA1,
// version 1.0) over the query and form parameters, and its timestamp and
// nonce. It returns an STS error code and message, or "" when it holds.
func (s *STS) checkSignature(method string, query, form url.Values) (string, string) {
	if query.Get("SignatureMethod") != "HMAC-SHA1" || query.Get("SignatureVersion") != "1.0" {
		return "InvalidParameter.SignatureMethod", "SignatureMethod must be HMAC-SHA1, version 1.0."
	}
	id := query.Get("AccessKeyId")
	s.mu.Lock()
	secret, ok := s.accessKeys[id]
	s.mu.Unlock()
	if !ok {
		return "InvalidAccessKeyId.NotFound", "Specified access key is not found."
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", query.Get("Timestamp"))
	if err != nil || time.Since(ts).Abs() > 15*time.Minute {
		return "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
	}
	params := map[string]string{}
	for k, v := range query {
		if k != "Signature" {
			params[k] = v[0]
		}
	}
	for k, v := range form {
		params[k] = v[0]
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = percentEncode(k) + "=" + percentEncode(params[k])
	}
	toSign := method + "&" + percentEncode("/") + "&" + percentEncode(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(toSign))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(query.Get("Signature"))) != 1 {
		return "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
	}
	nonce := query.Get("SignatureNonce")
	s.mu.Lock()
	defer s.mu.Unlock()
	if nonce == "" || s.nonces[nonce] {
		return "SignatureNonceUsed", "Specified signature nonce was used already."
	}
	s.nonces[nonce] = true
	return "", ""
}

// percentEncode is the RPC signature's encoding: RFC 3986 unreserved
// characters kept, everything else %XX.
func percentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomToken is n base64 characters, as STS secrets and tokens look.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)[:n]
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := strings.ToUpper(hex.EncodeToString(b))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
