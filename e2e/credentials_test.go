// Every credentials type on the real binaries: the exporter consumes through slsemu with credentials from the test's STS and metadata stand-ins, which the emulator learns over its admin API and rejects once revoked or expired; counts stay exact, no call fails, no secret shows.
package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	dto "github.com/prometheus/client_model/go"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/internal/credemu"
)

const (
	// credLifetime is the Expiration the stand-ins announce: credentials-go
	// renews credentials in their last 3 minutes, so these are due for
	// renewal 3 s after they are issued.
	credLifetime = 183 * time.Second
	// credHonoured is how long after credentials-go's renewal point the
	// emulator keeps accepting replaced credentials; past it a call signed
	// with them gets 401 Unauthorized "has expired". The exporter asks its
	// source every 5 s, so it must switch within 3 + 5 s of issue; the old
	// credentials die at 3 + 10 s.
	credHonoured = 10 * time.Second

	credGroup    = "cred-cg"
	credEndpoint = "cn-hangzhou.log.aliyuncs.com"
	credScrape   = time.Second
)

// credWorldYAML is one logstore of two shards; its only key is the one the
// test writes with. The exporter's keys are told to the emulator as they
// are issued.
const credWorldYAML = `access_keys:
  - id: ` + testAK + `
    secret: ` + testSecret + `
regions:
  - name: cn-hangzhou
    endpoint: ` + credEndpoint + `
    projects:
      - name: project1
        logstores: [{name: logstore1, shards: 2}]
`

// credConfig reads project1/logstore1 from its beginning with the given
// credentials block (its lines under "credentials:", indented).
func credConfig(emu, block string) string {
	return fmt.Sprintf(`consumer_group: %s
consumer_name: cred-e2e
cursor_start: begin
heartbeat_interval: 1s
consumer_timeout: 3s
commit_interval: 1s
idle_poll_interval: 200ms
credentials:
%s
regions:
  - name: cn-hangzhou
    endpoint: %s
    proxy_url: %s
    projects:
      - name: project1
        logstores: [logstore1]
rules:
`, credGroup, strings.TrimRight(block, "\n"), credEndpoint, emu) + http5xxRule
}

// credEnv is the exporter's environment: nothing that credentials could be
// taken from besides what a test sets, no proxy, a HOME without profiles.
func credEnv(t *testing.T, more ...string) []string {
	env := []string{"HOME=" + t.TempDir(), "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true"}
	for _, n := range []string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN", "SLS_AK_ID", "SLS_AK_KEY",
		"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_ROLE_SESSION_NAME",
		"ALIBABA_CLOUD_ECS_METADATA", "ALIBABA_CLOUD_IMDSV1_DISABLED", "ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_PROFILE",
		"ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_CONFIG_FILE", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "ALIBABA_CLOUD_STS_REGION",
		"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "DEBUG",
	} {
		env = append(env, n+"=")
	}
	return append(env, more...) // later entries win
}

// emuAdmin tells the emulator binary which AccessKeys to accept, over its
// admin API, and calls it with any key.
type emuAdmin struct{ url string }

func (e emuAdmin) addKey(id, secret, token string, expires time.Time) error {
	key := map[string]any{"id": id, "secret": secret, "security_token": token}
	if !expires.IsZero() {
		key["expires"] = expires.Format(time.RFC3339Nano)
	}
	body, _ := json.Marshal(key)
	resp, err := http.Post(e.url+"/_slsemu/access_keys", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST /_slsemu/access_keys %s: %d %s", id, resp.StatusCode, msg)
	}
	return nil
}

func (e emuAdmin) mustAddKey(t *testing.T, id, secret, token string, expires time.Time) {
	t.Helper()
	if err := e.addKey(id, secret, token, expires); err != nil {
		t.Fatal(err)
	}
}

func (e emuAdmin) revokeKey(t *testing.T, id string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, e.url+"/_slsemu/access_keys/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE /_slsemu/access_keys/%s: %d", id, resp.StatusCode)
	}
}

// rejects checks that the emulator refuses a call signed with a key, with
// 401 Unauthorized and a message starting with want.
func (e emuAdmin) rejects(t *testing.T, id, secret, token, want string) {
	t.Helper()
	c := sls.CreateNormalInterface(credEndpoint, id, secret, token)
	proxy, _ := http.NewRequest(http.MethodGet, e.url, nil)
	c.SetHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy.URL)}})
	_, err := c.ListShards("project1", "logstore1")
	var slsErr *sls.Error
	if !errors.As(err, &slsErr) || slsErr.HTTPCode != 401 || slsErr.Code != "Unauthorized" || !strings.HasPrefix(slsErr.Message, want) {
		t.Fatalf("a call signed with the replaced key %s: %v; want 401 Unauthorized %q", id, err, want)
	}
}

// honour makes the emulator accept issued credentials until credHonoured
// after their renewal point.
func honour(t *testing.T, emu emuAdmin) func(credemu.Issued) {
	return func(i credemu.Issued) {
		if err := emu.addKey(i.AccessKeyID, i.AccessKeySecret, i.SecurityToken, honouredUntil(i)); err != nil {
			t.Error(err)
		}
	}
}

func honouredUntil(i credemu.Issued) time.Time {
	return i.Expiration.Add(-180*time.Second + credHonoured)
}

// startCredSTS serves an STS stand-in whose credentials the emulator
// honours, and returns it with the environment that makes the exporter
// trust its CA: SSL_CERT_FILE, as an operator trusts a private CA.
func startCredSTS(t *testing.T, emu emuAdmin) (*credemu.STS, string) {
	t.Helper()
	sts, err := credemu.StartSTS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sts.Close)
	sts.SetLifetime(credLifetime)
	sts.OnIssue(honour(t, emu))
	return sts, "SSL_CERT_FILE=" + standInCAFile(t, sts.Endpoint)
}

// standInCAFile writes the stand-ins' CA as PEM: the root of the chain the
// STS stand-in presents, verified against credemu.CAPool (credemu does not
// export the PEM itself).
func standInCAFile(t *testing.T, endpoint string) string {
	t.Helper()
	pool, err := credemu.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", endpoint, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	chains := conn.ConnectionState().VerifiedChains
	if len(chains) == 0 {
		t.Fatal("the STS stand-in's chain was not verified")
	}
	root := chains[0][len(chains[0])-1]
	return writeFile(t, "credemu-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})))
}

// issuedSecrets lists every secret and token a stand-in issued, and more.
func issuedSecrets(issued func() []credemu.Issued, more ...string) func() []string {
	return func() []string {
		out := append([]string(nil), more...)
		for _, i := range issued() {
			out = append(out, i.AccessKeySecret, i.SecurityToken)
		}
		return out
	}
}

// replacedAndDead: at least two sets issued, and the first one's honoured
// time is over, so the exporter must run on a successor.
func replacedAndDead(issued func() []credemu.Issued) func() bool {
	return func() bool {
		list := issued()
		return len(list) >= 2 && time.Now().After(honouredUntil(list[0]).Add(500*time.Millisecond))
	}
}

// credRun is what a rotation test needs of one exporter run.
type credRun struct {
	t   *testing.T
	emu emuAdmin
	cfg string // the config file
	env []string
	// kind is the credentials type counted in sls_credentials_refreshes_total
	// (empty for access_key, which is not refreshed).
	kind string
	// rotate is called after each round of logs; it rotates the credentials
	// (once or continually; it may write more logs with w) and reports
	// whether the rotation under test has happened and the replaced
	// credentials are dead.
	rotate func(r *exporterRun, w *seqWriter) bool
	// rejected checks, once rotate says so, that the emulator refuses the
	// replaced credentials.
	rejected func()
	// issued counts the sets of credentials handed out (nil: unknown).
	issued func() int
	// secrets lists every secret, token and OIDC token in play.
	secrets func() []string
}

// run consumes logstore1 with the configured credentials, writing a round of
// logs into both shards until rotate says the replaced credentials are dead,
// then two rounds more, and checks: every log counted exactly once, no SLS
// call failed, the refreshes counted, and no secret in the exporter's
// output, its /metrics page or its status page.
func (c *credRun) run() {
	t := c.t
	t.Helper()
	began := time.Now()
	sc := newPromScraper(t, credScrape)
	addr := freeAddr(t)
	p := start(t, c.env, "sls_keyword_exporter", "--config.file="+c.cfg, "--web.listen-address="+addr, "--log.level=debug")
	r := &exporterRun{proc: p, name: "exporter", base: "http://" + addr}
	waitHTTP(t, r.base+"/-/ready", 20*time.Second)
	r.target = sc.add(r.name, r.base+"/metrics", p.done)
	w := newSeqWriter(t, sdkClient(c.emu.url, credEndpoint), "project1", "logstore1")

	noErrors := func(when string) {
		t.Helper()
		m, _ := scrape(t, r.base+"/metrics")
		if errs := errorSeries(m); len(errs) > 0 {
			t.Fatalf("%s (%s in): failed calls %v", when, time.Since(began).Round(time.Millisecond), errs)
		}
	}
	rounds := 0
	round := func() {
		t.Helper()
		for shard := range 2 {
			if err := w.write(shard, "500", "200", fmt.Sprintf("50%d", rounds%10), "404"); err != nil {
				t.Fatalf("round %d: %v", rounds, err)
			}
		}
		logs, _ := w.totals()
		// What a Prometheus adds up (across a reload's restart too).
		waitFor(t, 15*time.Second, fmt.Sprintf("round %d scraped (%d logs)", rounds, logs), func() bool {
			noErrors(fmt.Sprintf("during round %d", rounds))
			return r.target.total("sls_consumer_logs_total") == float64(logs)
		})
		rounds++
		noErrors(fmt.Sprintf("after round %d", rounds))
	}

	pace := time.NewTicker(500 * time.Millisecond)
	defer pace.Stop()
	for {
		round()
		if c.rotate(r, w) {
			break
		}
		if time.Since(began) > 45*time.Second {
			t.Fatalf("the rotation was not over within 45 s (%d rounds)", rounds)
		}
		<-pace.C
	}
	rotated := time.Since(began)
	c.rejected()
	for range 2 {
		<-pace.C
		round()
	}
	// Successful pulls of both shards for a while after the last round:
	// calls signed with whatever the exporter now uses, which must not fail.
	lastRound := time.Now()
	waitFor(t, 10*time.Second, "pulls of both shards 1.5 s after the last round", func() bool {
		m, _ := scrape(t, r.base+"/metrics")
		f := m["sls_consumer_last_pull_timestamp_seconds"]
		if f == nil || len(f.Metric) != 2 {
			return false
		}
		for _, s := range f.Metric {
			if s.GetGauge().GetValue() < float64(lastRound.Add(1500*time.Millisecond).UnixNano())/1e9 {
				return false
			}
		}
		return true
	})
	noErrors("after the last round")

	logs, matches := w.totals()
	m, metricsPage := scrape(t, r.base+"/metrics")
	if got := sum(m, "sls_consumer_logs_total"); got != float64(logs) {
		t.Errorf("sls_consumer_logs_total = %v, want exactly the %d logs written", got, logs)
	}
	if got := sum(m, "sls_keyword_matches_total", "rule=http_5xx"); got != float64(matches) {
		t.Errorf("sls_keyword_matches_total = %v, want exactly the %d matches written", got, matches)
	}
	waitFor(t, 5*credScrape, "a scrape of the last counts", func() bool {
		return r.target.total("sls_keyword_matches_total", "rule=http_5xx") == float64(matches)
	})
	if got := r.target.total("sls_consumer_logs_total"); got != float64(logs) {
		t.Errorf("scraped sls_consumer_logs_total adds up to %v, want exactly the %d logs written", got, logs)
	}
	if got := sum(m, "sls_credentials_refresh_failures_total"); got != 0 {
		t.Errorf("sls_credentials_refresh_failures_total = %v, want none", got)
	}
	if c.kind != "" {
		refreshes := func() float64 {
			m, _ := scrape(t, r.base+"/metrics")
			return value(m, "sls_credentials_refreshes_total", "type="+c.kind)
		}
		if got := refreshes(); got < 2 {
			t.Errorf("sls_credentials_refreshes_total{type=%q} = %v, want the first credentials and at least one renewal", c.kind, got)
		}
		if c.issued != nil {
			// Issuing goes on; a moment comes when the count holds still.
			var got float64
			var n int
			waitFor(t, 10*time.Second, "sls_credentials_refreshes_total to equal the credentials issued", func() bool {
				before := c.issued()
				got = refreshes()
				n = c.issued()
				return before == n && got == float64(n)
			})
			t.Logf("%d credentials issued, %v refreshes counted", n, got)
		}
	}

	statusPage := get(t, r.base+"/")
	for _, secret := range c.secrets() {
		if len(secret) < 8 {
			t.Fatalf("a secret too short to look for: %q", secret)
		}
		for what, text := range map[string]string{"output": p.out.String(), "/metrics page": metricsPage, "status page": statusPage} {
			if strings.Contains(text, secret) {
				t.Errorf("the exporter's %s shows a secret (%d characters, starting %q)", what, len(secret), secret[:4])
			}
		}
	}
	t.Logf("%d rounds, %d logs (%d matches); rotation over after %s, all done in %s",
		rounds, logs, matches, rotated.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// errorSeries lists the sls_consumer_errors_total series of a scrape.
func errorSeries(m map[string]*dto.MetricFamily) []string {
	var errs []string
	if f := m["sls_consumer_errors_total"]; f != nil {
		for _, s := range f.Metric {
			var labels []string
			for _, l := range s.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			errs = append(errs, fmt.Sprintf("{%s} %v", strings.Join(labels, ","), s.GetCounter().GetValue()))
		}
	}
	return errs
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return string(body)
}

// writeAtomically replaces a file as a rotator should: never half a file.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// access_key with an STS token: a fixed key, rotated by the operator — a new
// key in the config, a reload, the old key revoked.
func TestE2ECredentialsAccessKeyWithToken(t *testing.T) {
	emu := emuAdmin{startEmulator(t, credWorldYAML)}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	const (
		id1, secret1, token1 = "STS.fixedkeyone", "fixed-secret-one-c2VjcmV0", "CAISfixed-token-one-dG9rZW4"
		id2, secret2, token2 = "STS.fixedkeytwo", "fixed-secret-two-c2VjcmV0", "CAISfixed-token-two-dG9rZW4"
	)
	config := func(id, token string) string {
		return credConfig(emu.url, fmt.Sprintf("  type: access_key\n  access_key_id: %s\n  access_key_secret_file: %s\n  security_token: %s\n", id, secretFile, token))
	}
	emu.mustAddKey(t, id1, secret1, token1, time.Time{})
	writeAtomically(t, secretFile, secret1+"\n")
	cfg := writeFile(t, "exporter.yml", config(id1, token1))
	calls := 0
	(&credRun{t: t, emu: emu, cfg: cfg, env: credEnv(t),
		rotate: func(r *exporterRun, w *seqWriter) bool {
			if calls++; calls < 3 {
				return false // a few rounds on the old key first
			}
			// Logs arrive while the old key's member drains and the new one starts.
			for shard := range 2 {
				if err := w.write(shard, "503", "200"); err != nil {
					t.Fatal(err)
				}
			}
			emu.mustAddKey(t, id2, secret2, token2, time.Time{})
			writeAtomically(t, secretFile, secret2+"\n")
			writeAtomically(t, cfg, config(id2, token2))
			postReload(t, r.base)
			if m, _ := scrape(t, r.base+"/metrics"); value(m, "sls_keyword_exporter_config_last_reload_successful", "") != 1 {
				t.Fatal("the reload did not succeed")
			}
			emu.revokeKey(t, id1) // the operator deletes the old key once the exporter runs on the new one
			return true
		},
		rejected: func() { emu.rejects(t, id1, secret1, token1, "AccessKeyId not found") },
		secrets:  func() []string { return []string{secret1, token1, secret2, token2} },
	}).run()
}

// sts_token_file: a rotator rewrites the file; the old token expires 8 s
// later (the exporter looks at the file every 5 s).
func TestE2ECredentialsSTSTokenFileRotation(t *testing.T) {
	emu := emuAdmin{startEmulator(t, credWorldYAML)}
	path := filepath.Join(t.TempDir(), "sts.json")
	type key struct{ id, secret, token string }
	keys := []key{
		{"STS.tokenfileone", "file-secret-one-c2VjcmV0", "CAISfile-token-one-dG9rZW4"},
		{"STS.tokenfiletwo", "file-secret-two-c2VjcmV0", "CAISfile-token-two-dG9rZW4"},
	}
	write := func(k key, expires time.Time) {
		emu.mustAddKey(t, k.id, k.secret, k.token, expires)
		writeAtomically(t, path, fmt.Sprintf(`{"AccessKeyId": %q, "AccessKeySecret": %q, "SecurityToken": %q, "Expiration": %q}`,
			k.id, k.secret, k.token, expires.UTC().Format(time.RFC3339)))
	}
	write(keys[0], time.Now().Add(time.Hour))
	cfg := writeFile(t, "exporter.yml", credConfig(emu.url, "  type: sts_token_file\n  token_file: "+path+"\n"))
	var firstDies time.Time
	(&credRun{t: t, emu: emu, cfg: cfg, env: credEnv(t), kind: "sts_token_file",
		rotate: func(*exporterRun, *seqWriter) bool {
			if firstDies.IsZero() {
				firstDies = time.Now().Add(8 * time.Second)
				write(keys[1], time.Now().Add(time.Hour))
				emu.mustAddKey(t, keys[0].id, keys[0].secret, keys[0].token, firstDies) // the old token's end moves in
				return false
			}
			return time.Now().After(firstDies.Add(500 * time.Millisecond))
		},
		rejected: func() {
			emu.rejects(t, keys[0].id, keys[0].secret, keys[0].token, "The security token you provided has expired.")
		},
		issued:  func() int { return 2 },
		secrets: func() []string { return []string{keys[0].secret, keys[0].token, keys[1].secret, keys[1].token} },
	}).run()
}

// ecs_ram_role: the instance role found through the metadata stand-in
// (IMDSv2 only), reached as metadata_proxy_url; renewed in the background.
func TestE2ECredentialsECSRAMRoleRotation(t *testing.T) {
	emu := emuAdmin{startEmulator(t, credWorldYAML)}
	m := credemu.StartMetadata("exporter-role")
	t.Cleanup(m.Close)
	m.RequireToken(true)
	m.SetLifetime(credLifetime, 181*time.Second) // new credentials when asked in their last 181 s
	m.OnIssue(honour(t, emu))
	cfg := writeFile(t, "exporter.yml", credConfig(emu.url, "  type: ecs_ram_role\n  disable_imds_v1: true\n  metadata_proxy_url: "+m.URL+"\n  timeout: 5s\n"))
	done := replacedAndDead(m.Issued)
	(&credRun{t: t, emu: emu, cfg: cfg, env: credEnv(t, "ALIBABA_CLOUD_ECS_METADATA_DISABLED="), kind: "ecs_ram_role",
		rotate: func(*exporterRun, *seqWriter) bool { return done() },
		rejected: func() {
			old := m.Issued()[0]
			emu.rejects(t, old.AccessKeyID, old.AccessKeySecret, old.SecurityToken, "The security token you provided has expired.")
		},
		issued:  func() int { return len(m.Issued()) },
		secrets: issuedSecrets(m.Issued),
	}).run()
	if m.Calls("role") == 0 || m.Calls("token") == 0 {
		t.Errorf("role discovered %d times with %d metadata tokens", m.Calls("role"), m.Calls("token"))
	}
}

// oidcSetup serves an STS stand-in for RRSA and the projected token file.
func oidcSetup(t *testing.T, emu emuAdmin, providerARN, token string) (*credemu.STS, string, string) {
	sts, caEnv := startCredSTS(t, emu)
	sts.SetOIDCProvider(providerARN)
	sts.AcceptOIDCToken(token, true)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeAtomically(t, tokenFile, token)
	return sts, caEnv, tokenFile
}

// oidc_role_arn (RRSA): the variables ack-pod-identity-webhook injects; the
// config names the type and the STS endpoint. ACK rotates the projected
// token too: the new one is written before the old one stops being accepted.
func TestE2ECredentialsOIDCRoleARNRotation(t *testing.T) {
	emu := emuAdmin{startEmulator(t, credWorldYAML)}
	const (
		roleARN     = "acs:ram::1234567890123456:role/sls-keyword-exporter"
		providerARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-e2e"
		token1      = "eyJhbGciOiJSUzI1NiJ9.oidc-token-one.c2lnbmF0dXJl"
		token2      = "eyJhbGciOiJSUzI1NiJ9.oidc-token-two.c2lnbmF0dXJl"
	)
	sts, caEnv, tokenFile := oidcSetup(t, emu, providerARN, token1)
	cfg := writeFile(t, "exporter.yml", credConfig(emu.url, "  type: oidc_role_arn\n  sts_endpoint: "+sts.Endpoint+"\n"))
	done := replacedAndDead(sts.Issued)
	tokenRotated := false
	(&credRun{t: t, emu: emu, cfg: cfg, kind: "oidc_role_arn",
		env: credEnv(t, caEnv, "ALIBABA_CLOUD_ROLE_ARN="+roleARN, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN="+providerARN, "ALIBABA_CLOUD_OIDC_TOKEN_FILE="+tokenFile),
		rotate: func(*exporterRun, *seqWriter) bool {
			if !tokenRotated {
				tokenRotated = true
				sts.AcceptOIDCToken(token2, true)
				writeAtomically(t, tokenFile, token2)
				sts.AcceptOIDCToken(token1, false)
			}
			return done()
		},
		rejected: func() {
			old := sts.Issued()[0]
			emu.rejects(t, old.AccessKeyID, old.AccessKeySecret, old.SecurityToken, "The security token you provided has expired.")
		},
		issued:  func() int { return len(sts.Issued()) },
		secrets: issuedSecrets(sts.Issued, token1, token2),
	}).run()
	for _, i := range sts.Issued() {
		if i.Action != "AssumeRoleWithOIDC" || i.RoleARN != roleARN || i.SessionName != "sls_keyword_exporter" {
			t.Errorf("issued by %s for %s as %s", i.Action, i.RoleARN, i.SessionName)
			break
		}
	}
}

// ram_role_arn: AssumeRole signed with an AccessKey from a secret file, with
// an ExternalId.
func TestE2ECredentialsRAMRoleARNRotation(t *testing.T) {
	emu := emuAdmin{startEmulator(t, credWorldYAML)}
	const (
		assumerID     = "LTAIassumerkey"
		assumerSecret = "assumer-secret-YXNzdW1lcg"
		externalID    = "external-id-ZXh0ZXJuYWw"
		roleARN       = "acs:ram::2222222222222222:role/sls-reader"
	)
	sts, caEnv := startCredSTS(t, emu)
	sts.AllowAccessKey(assumerID, assumerSecret)
	sts.RequireExternalID(roleARN, externalID)
	secretFile := writeFile(t, "assumer", assumerSecret+"\n")
	cfg := writeFile(t, "exporter.yml", credConfig(emu.url, fmt.Sprintf(`  type: ram_role_arn
  access_key_id: %s
  access_key_secret_file: %s
  role_arn: %s
  role_session_name: exporter-e2e
  external_id: %s
  sts_endpoint: %s
`, assumerID, secretFile, roleARN, externalID, sts.Endpoint)))
	done := replacedAndDead(sts.Issued)
	(&credRun{t: t, emu: emu, cfg: cfg, env: credEnv(t, caEnv), kind: "ram_role_arn",
		rotate: func(*exporterRun, *seqWriter) bool { return done() },
		rejected: func() {
			old := sts.Issued()[0]
			emu.rejects(t, old.AccessKeyID, old.AccessKeySecret, old.SecurityToken, "The security token you provided has expired.")
		},
		issued:  func() int { return len(sts.Issued()) },
		secrets: issuedSecrets(sts.Issued, assumerSecret, externalID),
	}).run()
	for _, i := range sts.Issued() {
		if i.Action != "AssumeRole" || i.RoleARN != roleARN || i.SessionName != "exporter-e2e" {
			t.Errorf("issued by %s for %s as %s", i.Action, i.RoleARN, i.SessionName)
			break
		}
	}
	// The assumer's key is STS's, not SLS's: the emulator never knew it.
	emu.rejects(t, assumerID, assumerSecret, "", "AccessKeyId not found")
}

// default: the chain finds no AccessKey in the environment, then RRSA's
// variables, and assumes the role; the instance metadata link is disabled.
func TestE2ECredentialsDefaultChainRotation(t *testing.T) {
	emu := emuAdmin{startEmulator(t, credWorldYAML)}
	const (
		roleARN     = "acs:ram::1:role/chain"
		providerARN = "acs:ram::1:oidc-provider/chain"
		token       = "eyJhbGciOiJSUzI1NiJ9.chain-oidc-token.c2lnbmF0dXJl"
	)
	sts, caEnv, tokenFile := oidcSetup(t, emu, providerARN, token)
	cfg := writeFile(t, "exporter.yml", credConfig(emu.url, "  type: default\n  sts_endpoint: "+sts.Endpoint+"\n"))
	done := replacedAndDead(sts.Issued)
	(&credRun{t: t, emu: emu, cfg: cfg, kind: "default",
		env:    credEnv(t, caEnv, "ALIBABA_CLOUD_ROLE_ARN="+roleARN, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN="+providerARN, "ALIBABA_CLOUD_OIDC_TOKEN_FILE="+tokenFile),
		rotate: func(*exporterRun, *seqWriter) bool { return done() },
		rejected: func() {
			old := sts.Issued()[0]
			emu.rejects(t, old.AccessKeyID, old.AccessKeySecret, old.SecurityToken, "The security token you provided has expired.")
		},
		issued:  func() int { return len(sts.Issued()) },
		secrets: issuedSecrets(sts.Issued, token),
	}).run()
	if issued := sts.Issued(); issued[0].RoleARN != roleARN {
		t.Errorf("assumed %s", issued[0].RoleARN)
	}
}
