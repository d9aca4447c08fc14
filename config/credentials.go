// Credentials: a secret type that never prints, and where an AccessKey comes from (file, config, environment).
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret holds a credential. It prints, logs and marshals as "<secret>";
// only Reveal gives the value, and its result must not be logged.
type Secret string

const redacted = "<secret>"

// String hides the value from fmt.
func (s Secret) String() string { return redacted }

// GoString hides the value from %#v.
func (s Secret) GoString() string { return redacted }

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalYAML hides the value when a config is written out.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return redacted, nil
}

// MarshalText hides the value from encoders such as encoding/json.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the secret. Never log the result.
func (s Secret) Reveal() string { return string(s) }

// Resolved is a usable AccessKey. Its String hides the secret and token.
type Resolved struct {
	AccessKeyID     string
	AccessKeySecret Secret
	SecurityToken   Secret
}

func (r Resolved) String() string { return "AccessKeyId=" + r.AccessKeyID + " secret=" + redacted }

// Environment variables read when the config leaves a credential empty: the
// Alibaba Cloud convention first, then the seed monitor's names.
var (
	envAccessKeyID     = []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "SLS_AK_ID"}
	envAccessKeySecret = []string{"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "SLS_AK_KEY"}
	envSecurityToken   = []string{"ALIBABA_CLOUD_SECURITY_TOKEN"}
)

func firstEnv(names []string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func (c *Credentials) validate() error {
	if c.AccessKeySecret != "" && c.AccessKeySecretFile != "" {
		return errors.New("at most one of access_key_secret and access_key_secret_file may be set")
	}
	return nil
}

// credentialsFor resolves a region's AccessKey: the region's own block
// overrides the top-level one field by field; empty fields fall back to the
// environment.
func (c *Config) credentialsFor(r *Region) (Resolved, error) {
	merged := c.Credentials
	if rc := r.Credentials; rc != nil {
		if rc.AccessKeyID != "" {
			merged.AccessKeyID = rc.AccessKeyID
		}
		if rc.AccessKeySecret != "" || rc.AccessKeySecretFile != "" {
			merged.AccessKeySecret, merged.AccessKeySecretFile = rc.AccessKeySecret, rc.AccessKeySecretFile
		}
		if rc.SecurityToken != "" {
			merged.SecurityToken = rc.SecurityToken
		}
	}
	res := Resolved{AccessKeyID: merged.AccessKeyID, AccessKeySecret: merged.AccessKeySecret, SecurityToken: merged.SecurityToken}
	if merged.AccessKeySecretFile != "" {
		data, err := os.ReadFile(merged.AccessKeySecretFile)
		if err != nil {
			return res, fmt.Errorf("access_key_secret_file: %w", err)
		}
		res.AccessKeySecret = Secret(strings.TrimSpace(string(data)))
	}
	if res.AccessKeyID == "" {
		res.AccessKeyID = firstEnv(envAccessKeyID)
	}
	if res.AccessKeySecret == "" {
		res.AccessKeySecret = Secret(firstEnv(envAccessKeySecret))
	}
	if res.SecurityToken == "" {
		res.SecurityToken = Secret(firstEnv(envSecurityToken))
	}
	if res.AccessKeyID == "" || res.AccessKeySecret == "" {
		return res, errors.New("no AccessKey: set credentials.access_key_id and access_key_secret (or access_key_secret_file), or ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET (or SLS_AK_ID/SLS_AK_KEY)")
	}
	return res, nil
}
