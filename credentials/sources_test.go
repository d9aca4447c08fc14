// Every type through credentials-go against the STS and metadata stand-ins: credentials obtained, renewed, and errors (including response bodies full of secrets) that show no secret.
package credentials

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/credemu"
)

var trustErr = credemu.TrustInProcess()

// Values no error or log line may show.
const (
	sourceSecret = "SourceSecret0123456789abcdefXYZ"
	sourceToken  = "SourceStsToken0123456789abcdefXYZ"
	oidcToken    = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwb2QifQ.Sig0123456789abcdefXYZ"
	leakySecret  = "LeakySecret0123456789abcdefXYZ"
	leakyToken   = "CAISLeakyToken0123456789abcdefXYZ"
)

// leakyBody is an error answer that echoes secrets, as no service should.
const leakyBody = `{"RequestId":"6894B13B-6D71-4EF5-88FA-F32781734A7F","Code":"InvalidParameter","Message":"AccessKeySecret=` + leakySecret +
	` SecurityToken=` + leakyToken + ` OIDCToken=` + oidcToken + `"}`

// logs captures the package's log lines.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func captureLogs(t *testing.T) *logs {
	l := &logs{}
	SetLogger(slog.New(slog.NewTextHandler(l, nil)))
	t.Cleanup(func() { SetLogger(nil) })
	return l
}

// assertNoSecrets fails when text shows any of the secrets.
func assertNoSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, sourceSecret, sourceToken, oidcToken, leakySecret, leakyToken, "Signature=") {
		if strings.Contains(text, s) {
			t.Errorf("%s shows %q: %s", what, s, text)
		}
	}
}

func startSTS(t *testing.T) *credemu.STS {
	t.Helper()
	if trustErr != nil {
		t.Fatal(trustErr)
	}
	s, err := credemu.StartSTS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AllowAccessKey("LTAIsource", sourceSecret)
	s.SetOIDCProvider("acs:ram::1:oidc-provider/ack")
	s.AcceptOIDCToken(oidcToken, true)
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func fast(p *Provider) *Provider {
	p.check, p.minBackoff, p.maxBackoff = 100*time.Millisecond, 100*time.Millisecond, 200*time.Millisecond
	return p
}

func TestRAMRoleARN(t *testing.T) {
	l := captureLogs(t)
	s := startSTS(t)
	r := config.Resolved{Type: config.TypeRAMRoleARN, AccessKeyID: "LTAIsource", AccessKeySecret: sourceSecret,
		RoleARN: "acs:ram::1:role/reader", RoleSessionName: "exporter", SessionDuration: time.Hour, STSEndpoint: s.Endpoint, Timeout: 5 * time.Second}
	c, err := New(r).GetCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if issued := s.Issued(); len(issued) != 1 || c.AccessKeyID != issued[0].AccessKeyID || c.SecurityToken != issued[0].SecurityToken || issued[0].SessionName != "exporter" {
		t.Fatalf("got %+v, issued %+v", c, issued)
	}

	// A failing STS whose body holds secrets: the error keeps the code.
	s.FailNext(credemu.Fault{Status: 400, Body: leakyBody})
	_, err = New(r).GetCredentials()
	if err == nil || err.Error() != "ram_role_arn acs:ram::1:role/reader: refresh session token failed: Code=InvalidParameter RequestId=6894B13B-6D71-4EF5-88FA-F32781734A7F (response body withheld)" {
		t.Errorf("failure: %v", err)
	}
	assertNoSecrets(t, "the error", err.Error())
	s.FailNext(credemu.Fault{Status: 502, Body: "<html>proxy error " + leakySecret + "</html>"})
	_, err = New(r).GetCredentials()
	if err == nil || !strings.Contains(err.Error(), "-byte response body withheld") {
		t.Errorf("non-JSON failure: %v", err)
	}
	assertNoSecrets(t, "the error", err.Error())

	// Unreachable STS: the request URL (whose query holds the signature and
	// the source's token) is not shown.
	r.SecurityToken = sourceToken
	r.STSEndpoint = "127.0.0.1:1"
	_, err = New(r).GetCredentials()
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "?<query withheld>") {
		t.Errorf("unreachable: %v", err)
	}
	assertNoSecrets(t, "the error", err.Error(), "AccessKeyId=LTAIsource")
	assertNoSecrets(t, "the log", l.String(), c.AccessKeySecret, c.SecurityToken)
}

func TestOIDCRoleARNRenews(t *testing.T) {
	l := captureLogs(t)
	s := startSTS(t)
	// Expiring 3 minutes and 2 seconds after issue: credentials-go renews
	// them (in their last 3 minutes) 2 seconds later.
	s.SetLifetime(182 * time.Second)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, oidcToken)
	r := config.Resolved{Type: config.TypeOIDCRoleARN, RoleARN: "acs:ram::1:role/rrsa", OIDCProviderARN: "acs:ram::1:oidc-provider/ack",
		OIDCTokenFile: tokenFile, RoleSessionName: "pod", SessionDuration: time.Hour, STSEndpoint: s.Endpoint, Timeout: 5 * time.Second}
	p := fast(New(r))
	first, err := p.GetCredentials()
	if err != nil {
		t.Fatal(err)
	}
	// ACK rotates the projected token: the next AssumeRoleWithOIDC must send the new one.
	s.AcceptOIDCToken(oidcToken, false)
	s.AcceptOIDCToken("rotated-oidc-token", true)
	writeFile(t, tokenFile, "rotated-oidc-token")
	deadline := time.Now().Add(6 * time.Second)
	for {
		c, err := p.GetCredentials()
		if err != nil {
			t.Fatal(err)
		}
		if c.AccessKeyID != first.AccessKeyID {
			if issued := s.Issued(); len(issued) != 2 || c.AccessKeyID != issued[1].AccessKeyID {
				t.Errorf("renewed to %s, issued %+v", c.AccessKeyID, issued)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not renewed within 6 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(l.String(), "Credentials refreshed") {
		t.Errorf("no refresh logged:\n%s", l)
	}

	// An answer that echoes the OIDC token.
	s.FailNext(credemu.Fault{Status: 400, Body: leakyBody})
	_, err = New(r).GetCredentials()
	if err == nil || !strings.Contains(err.Error(), "get session token failed: Code=InvalidParameter") {
		t.Errorf("failure: %v", err)
	}
	assertNoSecrets(t, "the error", err.Error(), "rotated-oidc-token")
	assertNoSecrets(t, "the log", l.String(), first.AccessKeySecret, first.SecurityToken, "rotated-oidc-token")
}

func TestECSRAMRole(t *testing.T) {
	l := captureLogs(t)
	m := credemu.StartMetadata("exporter-role")
	t.Cleanup(m.Close)
	m.SetLifetime(182*time.Second, 181*time.Second)
	r := config.Resolved{Type: config.TypeECSRAMRole, DisableIMDSv1: true, MetadataProxyURL: m.URL, Timeout: 4 * time.Second}
	p := fast(New(r))
	first, err := p.GetCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if m.Calls("role") != 1 || m.Calls("token") == 0 {
		t.Errorf("role discovered %d times, %d metadata tokens", m.Calls("role"), m.Calls("token"))
	}
	deadline := time.Now().Add(6 * time.Second)
	for c, _ := p.GetCredentials(); c.AccessKeyID == first.AccessKeyID; c, _ = p.GetCredentials() {
		if time.Now().After(deadline) {
			t.Fatal("not renewed within 6 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	m.FailNext(credemu.Fault{Status: 500, Body: leakyBody})
	_, err = New(config.Resolved{Type: config.TypeECSRAMRole, RoleName: "exporter-role", MetadataProxyURL: m.URL, Timeout: 4 * time.Second}).GetCredentials()
	if err == nil || err.Error() != "ecs_ram_role exporter-role: refresh Ecs sts token err, httpStatus: 500, message = Code=InvalidParameter RequestId=6894B13B-6D71-4EF5-88FA-F32781734A7F (response body withheld)" {
		t.Errorf("failure: %v", err)
	}
	assertNoSecrets(t, "the error", err.Error())
	assertNoSecrets(t, "the log", l.String(), first.AccessKeySecret, first.SecurityToken)
}

func TestSTSTokenFile(t *testing.T) {
	captureLogs(t)
	path := filepath.Join(t.TempDir(), "sts.json")
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	writeFile(t, path, `{"AccessKeyId":"STS.one","AccessKeySecret":"s1","SecurityToken":"t1","Expiration":"`+exp+`"}`)
	p := fast(New(config.Resolved{Type: config.TypeSTSTokenFile, TokenFile: path, Timeout: time.Second}))
	if c, err := p.GetCredentials(); err != nil || c.AccessKeyID != "STS.one" || c.SecurityToken != "t1" {
		t.Fatal(c, err)
	}
	// Half-written: the previous token stays.
	writeFile(t, path, `{"AccessKeyId":"STS.two","AccessKeySecret":"`+leakySecret)
	time.Sleep(300 * time.Millisecond)
	if c, err := p.GetCredentials(); err != nil || c.AccessKeyID != "STS.one" {
		t.Fatal(c, err)
	}
	var lastErr error
	waitUntil(t, 2*time.Second, "the half-written file's error", func() bool {
		p.GetCredentials()
		p.mu.Lock()
		defer p.mu.Unlock()
		lastErr = p.lastErr
		return lastErr != nil
	})
	if !strings.Contains(lastErr.Error(), "not valid JSON") {
		t.Errorf("half-written file: %v", lastErr)
	}
	assertNoSecrets(t, "the error", lastErr.Error())
	writeFile(t, path, `{"Credentials":{"AccessKeyId":"STS.two","AccessKeySecret":"s2","SecurityToken":"t2","Expiration":"`+exp+`"}}`)
	waitUntil(t, 2*time.Second, "STS.two", func() bool { c, _ := p.GetCredentials(); return c.AccessKeyID == "STS.two" && c.SecurityToken == "t2" })
}

func TestDefaultChain(t *testing.T) {
	captureLogs(t)
	for _, n := range []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
		"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_CREDENTIALS_URI",
		"ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_ECS_METADATA", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"} {
		t.Setenv(n, "")
	}
	t.Setenv("HOME", t.TempDir()) // no CLI or SDK profile
	s := startSTS(t)
	m := credemu.StartMetadata("chain-role")
	t.Cleanup(m.Close)
	r := config.Resolved{Type: config.TypeDefault, STSEndpoint: s.Endpoint, MetadataProxyURL: m.URL, Timeout: 4 * time.Second}

	// Nothing but the instance: its role.
	c, err := New(r).GetCredentials()
	if err != nil || len(m.Issued()) != 1 || c.AccessKeyID != m.Issued()[0].AccessKeyID {
		t.Fatalf("instance role: %+v %v", c, err)
	}
	// RRSA's variables come before it.
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, oidcToken)
	t.Setenv("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/rrsa")
	t.Setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/ack")
	t.Setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", tokenFile)
	c, err = New(r).GetCredentials()
	if err != nil || len(s.Issued()) != 1 || c.AccessKeyID != s.Issued()[0].AccessKeyID {
		t.Fatalf("oidc: %+v %v", c, err)
	}
	// An AccessKey in the environment comes first.
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", sourceSecret)
	if c, err = New(r).GetCredentials(); err != nil || c.AccessKeyID != "LTAIenv" {
		t.Fatalf("environment: %+v %v", c, err)
	}

	// Every link failing: each says why, and nothing secret.
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
	s.FailNext(credemu.Fault{Status: 400, Body: leakyBody})
	m.FailNext(credemu.Fault{Status: 500, Body: leakyBody})
	_, err = New(r).GetCredentials()
	if err == nil || !strings.Contains(err.Error(), "; oidc_role_arn: get session token failed: Code=InvalidParameter") ||
		!strings.Contains(err.Error(), "ecs_ram_role: refresh Ecs sts token err, httpStatus: 500") {
		t.Errorf("all failing: %v", err)
	}
	if err != nil {
		assertNoSecrets(t, "the error", err.Error())
	}
}

func TestSanitizeText(t *testing.T) {
	for in, want := range map[string]string{
		`get role name failed: Get "http://100.100.100.200/latest/meta-data/ram/security-credentials/": dial tcp 100.100.100.200:80: i/o timeout`: `get role name failed: Get "http://100.100.100.200/latest/meta-data/ram/security-credentials/": dial tcp 100.100.100.200:80: i/o timeout`,
		`Post "https://sts.aliyuncs.com?AccessKeyId=LTAI&Signature=abc&SecurityToken=tok": context deadline exceeded`:                             `Post "https://sts.aliyuncs.com?<query withheld>": context deadline exceeded`,
		`refresh RoleArn sts token err, json.Unmarshal fail: invalid character 'S' looking for beginning of value`:                                `refresh RoleArn sts token err, json.Unmarshal fail: invalid character looking for beginning of value`,
		`unmarshal aliyun cli config from '/root/.aliyun/config.json' failed: {"profiles":[{"access_key_secret":"x"}]}`:                           `unmarshal aliyun cli config from '/root/.aliyun/config.json' failed: (JSON response body withheld)`,
		`message = ` + leakySecret:                                        `message = (30-byte response body withheld)`,
		`strange error mentioning ` + leakySecret + ` !`:                  `strange error mentioning <withheld> !`,
		`open /tmp/TestSomething123/001/token: no such file or directory`: `open /tmp/TestSomething123/001/token: no such file or directory`,
	} {
		if got := sanitizeText(in, nil); got != want {
			t.Errorf("%s\n got: %s\nwant: %s", in, got, want)
		}
	}
	if got := sanitizeText("error with known short-ish secret s3cr3t", []string{"s3cr3t"}); got != "error with known short-ish secret <withheld>" {
		t.Errorf("known secret: %s", got)
	}
}
