// The engine on every credentials type, against STS and metadata stand-ins whose credentials the emulator honours and then expires: exact counts, no failed call across rotations, no secret in the logs.
package consumer_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/credentials"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/credemu"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/testkit"
	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

// credTrustErr: the STS stand-in's CA is made a system root before any test
// can load the roots (credentials-go reaches STS over HTTPS only).
var credTrustErr = credemu.TrustInProcess()

const (
	// issuedLifetime is the Expiration the stand-ins announce: credentials-go
	// renews credentials in their last 3 minutes, so these are due for
	// renewal 3 s after they are issued.
	issuedLifetime = 183 * time.Second
	// honouredFor is how long after credentials-go's renewal point the
	// emulator keeps accepting replaced credentials: past it, a call signed
	// with them fails 401 Unauthorized "has expired" and is counted as an
	// error. The exporter checks its source every 5 s, so it must switch
	// within 3 + 5 s of issue; the old credentials die at 3 + 10 s.
	honouredFor = 10 * time.Second
)

// honour makes the emulator accept issued credentials until honouredFor
// after their renewal point.
func honour(t *testing.T, srv *slsemu.Server) func(credemu.Issued) {
	return func(i credemu.Issued) {
		if err := srv.AddAccessKey(slsemu.AccessKey{ID: i.AccessKeyID, Secret: i.AccessKeySecret, SecurityToken: i.SecurityToken,
			Expires: i.Expiration.Add(-180*time.Second + honouredFor)}); err != nil {
			t.Error(err)
		}
	}
}

// credentialsEnv clears every variable credentials may come from, and
// points HOME at an empty directory (no CLI or SDK profile).
func credentialsEnv(t *testing.T) {
	for _, n := range []string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN", "SLS_AK_ID", "SLS_AK_KEY",
		"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_ROLE_SESSION_NAME",
		"ALIBABA_CLOUD_ECS_METADATA", "ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_CREDENTIALS_FILE",
	} {
		t.Setenv(n, "")
	}
	t.Setenv("HOME", t.TempDir())
}

// credentialLogs captures the credentials package's log lines.
func credentialLogs(t *testing.T) *testkit.SyncBuffer {
	buf := &testkit.SyncBuffer{}
	credentials.SetLogger(slog.New(slog.NewTextHandler(buf, nil)))
	t.Cleanup(func() { credentials.SetLogger(nil) })
	return buf
}

// withCredentials is the seed configuration with another credentials block.
func withCredentials(t *testing.T, srv *slsemu.Server, block string) string {
	t.Helper()
	yamlText := seedConfigYAML(srv.URL, threeRules)
	static := fmt.Sprintf("credentials:\n  access_key_id: %s\n  access_key_secret: %s\n", testAK, testSecret)
	if !strings.Contains(yamlText, static) {
		t.Fatalf("the seed config's credentials block changed:\n%s", yamlText)
	}
	return strings.Replace(yamlText, static, block, 1)
}

// rotationRun consumes the seed topology with the configured credentials,
// writing a round of logs into every shard until done says the rotation
// under test has happened and its replaced credentials are dead, then one
// round more. Every log is counted exactly once, and no SLS call fails.
func rotationRun(t *testing.T, srv *slsemu.Server, cfgYAML string, done func() bool, secrets func() []string) {
	t.Helper()
	if credTrustErr != nil {
		t.Fatal(credTrustErr)
	}
	logs := credentialLogs(t)
	e := startExporter(t, mustParse(t, cfgYAML))
	defer func() {
		if t.Failed() {
			t.Logf("engine log:\n%s\ncredentials log:\n%s", e.logs, logs)
		}
	}()
	writers := map[string]*writer{}
	for _, s := range seedTopology {
		writers[s.endpoint] = newWriter(t, srv, s.endpoint)
	}
	written, fives := map[string]int{}, map[string]int{}
	round := func(i int) {
		for _, s := range seedTopology {
			for shard := range 2 {
				writers[s.endpoint].put(s.project, s.logstore, shard,
					newLog(time.Now(), "status", "500", "path", fmt.Sprintf("/round-%d", i)), newLog(time.Now(), "status", "200"))
				written[s.logstore] += 2
				fives[s.logstore]++
			}
		}
		for _, s := range seedTopology {
			waitFor(t, 15*time.Second, fmt.Sprintf("round %d in %s", i, s.logstore), func() bool {
				return e.sum(t, "sls_consumer_logs_total", "logstore", s.logstore) == float64(written[s.logstore])
			})
		}
	}
	start := time.Now()
	rounds := 0
	for i := 0; ; i++ {
		round(i)
		rounds = i + 2
		if errs := e.series(t, "sls_consumer_errors_total"); len(errs) > 0 {
			t.Fatalf("after round %d (%s): failed calls %v", i, time.Since(start).Round(time.Millisecond), errs)
		}
		if done() {
			round(i + 1)
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatal("the rotation did not happen within 60 s")
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // heartbeats and idle polls after the last round
	if errs := e.series(t, "sls_consumer_errors_total"); len(errs) > 0 {
		t.Errorf("failed calls: %v", errs)
	}
	for _, s := range seedTopology {
		if got := e.sum(t, "sls_consumer_logs_total", "logstore", s.logstore); got != float64(written[s.logstore]) {
			t.Errorf("%s: %v logs counted, want %d", s.logstore, got, written[s.logstore])
		}
		if got := e.sum(t, "sls_keyword_matches_total", "logstore", s.logstore, "rule", "http_5xx"); got != float64(fives[s.logstore]) {
			t.Errorf("%s: %v 5xx counted, want %d", s.logstore, got, fives[s.logstore])
		}
	}
	t.Logf("%d rounds in %s", rounds, time.Since(start).Round(time.Millisecond))
	for _, secret := range secrets() {
		for what, text := range map[string]string{"engine log": e.logs.String(), "credentials log": logs.String()} {
			if len(secret) >= 4 && strings.Contains(text, secret) {
				t.Errorf("the %s shows a secret", what)
			}
		}
	}
}

// replacedAndDead: at least two sets issued, and the first one's honoured
// time is over (it now fails), so the engine runs on its successor.
func replacedAndDead(issued func() []credemu.Issued) func() bool {
	return func() bool {
		list := issued()
		return len(list) >= 2 && time.Now().After(list[0].Expiration.Add(-180*time.Second+honouredFor).Add(500*time.Millisecond))
	}
}

func issuedSecrets(issued func() []credemu.Issued, more ...string) func() []string {
	return func() []string {
		out := append([]string(nil), more...)
		for _, i := range issued() {
			out = append(out, i.AccessKeySecret, i.SecurityToken)
		}
		return out
	}
}

func startCredSTS(t *testing.T, srv *slsemu.Server) *credemu.STS {
	t.Helper()
	if credTrustErr != nil {
		t.Fatal(credTrustErr)
	}
	sts, err := credemu.StartSTS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sts.Close)
	sts.SetLifetime(issuedLifetime)
	sts.OnIssue(honour(t, srv))
	return sts
}

// type access_key, with an STS token: fixed credentials, nothing to rotate.
func TestCredentialsAccessKeyWithToken(t *testing.T) {
	credentialsEnv(t)
	world := seedWorld()
	world.AccessKeys = append(world.AccessKeys, slsemu.AccessKey{ID: "STS.fixed", Secret: "fixed-secret-value", SecurityToken: "fixed-token-value"})
	srv := startEmulator(t, world)
	cfg := withCredentials(t, srv, "credentials:\n  type: access_key\n  access_key_id: STS.fixed\n  access_key_secret: fixed-secret-value\n  security_token: fixed-token-value\n")
	rounds := 0
	rotationRun(t, srv, cfg, func() bool { rounds++; return rounds >= 2 }, func() []string { return []string{"fixed-secret-value", "fixed-token-value"} })
}

// sts_token_file: rewriting the file switches to the new token before the
// old one expires.
func TestCredentialsSTSTokenFileRotation(t *testing.T) {
	credentialsEnv(t)
	srv := startEmulator(t, seedWorld())
	path := filepath.Join(t.TempDir(), "sts.json")
	write := func(id, secret, token string, expires time.Time) {
		if err := srv.AddAccessKey(slsemu.AccessKey{ID: id, Secret: secret, SecurityToken: token, Expires: expires}); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(`{"AccessKeyId": %q, "AccessKeySecret": %q, "SecurityToken": %q, "Expiration": %q}`, id, secret, token, expires.UTC().Format(time.RFC3339))
		if err := os.WriteFile(path+".tmp", []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil { // as a rotator should: never half a file
			t.Fatal(err)
		}
	}
	// The first token dies 8 s after the file is rewritten: the exporter
	// looks at the file every 5 s.
	write("STS.file1", "file-secret-1", "file-token-1", time.Now().Add(time.Hour))
	cfg := withCredentials(t, srv, "credentials:\n  type: sts_token_file\n  token_file: "+path+"\n")
	var mu sync.Mutex
	var firstDies time.Time
	rotationRun(t, srv, cfg, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if firstDies.IsZero() {
			firstDies = time.Now().Add(8 * time.Second)
			write("STS.file1", "file-secret-1", "file-token-1", firstDies) // the emulator's expiry moves in
			write("STS.file2", "file-secret-2", "file-token-2", time.Now().Add(time.Hour))
			return false
		}
		return time.Now().After(firstDies.Add(500 * time.Millisecond))
	}, func() []string { return []string{"file-secret-1", "file-token-1", "file-secret-2", "file-token-2"} })
}

// ecs_ram_role: the role discovered from the metadata stand-in (IMDSv2
// only), its credentials renewed in the background.
func TestCredentialsECSRAMRoleRotation(t *testing.T) {
	credentialsEnv(t)
	srv := startEmulator(t, seedWorld())
	m := credemu.StartMetadata("exporter-role")
	t.Cleanup(m.Close)
	m.RequireToken(true)
	m.SetLifetime(issuedLifetime, 181*time.Second) // new credentials when asked in their last 181 s
	m.OnIssue(honour(t, srv))
	cfg := withCredentials(t, srv, "credentials:\n  type: ecs_ram_role\n  disable_imds_v1: true\n  metadata_proxy_url: "+m.URL+"\n  timeout: 5s\n")
	rotationRun(t, srv, cfg, replacedAndDead(m.Issued), issuedSecrets(m.Issued))
	if m.Calls("role") == 0 || m.Calls("token") == 0 {
		t.Errorf("role discovered %d times with %d metadata tokens", m.Calls("role"), m.Calls("token"))
	}
}

// oidc_role_arn (RRSA): AssumeRoleWithOIDC with the projected token, which
// ACK rotates too.
func TestCredentialsOIDCRoleARNRotation(t *testing.T) {
	credentialsEnv(t)
	srv := startEmulator(t, seedWorld())
	sts := startCredSTS(t, srv)
	sts.SetOIDCProvider("acs:ram::1234567890123456:oidc-provider/ack-rrsa-test")
	sts.AcceptOIDCToken("oidc-token-one", true)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("oidc-token-one"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Set as ack-pod-identity-webhook does; the config names only the type and the endpoint.
	t.Setenv("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1234567890123456:role/sls-keyword-exporter")
	t.Setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1234567890123456:oidc-provider/ack-rrsa-test")
	t.Setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", tokenFile)
	cfg := withCredentials(t, srv, "credentials:\n  type: oidc_role_arn\n  sts_endpoint: "+sts.Endpoint+"\n")
	rotated := false
	done := replacedAndDead(sts.Issued)
	rotationRun(t, srv, cfg, func() bool {
		if !rotated {
			rotated = true
			sts.AcceptOIDCToken("oidc-token-one", false)
			sts.AcceptOIDCToken("oidc-token-two", true)
			if err := os.WriteFile(tokenFile, []byte("oidc-token-two"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return done()
	}, issuedSecrets(sts.Issued, "oidc-token-one", "oidc-token-two"))
	if issued := sts.Issued(); issued[0].SessionName != "sls_keyword_exporter" || issued[0].RoleARN != "acs:ram::1234567890123456:role/sls-keyword-exporter" {
		t.Errorf("assumed %s as %s", issued[0].RoleARN, issued[0].SessionName)
	}
}

// ram_role_arn: AssumeRole signed with an AccessKey, with an ExternalId.
func TestCredentialsRAMRoleARNRotation(t *testing.T) {
	credentialsEnv(t)
	srv := startEmulator(t, seedWorld())
	sts := startCredSTS(t, srv)
	sts.AllowAccessKey("LTAIassumer", "assumer-secret-value")
	sts.RequireExternalID("acs:ram::1:role/reader", "external-id-value")
	cfg := withCredentials(t, srv, `credentials:
  type: ram_role_arn
  access_key_id: LTAIassumer
  access_key_secret: assumer-secret-value
  role_arn: acs:ram::1:role/reader
  role_session_name: exporter-test
  external_id: external-id-value
  sts_endpoint: `+sts.Endpoint+"\n")
	rotationRun(t, srv, cfg, replacedAndDead(sts.Issued), issuedSecrets(sts.Issued, "assumer-secret-value", "external-id-value"))
}

// default: the chain finds RRSA's variables and assumes the role.
func TestCredentialsDefaultChainRotation(t *testing.T) {
	credentialsEnv(t)
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true") // never try the real metadata address
	srv := startEmulator(t, seedWorld())
	sts := startCredSTS(t, srv)
	sts.SetOIDCProvider("acs:ram::1:oidc-provider/p")
	sts.AcceptOIDCToken("chain-oidc-token", true)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("chain-oidc-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/chain")
	t.Setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/p")
	t.Setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", tokenFile)
	cfg := withCredentials(t, srv, "credentials:\n  type: default\n  sts_endpoint: "+sts.Endpoint+"\n")
	rotationRun(t, srv, cfg, replacedAndDead(sts.Issued), issuedSecrets(sts.Issued, "chain-oidc-token"))
}
