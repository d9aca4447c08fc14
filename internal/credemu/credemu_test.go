// The stand-ins answer credentials-go itself: AssumeRole signed with a known AccessKey, AssumeRoleWithOIDC with an accepted token, and the ECS role through the metadata stand-in as proxy.
package credemu_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials/providers"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/credemu"
)

var trustErr = credemu.TrustInProcess()

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
	return s
}

func TestAssumeRole(t *testing.T) {
	s := startSTS(t)
	s.AllowAccessKey("LTAIsource", "source-secret")
	s.RequireExternalID("acs:ram::1:role/guarded", "ext-1")
	build := func(secret, role, externalID string) providers.CredentialsProvider {
		p, err := providers.NewRAMRoleARNCredentialsProviderBuilder().
			WithAccessKeyId("LTAIsource").WithAccessKeySecret(secret).
			WithRoleArn(role).WithRoleSessionName("test-session").WithExternalId(externalID).
			WithStsEndpoint(s.Endpoint).WithHttpOptions(&providers.HttpOptions{ConnectTimeout: 1000, ReadTimeout: 2000}).
			Build()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	creds, err := build("source-secret", "acs:ram::1:role/reader", "").GetCredentials()
	if err != nil {
		t.Fatal(err)
	}
	issued := s.Issued()
	if len(issued) != 1 || creds.AccessKeyId != issued[0].AccessKeyID || creds.AccessKeySecret != issued[0].AccessKeySecret ||
		creds.SecurityToken != issued[0].SecurityToken || issued[0].RoleARN != "acs:ram::1:role/reader" || issued[0].SessionName != "test-session" {
		t.Fatalf("credentials %+v, issued %+v", creds, issued)
	}
	if d := time.Until(issued[0].Expiration); d < 59*time.Minute || d > time.Hour {
		t.Errorf("expires in %s, want the hour asked for", d)
	}

	for name, c := range map[string]struct{ secret, role, ext, want string }{
		"wrong secret":          {"wrong", "acs:ram::1:role/reader", "", "SignatureDoesNotMatch"},
		"missing external id":   {"source-secret", "acs:ram::1:role/guarded", "", "NoPermission"},
		"wrong external id":     {"source-secret", "acs:ram::1:role/guarded", "ext-2", "NoPermission"},
		"malformed role":        {"source-secret", "role/reader", "", "InvalidParameter.RoleArn"},
		"external id satisfied": {"source-secret", "acs:ram::1:role/guarded", "ext-1", ""},
	} {
		_, err := build(c.secret, c.role, c.ext).GetCredentials()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), `"Code":"`+c.want+`"`)) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func TestAssumeRoleWithOIDC(t *testing.T) {
	s := startSTS(t)
	s.SetOIDCProvider("acs:ram::1:oidc-provider/ack")
	s.AcceptOIDCToken("token-1", true)
	s.SetLifetime(20 * time.Minute)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("token-1"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := providers.NewOIDCCredentialsProviderBuilder().
		WithRoleArn("acs:ram::1:role/rrsa").WithOIDCProviderARN("acs:ram::1:oidc-provider/ack").WithOIDCTokenFilePath(tokenFile).
		WithRoleSessionName("pod").WithSTSEndpoint(s.Endpoint).Build()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := p.GetCredentials()
	if err != nil {
		t.Fatal(err)
	}
	issued := s.Issued()
	if len(issued) != 1 || creds.AccessKeyId != issued[0].AccessKeyID || issued[0].Action != "AssumeRoleWithOIDC" {
		t.Fatalf("credentials %+v, issued %+v", creds, issued)
	}
	if d := time.Until(issued[0].Expiration); d < 19*time.Minute || d > 20*time.Minute {
		t.Errorf("expires in %s, want the lifetime set", d)
	}

	// A token the stand-in no longer accepts, then the provider ARN wrong.
	s.AcceptOIDCToken("token-1", false)
	p2, _ := providers.NewOIDCCredentialsProviderBuilder().
		WithRoleArn("acs:ram::1:role/rrsa").WithOIDCProviderARN("acs:ram::1:oidc-provider/ack").WithOIDCTokenFilePath(tokenFile).
		WithSTSEndpoint(s.Endpoint).Build()
	if _, err := p2.GetCredentials(); err == nil || !strings.Contains(err.Error(), "AuthenticationFail.OIDCToken.Invalid") {
		t.Errorf("revoked token: %v", err)
	}
	s.AcceptOIDCToken("token-1", true)
	p3, _ := providers.NewOIDCCredentialsProviderBuilder().
		WithRoleArn("acs:ram::1:role/rrsa").WithOIDCProviderARN("acs:ram::1:oidc-provider/other").WithOIDCTokenFilePath(tokenFile).
		WithSTSEndpoint(s.Endpoint).Build()
	if _, err := p3.GetCredentials(); err == nil || !strings.Contains(err.Error(), "EntityNotExist.OIDCProvider") {
		t.Errorf("unknown provider: %v", err)
	}
	if s.Calls("AssumeRoleWithOIDC") != 3 {
		t.Errorf("%d calls, want 3", s.Calls("AssumeRoleWithOIDC"))
	}
}

func TestFaultAnswers(t *testing.T) {
	s := startSTS(t)
	s.AllowAccessKey("LTAIsource", "source-secret")
	s.FailNext(credemu.Fault{Status: 503, Body: "unavailable"})
	p, _ := providers.NewRAMRoleARNCredentialsProviderBuilder().
		WithAccessKeyId("LTAIsource").WithAccessKeySecret("source-secret").WithRoleArn("acs:ram::1:role/r").
		WithStsEndpoint(s.Endpoint).Build()
	if _, err := p.GetCredentials(); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("fault: %v", err)
	}
	if _, err := p.GetCredentials(); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

func TestMetadataThroughProxy(t *testing.T) {
	m := credemu.StartMetadata("exporter-role")
	t.Cleanup(m.Close)
	m.RequireToken(true)
	// Credentials that credentials-go renews at once (it does in their last
	// 3 minutes) and the stand-in renews when asked in their last 181 s.
	m.SetLifetime(182*time.Second, 181*time.Second)
	p, err := providers.NewECSRAMRoleCredentialsProviderBuilder().
		WithDisableIMDSv1(true).
		WithHttpOptions(&providers.HttpOptions{Proxy: m.URL, ConnectTimeout: 1000, ReadTimeout: 1000}).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	first, err := p.GetCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if m.Calls("token") == 0 || m.Calls("role") != 1 || m.Calls("credentials") != 1 {
		t.Errorf("calls: token %d role %d credentials %d, want the IMDSv2 token, the role's name, its credentials",
			m.Calls("token"), m.Calls("role"), m.Calls("credentials"))
	}
	if issued := m.Issued(); len(issued) != 1 || first.AccessKeyId != issued[0].AccessKeyID || first.SecurityToken != issued[0].SecurityToken {
		t.Fatalf("credentials %+v, issued %+v", first, issued)
	}
	time.Sleep(2100 * time.Millisecond)
	second, err := p.GetCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessKeyId == first.AccessKeyId || len(m.Issued()) != 2 {
		t.Errorf("no renewal: %s then %s, %d issued", first.AccessKeyId, second.AccessKeyId, len(m.Issued()))
	}

	// A named role that is not the instance's.
	other, _ := providers.NewECSRAMRoleCredentialsProviderBuilder().WithRoleName("other").
		WithHttpOptions(&providers.HttpOptions{Proxy: m.URL, ConnectTimeout: 1000, ReadTimeout: 1000}).Build()
	if _, err := other.GetCredentials(); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("another role: %v", err)
	}
}

func TestMetadataForwardsNothing(t *testing.T) {
	m := credemu.StartMetadata("r")
	t.Cleanup(m.Close)
	proxy, _ := url.Parse(m.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://sts.aliyuncs.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a request for another host: %d, want 403", resp.StatusCode)
	}
	// Without a token when none is required (IMDSv1).
	resp, err = client.Get("http://" + credemu.MetadataHost + "/latest/meta-data/ram/security-credentials/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("IMDSv1 role name: %d", resp.StatusCode)
	}
}
