// Credentials: a secret type that never prints, the credentials block (type and options) and how a region's credentials are resolved and checked.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"
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

// Credential types (credentials.type).
const (
	// TypeAccessKey is a fixed AccessKey, optionally with an STS token: the
	// default when type is empty.
	TypeAccessKey = "access_key"
	// TypeSTSTokenFile reads an STS token from a JSON file, again whenever
	// the file changes (see ParseSTSTokenFile).
	TypeSTSTokenFile = "sts_token_file"
	// TypeECSRAMRole is the RAM role of the ECS instance, from its metadata service.
	TypeECSRAMRole = "ecs_ram_role"
	// TypeOIDCRoleARN assumes a RAM role with an OIDC token (RRSA on ACK).
	TypeOIDCRoleARN = "oidc_role_arn"
	// TypeRAMRoleARN assumes a RAM role with an AccessKey.
	TypeRAMRoleARN = "ram_role_arn"
	// TypeDefault is the Alibaba Cloud default credential chain.
	TypeDefault = "default"
)

// credentialTypes lists the types in the order errors name them.
var credentialTypes = []string{TypeAccessKey, TypeSTSTokenFile, TypeECSRAMRole, TypeOIDCRoleARN, TypeRAMRoleARN, TypeDefault}

// Defaults and bounds of the options of temporary credentials.
const (
	DefaultCredentialsTimeout = 10 * time.Second
	DefaultSessionDuration    = time.Hour
	DefaultRoleSessionName    = "sls_keyword_exporter"
	minSessionDuration        = 15 * time.Minute
	maxSessionDuration        = 12 * time.Hour
)

// allowedFields are the keys each type accepts besides type.
var allowedFields = map[string][]string{
	TypeAccessKey:    {"access_key_id", "access_key_secret", "access_key_secret_file", "security_token"},
	TypeSTSTokenFile: {"token_file"},
	TypeECSRAMRole:   {"role_name", "disable_imds_v1", "metadata_proxy_url", "timeout"},
	TypeOIDCRoleARN: {"role_arn", "oidc_provider_arn", "oidc_token_file", "role_session_name", "session_duration", "policy",
		"sts_endpoint", "sts_region", "sts_vpc", "proxy_url", "timeout"},
	TypeRAMRoleARN: {"access_key_id", "access_key_secret", "access_key_secret_file", "security_token",
		"role_arn", "role_session_name", "session_duration", "policy", "external_id",
		"sts_endpoint", "sts_region", "sts_vpc", "proxy_url", "timeout"},
	TypeDefault: {"disable_imds_v1", "sts_endpoint", "sts_region", "sts_vpc", "proxy_url", "metadata_proxy_url", "timeout"},
}

// Environment variables read when the config leaves a credential empty: the
// Alibaba Cloud convention first, then the seed monitor's names.
var (
	envAccessKeyID     = []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "SLS_AK_ID"}
	envAccessKeySecret = []string{"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "SLS_AK_KEY"}
	envSecurityToken   = []string{"ALIBABA_CLOUD_SECURITY_TOKEN"}
	// What ack-pod-identity-webhook injects for RRSA.
	envRoleARN         = []string{"ALIBABA_CLOUD_ROLE_ARN"}
	envOIDCProviderARN = []string{"ALIBABA_CLOUD_OIDC_PROVIDER_ARN"}
	envOIDCTokenFile   = []string{"ALIBABA_CLOUD_OIDC_TOKEN_FILE"}
	envRoleSessionName = []string{"ALIBABA_CLOUD_ROLE_SESSION_NAME"}
	envECSRoleName     = []string{"ALIBABA_CLOUD_ECS_METADATA"}
)

func firstEnv(names []string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// Resolved is a region's credentials with the environment and files
// applied: for access_key a usable AccessKey, for the other types what the
// provider needs to fetch temporary credentials. It is comparable: equal
// values share one provider. Its String hides every secret.
type Resolved struct {
	// Type is one of the Type constants; empty means access_key.
	Type string

	// access_key, and the AccessKey ram_role_arn assumes the role with.
	AccessKeyID     string
	AccessKeySecret Secret
	SecurityToken   Secret

	// sts_token_file.
	TokenFile string

	// ecs_ram_role (and the default chain's instance role).
	RoleName      string // empty: discovered from the metadata service
	DisableIMDSv1 bool

	// oidc_role_arn and ram_role_arn.
	RoleARN         string
	RoleSessionName string
	SessionDuration time.Duration
	Policy          string
	ExternalID      Secret
	OIDCProviderARN string
	OIDCTokenFile   string

	// Where the STS and metadata-service calls go, and their bound.
	STSEndpoint      string // host[:port]; STS is always reached over HTTPS
	STSRegion        string
	STSVPC           bool
	ProxyURL         string // for STS
	MetadataProxyURL string // for the ECS metadata service
	Timeout          time.Duration
}

// Temporary reports whether the credentials expire and must be refreshed.
func (r Resolved) Temporary() bool { return r.Type != "" && r.Type != TypeAccessKey }

// Describe names the credentials without any secret, for logs and errors.
func (r Resolved) Describe() string {
	switch r.Type {
	case "", TypeAccessKey:
		return "access_key " + r.AccessKeyID
	case TypeSTSTokenFile:
		return "sts_token_file " + r.TokenFile
	case TypeECSRAMRole:
		if r.RoleName == "" {
			return "ecs_ram_role (role from the metadata service)"
		}
		return "ecs_ram_role " + r.RoleName
	case TypeOIDCRoleARN, TypeRAMRoleARN:
		return r.Type + " " + r.RoleARN
	}
	return r.Type
}

func (r Resolved) String() string {
	if r.Temporary() {
		return r.Describe()
	}
	return "AccessKeyId=" + r.AccessKeyID + " secret=" + redacted
}

// credentialsError is a problem with a credentials block; field is the key
// it concerns (empty: the block), for the error's line.
type credentialsError struct {
	field string
	msg   string
}

func (e *credentialsError) Error() string { return e.msg }

func credErr(field, format string, args ...any) *credentialsError {
	return &credentialsError{field: field, msg: fmt.Sprintf(format, args...)}
}

// yamlFields maps Credentials' YAML keys to their struct fields.
var yamlFields = func() map[string]int {
	out := map[string]int{}
	t := reflect.TypeFor[Credentials]()
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" {
			out[strings.Split(tag, ",")[0]] = i
		}
	}
	return out
}()

// setFields lists the keys set in a block (type aside), in schema order.
func (c *Credentials) setFields() []string {
	var out []string
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if name != "type" && !v.Field(i).IsZero() {
			out = append(out, name)
		}
	}
	return out
}

// kind is the block's type, access_key when empty.
func (c *Credentials) kind() string {
	if c.Type == "" {
		return TypeAccessKey
	}
	return c.Type
}

// STSToken is the content of an sts_token_file.
type STSToken struct {
	AccessKeyID     string
	AccessKeySecret Secret
	SecurityToken   Secret
	Expiration      time.Time // zero: not given
}

// ParseSTSTokenFile reads an sts_token_file: a JSON object with the
// fields of STS's Credentials,
//
//	{"AccessKeyId": "STS.…", "AccessKeySecret": "…", "SecurityToken": "…", "Expiration": "2026-01-02T15:04:05Z"}
//
// or a whole AssumeRole answer holding such an object under "Credentials".
// AccessKeyId and AccessKeySecret are required; SecurityToken and
// Expiration (RFC 3339) may be left out. Errors never quote the content.
func ParseSTSTokenFile(data []byte) (STSToken, error) {
	type fields struct {
		AccessKeyID     *string `json:"AccessKeyId"`
		AccessKeySecret *string `json:"AccessKeySecret"`
		SecurityToken   *string `json:"SecurityToken"`
		Expiration      *string `json:"Expiration"`
	}
	var doc struct {
		fields
		Credentials *fields `json:"Credentials"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			return STSToken{}, fmt.Errorf("not valid JSON (at byte %d)", syntax.Offset)
		case errors.As(err, &typ) && typ.Field != "":
			return STSToken{}, fmt.Errorf("%s must be a string", typ.Field[strings.LastIndexByte(typ.Field, '.')+1:])
		}
		return STSToken{}, errors.New("not a JSON object")
	}
	f := doc.fields
	if doc.Credentials != nil {
		f = *doc.Credentials
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return strings.TrimSpace(*p)
	}
	tok := STSToken{AccessKeyID: str(f.AccessKeyID), AccessKeySecret: Secret(str(f.AccessKeySecret)), SecurityToken: Secret(str(f.SecurityToken))}
	if tok.AccessKeyID == "" || tok.AccessKeySecret == "" {
		return STSToken{}, errors.New("AccessKeyId and AccessKeySecret are required")
	}
	if e := str(f.Expiration); e != "" {
		t, err := time.Parse(time.RFC3339, e)
		if err != nil {
			return STSToken{}, fmt.Errorf("Expiration %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", e)
		}
		tok.Expiration = t
	}
	return tok, nil
}

// validate checks what a block says on its own: a known type, only the keys
// its type uses, and well-formed values. A block without a type has the
// inherited one (a region's block, the top level's).
func (c *Credentials) validate(inherited string) error {
	if c.Type != "" && allowedFields[c.Type] == nil {
		return credErr("type", "type %q must be one of %s", c.Type, strings.Join(credentialTypes, ", "))
	}
	kind := c.Type
	if kind == "" {
		kind = inherited
	}
	return c.check(kind)
}

// check verifies the keys set in a block against type kind.
func (c *Credentials) check(kind string) error {
	allowed := allowedFields[kind]
	for _, f := range c.setFields() {
		if !contains(allowed, f) {
			return credErr(f, "%s does not apply to type %s (it takes %s)", f, kind, strings.Join(allowed, ", "))
		}
	}
	if c.AccessKeySecret != "" && c.AccessKeySecretFile != "" {
		return credErr("", "at most one of access_key_secret and access_key_secret_file may be set")
	}
	if c.STSEndpoint != "" && (c.STSRegion != "" || c.STSVPC) {
		return credErr("", "sts_endpoint excludes sts_region and sts_vpc (they choose the endpoint)")
	}
	if c.STSEndpoint != "" {
		host := strings.TrimPrefix(c.STSEndpoint, "https://")
		if !stsEndpointRE.MatchString(host) {
			return credErr("sts_endpoint", "sts_endpoint %q must be a host name or IP with optional port (STS is reached over HTTPS)", c.STSEndpoint)
		}
	}
	if c.STSRegion != "" && !stsRegionRE.MatchString(c.STSRegion) {
		return credErr("sts_region", "sts_region %q must be a region id such as cn-hangzhou", c.STSRegion)
	}
	for key, v := range map[string]string{"proxy_url": c.ProxyURL, "metadata_proxy_url": c.MetadataProxyURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return credErr(key, "%s %q must be an http(s) URL", key, v)
		}
	}
	if c.RoleSessionName != "" && !roleSessionNameRE.MatchString(c.RoleSessionName) {
		return credErr("role_session_name", "role_session_name %q must be 2-64 letters, digits or . @ - _", c.RoleSessionName)
	}
	if c.SessionDuration != 0 && (c.SessionDuration < minSessionDuration || c.SessionDuration > maxSessionDuration || c.SessionDuration%time.Second != 0) {
		return credErr("session_duration", "session_duration must be whole seconds from %s to %s, got %s", minSessionDuration, maxSessionDuration, c.SessionDuration)
	}
	if c.Timeout != 0 && (c.Timeout < time.Second || c.Timeout > 2*time.Minute) {
		return credErr("timeout", "timeout must be from 1s to 2m, got %s", c.Timeout)
	}
	if c.RoleARN != "" && !strings.HasPrefix(c.RoleARN, "acs:ram::") {
		return credErr("role_arn", "role_arn %q must look like acs:ram::<account>:role/<name>", c.RoleARN)
	}
	if c.OIDCProviderARN != "" && !strings.HasPrefix(c.OIDCProviderARN, "acs:ram::") {
		return credErr("oidc_provider_arn", "oidc_provider_arn %q must look like acs:ram::<account>:oidc-provider/<name>", c.OIDCProviderARN)
	}
	return nil
}

var (
	stsEndpointRE     = regexp.MustCompile(`^[A-Za-z0-9.-]+(?::\d+)?$`)
	stsRegionRE       = regexp.MustCompile(`^[a-z0-9-]+$`)
	roleSessionNameRE = regexp.MustCompile(`^[\w.@-]{2,64}$`)
)

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// effective merges a region's block over the top-level one. A region block
// without a type, or with the top-level's type, overrides it key by key; a
// region block of another type stands alone. fromRegion tells which block
// the keys of the result were set in, for the error's line.
func (c *Config) effective(r *Region) (merged Credentials, fromRegion func(field string) bool) {
	top := c.Credentials
	rc := r.Credentials
	if rc == nil {
		return top, func(string) bool { return false }
	}
	if rc.Type != "" && rc.kind() != top.kind() {
		return *rc, func(string) bool { return true }
	}
	merged = top
	mv, rv := reflect.ValueOf(&merged).Elem(), reflect.ValueOf(rc).Elem()
	for i := range mv.NumField() {
		if !rv.Field(i).IsZero() {
			mv.Field(i).Set(rv.Field(i))
		}
	}
	// A region's secret, from the file or the config, replaces both of the top level's.
	if rc.AccessKeySecret != "" || rc.AccessKeySecretFile != "" {
		merged.AccessKeySecret, merged.AccessKeySecretFile = rc.AccessKeySecret, rc.AccessKeySecretFile
	}
	return merged, func(field string) bool {
		i, ok := yamlFields[field]
		return ok && !rv.Field(i).IsZero() || field == "" || field == "type" && rc.Type != ""
	}
}

// credentialsFor resolves a region's credentials: the merged block, then
// files and environment variables for what it leaves empty, then what each
// type needs.
func (c *Config) credentialsFor(r *Region) (Resolved, error) {
	merged, _ := c.effective(r)
	kind := merged.kind()
	if err := merged.check(kind); err != nil {
		return Resolved{}, err
	}
	res := Resolved{
		AccessKeyID: merged.AccessKeyID, AccessKeySecret: merged.AccessKeySecret, SecurityToken: merged.SecurityToken,
	}
	if kind != TypeAccessKey {
		res.Type = kind
	}
	needs := func(field string, env []string) error {
		if len(env) == 0 {
			return credErr(field, "type %s needs %s", kind, field)
		}
		return credErr(field, "type %s needs %s (or %s)", kind, field, strings.Join(env, " or "))
	}
	switch kind {
	case TypeAccessKey, TypeRAMRoleARN:
		if merged.AccessKeySecretFile != "" {
			data, err := os.ReadFile(merged.AccessKeySecretFile)
			if err != nil {
				return res, credErr("access_key_secret_file", "access_key_secret_file: %v", err)
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
			if kind == TypeRAMRoleARN {
				return res, credErr("access_key_id", "type ram_role_arn needs the AccessKey that assumes the role: access_key_id and access_key_secret (or access_key_secret_file), or ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET")
			}
			return res, errors.New("no AccessKey: set credentials.access_key_id and access_key_secret (or access_key_secret_file), or ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET (or SLS_AK_ID/SLS_AK_KEY)")
		}
	}
	if kind == TypeAccessKey {
		return res, nil
	}

	res.TokenFile = merged.TokenFile
	res.RoleName, res.DisableIMDSv1 = merged.RoleName, merged.DisableIMDSv1
	res.RoleARN, res.RoleSessionName, res.SessionDuration = merged.RoleARN, merged.RoleSessionName, merged.SessionDuration
	res.Policy, res.ExternalID = merged.Policy, merged.ExternalID
	res.OIDCProviderARN, res.OIDCTokenFile = merged.OIDCProviderARN, merged.OIDCTokenFile
	res.STSEndpoint, res.STSRegion, res.STSVPC = strings.TrimPrefix(merged.STSEndpoint, "https://"), merged.STSRegion, merged.STSVPC
	if res.STSVPC && res.STSRegion == "" {
		return res, credErr("sts_vpc", "sts_vpc needs sts_region (the VPC endpoint is sts-vpc.<region>.aliyuncs.com)")
	}
	res.ProxyURL, res.MetadataProxyURL, res.Timeout = merged.ProxyURL, merged.MetadataProxyURL, merged.Timeout
	if res.Timeout == 0 {
		res.Timeout = DefaultCredentialsTimeout
	}

	switch kind {
	case TypeSTSTokenFile:
		if res.TokenFile == "" {
			return res, needs("token_file", nil)
		}
		data, err := os.ReadFile(res.TokenFile)
		if err != nil {
			return res, credErr("token_file", "token_file: %v", err)
		}
		if _, err := ParseSTSTokenFile(data); err != nil {
			return res, credErr("token_file", "token_file %s: %v", res.TokenFile, err)
		}
	case TypeECSRAMRole:
		if res.RoleName == "" {
			res.RoleName = firstEnv(envECSRoleName)
		}
	case TypeOIDCRoleARN:
		if res.RoleARN == "" {
			res.RoleARN = firstEnv(envRoleARN)
		}
		if res.RoleARN == "" {
			return res, needs("role_arn", envRoleARN)
		}
		if res.OIDCProviderARN == "" {
			res.OIDCProviderARN = firstEnv(envOIDCProviderARN)
		}
		if res.OIDCProviderARN == "" {
			return res, needs("oidc_provider_arn", envOIDCProviderARN)
		}
		if res.OIDCTokenFile == "" {
			res.OIDCTokenFile = firstEnv(envOIDCTokenFile)
		}
		if res.OIDCTokenFile == "" {
			return res, needs("oidc_token_file", envOIDCTokenFile)
		}
		if _, err := os.Stat(res.OIDCTokenFile); err != nil {
			return res, credErr("oidc_token_file", "oidc_token_file: %v", err)
		}
	case TypeRAMRoleARN:
		if res.RoleARN == "" {
			return res, needs("role_arn", nil)
		}
	}
	if kind == TypeOIDCRoleARN || kind == TypeRAMRoleARN {
		if res.RoleSessionName == "" {
			res.RoleSessionName = firstEnv(envRoleSessionName)
		}
		if res.RoleSessionName == "" {
			res.RoleSessionName = DefaultRoleSessionName
		}
		if !roleSessionNameRE.MatchString(res.RoleSessionName) {
			return res, credErr("role_session_name", "role_session_name %q (from ALIBABA_CLOUD_ROLE_SESSION_NAME) must be 2-64 letters, digits or . @ - _", res.RoleSessionName)
		}
		if res.SessionDuration == 0 {
			res.SessionDuration = DefaultSessionDuration
		}
	}
	return res, nil
}

// regionCredentialsError locates a credentials problem of region i: at the
// key in the block that set it (the region's or the top level's), else at
// that block's type (or the block itself).
func (c *Config) regionCredentialsError(at locate, i int, err error) *Error {
	r := &c.Regions[i]
	var ce *credentialsError
	if !errors.As(err, &ce) {
		return at(fmt.Sprintf("regions[%d]", i), "region %s: %v", r.Name, err)
	}
	base, block := "credentials", &c.Credentials
	if _, fromRegion := c.effective(r); r.Credentials != nil && fromRegion(ce.field) {
		base, block = fmt.Sprintf("regions[%d].credentials", i), r.Credentials
	}
	return at(blockPath(base, block, ce.field), "region %s: credentials: %s", r.Name, ce.msg)
}

// blockPath is the path of field in a credentials block when it is set
// there, else of the block's type.
func blockPath(base string, block *Credentials, field string) string {
	if field == "" {
		return base
	}
	if i, ok := yamlFields[field]; ok && !reflect.ValueOf(block).Elem().Field(i).IsZero() {
		return base + "." + field
	}
	return base + ".type"
}
