// Credentials blocks of every type: what they resolve to (environment defaults, region overrides) and their file:line errors.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clearCredentialEnv empties every variable credentials may be read from.
func clearCredentialEnv(t *testing.T) {
	for _, n := range []string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN", "SLS_AK_ID", "SLS_AK_KEY",
		"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
		"ALIBABA_CLOUD_ROLE_SESSION_NAME", "ALIBABA_CLOUD_ECS_METADATA",
	} {
		t.Setenv(n, "")
	}
}

// withRegions completes a credentials block into a config with regions
// cn-hangzhou (and cn-beijing when regions holds more).
func withRegions(credentials, regions string) string {
	if regions == "" {
		regions = `  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    projects: [{name: project1, logstores: [logstore1]}]
`
	}
	return credentials + "regions:\n" + regions + "rules: [{name: r, field: f, regex: x}]\n"
}

func resolved(t *testing.T, yamlText string) []Resolved {
	t.Helper()
	cfg, err := Parse([]byte(yamlText), "exporter.yml")
	if err != nil {
		t.Fatalf("%v\n%s", err, yamlText)
	}
	var out []Resolved
	for _, tg := range cfg.Targets() {
		out = append(out, tg.Credentials)
	}
	return out
}

func TestCredentialTypesResolve(t *testing.T) {
	clearCredentialEnv(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "sts.json")
	writeTestFile(t, tokenFile, `{"AccessKeyId": "STS.file", "AccessKeySecret": "file-secret", "SecurityToken": "file-token", "Expiration": "2030-01-02T15:04:05Z"}`)
	oidcToken := filepath.Join(dir, "oidc-token")
	writeTestFile(t, oidcToken, "eyJhbGciOi.example.token")

	// No type: an AccessKey, as before.
	got := resolved(t, withRegions("credentials: {access_key_id: id, access_key_secret: s, security_token: tok}\n", ""))
	if r := got[0]; r.Type != "" || r.Temporary() || r.AccessKeyID != "id" || r.AccessKeySecret.Reveal() != "s" || r.SecurityToken.Reveal() != "tok" {
		t.Errorf("no type: %+v", r)
	}
	// Explicit access_key is the same.
	if r := resolved(t, withRegions("credentials: {type: access_key, access_key_id: id, access_key_secret: s}\n", ""))[0]; r.Type != "" || r.AccessKeyID != "id" {
		t.Errorf("type access_key: %+v", r)
	}

	if r := resolved(t, withRegions("credentials: {type: sts_token_file, token_file: "+tokenFile+"}\n", ""))[0]; r.Type != TypeSTSTokenFile || r.TokenFile != tokenFile || r.Timeout != DefaultCredentialsTimeout {
		t.Errorf("sts_token_file: %+v", r)
	}

	if r := resolved(t, withRegions("credentials: {type: ecs_ram_role}\n", ""))[0]; r.Type != TypeECSRAMRole || r.RoleName != "" {
		t.Errorf("ecs_ram_role: %+v", r)
	}
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA", "env-role")
	if r := resolved(t, withRegions("credentials: {type: ecs_ram_role, disable_imds_v1: true, metadata_proxy_url: 'http://127.0.0.1:1', timeout: 3s}\n", ""))[0]; r.RoleName != "env-role" || !r.DisableIMDSv1 || r.MetadataProxyURL != "http://127.0.0.1:1" || r.Timeout != 3*time.Second {
		t.Errorf("ecs_ram_role from the environment: %+v", r)
	}

	// RRSA: everything from what the webhook injects.
	t.Setenv("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/env")
	t.Setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/env")
	t.Setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", oidcToken)
	r := resolved(t, withRegions("credentials: {type: oidc_role_arn}\n", ""))[0]
	if r.Type != TypeOIDCRoleARN || r.RoleARN != "acs:ram::1:role/env" || r.OIDCProviderARN != "acs:ram::1:oidc-provider/env" || r.OIDCTokenFile != oidcToken ||
		r.RoleSessionName != DefaultRoleSessionName || r.SessionDuration != time.Hour {
		t.Errorf("oidc_role_arn from the environment: %+v", r)
	}
	r = resolved(t, withRegions(`credentials:
  type: oidc_role_arn
  role_arn: acs:ram::2:role/file
  role_session_name: exporter-0
  session_duration: 2h
  sts_endpoint: https://sts-vpc.cn-hangzhou.aliyuncs.com
`, ""))[0]
	if r.RoleARN != "acs:ram::2:role/file" || r.RoleSessionName != "exporter-0" || r.SessionDuration != 2*time.Hour || r.STSEndpoint != "sts-vpc.cn-hangzhou.aliyuncs.com" {
		t.Errorf("oidc_role_arn from the file: %+v", r)
	}

	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "env-ak")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret")
	r = resolved(t, withRegions("credentials: {type: ram_role_arn, role_arn: 'acs:ram::3:role/x', external_id: ext, sts_region: cn-shanghai, sts_vpc: true}\n", ""))[0]
	if r.Type != TypeRAMRoleARN || r.AccessKeyID != "env-ak" || r.AccessKeySecret.Reveal() != "env-secret" || r.ExternalID.Reveal() != "ext" || r.STSRegion != "cn-shanghai" || !r.STSVPC {
		t.Errorf("ram_role_arn: %+v", r)
	}

	if r := resolved(t, withRegions("credentials: {type: default, sts_endpoint: 127.0.0.1:8443}\n", ""))[0]; r.Type != TypeDefault || r.STSEndpoint != "127.0.0.1:8443" {
		t.Errorf("default: %+v", r)
	}
}

func TestRegionCredentialsOverride(t *testing.T) {
	clearCredentialEnv(t)
	token := filepath.Join(t.TempDir(), "token")
	writeTestFile(t, token, "t")
	two := `  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    projects: [{name: project1, logstores: [logstore1]}]
  - name: cn-beijing
    endpoint: cn-beijing.log.aliyuncs.com
    credentials: %s
    projects: [{name: project2, logstores: [logstore2]}]
`
	top := fmt.Sprintf("credentials: {type: oidc_role_arn, role_arn: 'acs:ram::1:role/top', oidc_provider_arn: 'acs:ram::1:oidc-provider/p', oidc_token_file: %s}\n", token)
	// Same type: key by key.
	got := resolved(t, withRegions(top, fmt.Sprintf(two, "{role_arn: 'acs:ram::1:role/beijing'}")))
	if got[0].RoleARN != "acs:ram::1:role/top" || got[1].RoleARN != "acs:ram::1:role/beijing" || got[1].OIDCTokenFile != token || got[1].Type != TypeOIDCRoleARN {
		t.Errorf("same type: %+v", got)
	}
	// Another type stands alone.
	got = resolved(t, withRegions(top, fmt.Sprintf(two, "{type: access_key, access_key_id: bj, access_key_secret: s}")))
	if got[1].Type != "" || got[1].AccessKeyID != "bj" || got[1].RoleARN != "" {
		t.Errorf("another type: %+v", got[1])
	}
	// A fixed AccessKey at the top, a role in one region.
	got = resolved(t, withRegions("credentials: {access_key_id: top, access_key_secret: s}\n", fmt.Sprintf(two, "{type: ecs_ram_role, role_name: r}")))
	if got[0].AccessKeyID != "top" || got[1].Type != TypeECSRAMRole || got[1].RoleName != "r" || got[1].AccessKeyID != "" {
		t.Errorf("access key then ecs_ram_role: %+v", got)
	}
}

func TestCredentialErrors(t *testing.T) {
	clearCredentialEnv(t)
	dir := t.TempDir()
	badToken := filepath.Join(dir, "bad.json")
	writeTestFile(t, badToken, `{"AccessKeyId": "STS.x", "AccessKeySecret": "leaky-secret-value", "SecurityToken": `)
	region := func(credentials string) string {
		return withRegions("", `  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    credentials:
`+credentials+`    projects: [{name: project1, logstores: [logstore1]}]
`)
	}
	cases := []struct{ name, yaml, want string }{
		{"oidc without role", region("      type: oidc_role_arn\n      oidc_provider_arn: acs:ram::1:oidc-provider/p\n"),
			"exporter.yml:5: region cn-hangzhou: credentials: type oidc_role_arn needs role_arn (or ALIBABA_CLOUD_ROLE_ARN)"},
		{"oidc without provider", region("      type: oidc_role_arn\n      role_arn: acs:ram::1:role/r\n"),
			"exporter.yml:5: region cn-hangzhou: credentials: type oidc_role_arn needs oidc_provider_arn (or ALIBABA_CLOUD_OIDC_PROVIDER_ARN)"},
		{"oidc without token file", region("      type: oidc_role_arn\n      role_arn: acs:ram::1:role/r\n      oidc_provider_arn: acs:ram::1:oidc-provider/p\n"),
			"exporter.yml:5: region cn-hangzhou: credentials: type oidc_role_arn needs oidc_token_file (or ALIBABA_CLOUD_OIDC_TOKEN_FILE)"},
		{"oidc token file missing", region("      type: oidc_role_arn\n      role_arn: acs:ram::1:role/r\n      oidc_provider_arn: acs:ram::1:oidc-provider/p\n      oidc_token_file: /nonexistent/token\n"),
			"exporter.yml:8: region cn-hangzhou: credentials: oidc_token_file: stat /nonexistent/token: no such file or directory"},
		{"secret with ecs_ram_role", region("      type: ecs_ram_role\n      access_key_secret: s\n"),
			"exporter.yml:6: region cn-hangzhou: credentials: access_key_secret does not apply to type ecs_ram_role (it takes role_name, disable_imds_v1, metadata_proxy_url, timeout)"},
		{"top-level secret with ecs_ram_role", "credentials:\n  type: ecs_ram_role\n  access_key_secret: s\n" + withRegions("", ""),
			"exporter.yml:3: credentials: access_key_secret does not apply to type ecs_ram_role (it takes role_name, disable_imds_v1, metadata_proxy_url, timeout)"},
		{"unknown type", "credentials:\n  type: instance_profile\n" + withRegions("", ""),
			"exporter.yml:2: credentials: type \"instance_profile\" must be one of access_key, sts_token_file, ecs_ram_role, oidc_role_arn, ram_role_arn, default"},
		{"region inherits the top type", "credentials: {type: ecs_ram_role}\n" + withRegions("", `  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    credentials: {access_key_id: x}
    projects: [{name: project1, logstores: [logstore1]}]
`), "exporter.yml:5: region cn-hangzhou: credentials: access_key_id does not apply to type ecs_ram_role (it takes role_name, disable_imds_v1, metadata_proxy_url, timeout)"},
		{"token_file with access_key", region("      token_file: /x\n"),
			"exporter.yml:5: region cn-hangzhou: credentials: token_file does not apply to type access_key (it takes access_key_id, access_key_secret, access_key_secret_file, security_token)"},
		{"sts_token_file without file", region("      type: sts_token_file\n"),
			"exporter.yml:5: region cn-hangzhou: credentials: type sts_token_file needs token_file"},
		{"sts_token_file malformed", region("      type: sts_token_file\n      token_file: " + badToken + "\n"),
			"exporter.yml:6: region cn-hangzhou: credentials: token_file " + badToken + ": not valid JSON (at byte 83)"},
		{"ram_role_arn without key", region("      type: ram_role_arn\n      role_arn: acs:ram::1:role/r\n"),
			"exporter.yml:5: region cn-hangzhou: credentials: type ram_role_arn needs the AccessKey that assumes the role: access_key_id and access_key_secret (or access_key_secret_file), or ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET"},
		{"ram_role_arn without role", region("      type: ram_role_arn\n      access_key_id: a\n      access_key_secret: s\n"),
			"exporter.yml:5: region cn-hangzhou: credentials: type ram_role_arn needs role_arn"},
		{"external_id with oidc", "credentials:\n  type: oidc_role_arn\n  external_id: e\n" + withRegions("", ""),
			"exporter.yml:3: credentials: external_id does not apply to type oidc_role_arn (it takes role_arn, oidc_provider_arn, oidc_token_file, role_session_name, session_duration, policy, sts_endpoint, sts_region, sts_vpc, proxy_url, timeout)"},
		{"endpoint and region", "credentials:\n  type: default\n  sts_endpoint: sts.example.com\n  sts_region: cn-hangzhou\n" + withRegions("", ""),
			"exporter.yml:1: credentials: sts_endpoint excludes sts_region and sts_vpc (they choose the endpoint)"},
		{"http sts endpoint", "credentials:\n  type: default\n  sts_endpoint: http://127.0.0.1:80\n" + withRegions("", ""),
			"exporter.yml:3: credentials: sts_endpoint \"http://127.0.0.1:80\" must be a host name or IP with optional port (STS is reached over HTTPS)"},
		{"vpc without region", "credentials:\n  type: default\n  sts_vpc: true\n" + withRegions("", ""),
			"exporter.yml:3: region cn-hangzhou: credentials: sts_vpc needs sts_region (the VPC endpoint is sts-vpc.<region>.aliyuncs.com)"},
		{"short session", "credentials:\n  type: ram_role_arn\n  session_duration: 5m\n" + withRegions("", ""),
			"exporter.yml:3: credentials: session_duration must be whole seconds from 15m0s to 12h0m0s, got 5m0s"},
		{"bad proxy", "credentials:\n  type: ecs_ram_role\n  metadata_proxy_url: 100.100.100.200\n" + withRegions("", ""),
			"exporter.yml:3: credentials: metadata_proxy_url \"100.100.100.200\" must be an http(s) URL"},
		{"proxy_url with ecs_ram_role", "credentials:\n  type: ecs_ram_role\n  proxy_url: http://proxy:3128\n" + withRegions("", ""),
			"exporter.yml:3: credentials: proxy_url does not apply to type ecs_ram_role (it takes role_name, disable_imds_v1, metadata_proxy_url, timeout)"},
		{"bad session name", region("      type: ram_role_arn\n      role_session_name: 'a b'\n"),
			"exporter.yml:6: region cn-hangzhou: credentials: role_session_name \"a b\" must be 2-64 letters, digits or . @ - _"},
		{"no access key", withRegions("", ""),
			"exporter.yml:2: region cn-hangzhou: no AccessKey: set credentials.access_key_id and access_key_secret (or access_key_secret_file), or ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET (or SLS_AK_ID/SLS_AK_KEY)"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), "exporter.yml")
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got: %v\nwant: %s\n%s", c.name, err, c.want, c.yaml)
		}
		if err != nil && strings.Contains(err.Error(), "leaky-secret-value") {
			t.Errorf("%s: the error shows the token file's secret", c.name)
		}
	}
}

func TestParseSTSTokenFile(t *testing.T) {
	tok, err := ParseSTSTokenFile([]byte(`{"AccessKeyId": "STS.a", "AccessKeySecret": "s", "SecurityToken": "t", "Expiration": "2030-01-02T15:04:05Z"}`))
	if err != nil || tok.AccessKeyID != "STS.a" || tok.AccessKeySecret.Reveal() != "s" || tok.SecurityToken.Reveal() != "t" || !tok.Expiration.Equal(time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC)) {
		t.Errorf("STS Credentials: %+v %v", tok, err)
	}
	// A whole AssumeRole answer, as `aliyun sts AssumeRole` prints it.
	tok, err = ParseSTSTokenFile([]byte(`{"RequestId": "X", "Credentials": {"AccessKeyId": "STS.b", "AccessKeySecret": "s", "SecurityToken": "t", "Expiration": "2030-01-02T15:04:05Z"}}`))
	if err != nil || tok.AccessKeyID != "STS.b" {
		t.Errorf("AssumeRole answer: %+v %v", tok, err)
	}
	// Without a token or expiry: a rotated AccessKey.
	if tok, err = ParseSTSTokenFile([]byte(`{"AccessKeyId": "LTAI", "AccessKeySecret": "s"}`)); err != nil || !tok.Expiration.IsZero() || tok.SecurityToken != "" {
		t.Errorf("AccessKey only: %+v %v", tok, err)
	}
	for body, want := range map[string]string{
		`{"AccessKeyId": "a"}`: "AccessKeyId and AccessKeySecret are required",
		`{"AccessKeyId": "a", "AccessKeySecret": "topsecret", "Expiration": "tomorrow"}`: `Expiration "tomorrow" is not an RFC 3339 time such as 2026-01-02T15:04:05Z`,
		`{"AccessKeyId": "a", "AccessKeySecret": 42}`:                                    "AccessKeySecret must be a string",
		`AccessKeySecret=topsecret`:                                                      "not valid JSON (at byte 1)",
		`["topsecret"]`:                                                                  "not a JSON object",
	} {
		_, err := ParseSTSTokenFile([]byte(body))
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", body, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%s: the error shows the secret", body)
		}
	}
}

func TestResolvedNeverPrintsSecrets(t *testing.T) {
	r := Resolved{Type: TypeRAMRoleARN, AccessKeyID: "id", AccessKeySecret: "hunter2", SecurityToken: "tok3n", ExternalID: "ext3rnal", RoleARN: "acs:ram::1:role/x"}
	for _, text := range []string{fmt.Sprint(r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r), r.Describe()} {
		for _, secret := range []string{"hunter2", "tok3n", "ext3rnal"} {
			if strings.Contains(text, secret) {
				t.Errorf("%q shows %s", text, secret)
			}
		}
	}
	if r.Describe() != "ram_role_arn acs:ram::1:role/x" {
		t.Errorf("Describe: %s", r.Describe())
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
