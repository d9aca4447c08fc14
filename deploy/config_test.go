// Tests of the exporter configurations shipped in the ConfigMaps, validated with the exporter's own parser.
package deploy

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
)

// setCredentialEnv gives the process exactly the credential variables a pod of that variant has.
func setCredentialEnv(t *testing.T, vars map[string]string) {
	for _, name := range []string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
		"SLS_AK_ID", "SLS_AK_KEY",
		"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
	} {
		t.Setenv(name, vars[name])
	}
}

// The base variant: credentials empty in the file, the AccessKey from the Secret's env variables.
func TestBaseConfigParses(t *testing.T) {
	setCredentialEnv(t, map[string]string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     "LTAI-example",
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "example-secret",
	})
	path := join(k8sBase, "config.yml")
	cfg, err := config.Parse(readFile(t, path), path)
	if err != nil {
		t.Fatal(err)
	}
	// consumer_name stays empty: each pod defaults to "<pod name>-10290".
	if cfg.ConsumerGroup != "keyword-monitor" || cfg.ConsumerName != "" {
		t.Errorf("consumer_group %q consumer_name %q, want keyword-monitor and the default", cfg.ConsumerGroup, cfg.ConsumerName)
	}
	if cfg.Credentials.AccessKeyID != "" || cfg.Credentials.AccessKeySecret != "" {
		t.Error("the base config holds an AccessKey; it belongs in the Secret")
	}
	if n := len(cfg.Targets()); n != 1 || cfg.Targets()[0].Credentials.AccessKeyID != "LTAI-example" {
		t.Errorf("targets %d, want 1 with the AccessKey from the environment", n)
	}
}

// The RRSA variant is the base config plus credentials {type: oidc_role_arn}.
func TestRRSAConfig(t *testing.T) {
	load := func(path string) map[string]any {
		var doc map[string]any
		if err := yaml.Unmarshal(readFile(t, path), &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return doc
	}
	base, rrsa := load(join(k8sBase, "config.yml")), load(join(k8sRRSA, "config.yml"))
	creds := rrsa["credentials"]
	delete(rrsa, "credentials")
	if len(rrsa) != len(base) || !maps.EqualFunc(rrsa, base, func(a, b any) bool {
		x, _ := yaml.Marshal(a)
		y, _ := yaml.Marshal(b)
		return string(x) == string(y)
	}) {
		t.Error("rrsa/config.yml differs from base/config.yml in more than credentials")
	}
	if c, ok := creds.(map[string]any); !ok || len(c) != 1 || c["type"] != "oidc_role_arn" {
		t.Errorf("rrsa credentials %v, want {type: oidc_role_arn}", creds)
	}

	token := filepath.Join(t.TempDir(), "token")
	writeFile(t, token, "example-oidc-token")
	setCredentialEnv(t, map[string]string{ // what ack-pod-identity-webhook injects
		"ALIBABA_CLOUD_ROLE_ARN":          "acs:ram::1234567890123456:role/sls-keyword-exporter",
		"ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123456789abcdef",
		"ALIBABA_CLOUD_OIDC_TOKEN_FILE":   token,
	})
	path := join(k8sRRSA, "config.yml")
	cfg, err := config.Parse(readFile(t, path), path)
	if err != nil {
		t.Fatal(err)
	}
	targets := cfg.Targets()
	if len(targets) != 1 {
		t.Fatalf("%d targets, want 1", len(targets))
	}
	c := targets[0].Credentials
	if c.Type != config.TypeOIDCRoleARN || c.RoleARN != "acs:ram::1234567890123456:role/sls-keyword-exporter" ||
		c.OIDCProviderARN != "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123456789abcdef" || c.OIDCTokenFile != token ||
		c.AccessKeyID != "" || c.AccessKeySecret != "" {
		t.Errorf("credentials %s: want oidc_role_arn with the role, provider and token file the webhook injects, and no AccessKey", c)
	}

	// Without the webhook's variables the config says what is missing.
	setCredentialEnv(t, nil)
	if _, err := config.Parse(readFile(t, path), path); err == nil || !strings.Contains(err.Error(), "needs role_arn (or ALIBABA_CLOUD_ROLE_ARN)") {
		t.Errorf("without ALIBABA_CLOUD_ROLE_ARN: %v", err)
	}
}
