// Where temporary credentials come from: the sts_token_file reader, and credentials-go's providers built with our endpoints and timeouts, alone or as the default chain.
package credentials

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/aliyun/credentials-go/credentials/providers"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/config"
)

// source fetches credentials, one call at a time (Provider serializes them).
type source interface {
	fetch() (value, error)
	// secrets are values its errors must never show, beyond the
	// credentials themselves.
	secrets() []string
}

func newSource(r config.Resolved) source {
	opts, metadataOpts := httpOptions(r, r.ProxyURL), httpOptions(r, r.MetadataProxyURL)
	switch r.Type {
	case config.TypeSTSTokenFile:
		return &tokenFile{path: r.TokenFile}
	case config.TypeECSRAMRole:
		return &goSource{build: func() (providers.CredentialsProvider, error) {
			return providers.NewECSRAMRoleCredentialsProviderBuilder().
				WithRoleName(r.RoleName).
				WithDisableIMDSv1(r.DisableIMDSv1).
				WithHttpOptions(metadataOpts).
				Build()
		}}
	case config.TypeOIDCRoleARN:
		return &goSource{oidcTokenFile: r.OIDCTokenFile, build: func() (providers.CredentialsProvider, error) {
			return providers.NewOIDCCredentialsProviderBuilder().
				WithRoleArn(r.RoleARN).
				WithOIDCProviderARN(r.OIDCProviderARN).
				WithOIDCTokenFilePath(r.OIDCTokenFile).
				WithRoleSessionName(r.RoleSessionName).
				WithDurationSeconds(int(r.SessionDuration / time.Second)).
				WithPolicy(r.Policy).
				WithSTSEndpoint(r.STSEndpoint).
				WithStsRegionId(r.STSRegion).
				WithEnableVpc(r.STSVPC).
				WithHttpOptions(opts).
				Build()
		}}
	case config.TypeRAMRoleARN:
		return &goSource{extra: []string{r.AccessKeySecret.Reveal(), r.SecurityToken.Reveal(), r.ExternalID.Reveal()},
			build: func() (providers.CredentialsProvider, error) {
				return providers.NewRAMRoleARNCredentialsProviderBuilder().
					WithAccessKeyId(r.AccessKeyID).
					WithAccessKeySecret(r.AccessKeySecret.Reveal()).
					WithSecurityToken(r.SecurityToken.Reveal()).
					WithRoleArn(r.RoleARN).
					WithRoleSessionName(r.RoleSessionName).
					WithDurationSeconds(int(r.SessionDuration / time.Second)).
					WithPolicy(r.Policy).
					WithExternalId(r.ExternalID.Reveal()).
					WithStsEndpoint(r.STSEndpoint).
					WithStsRegionId(r.STSRegion).
					WithEnableVpc(r.STSVPC).
					WithHttpOptions(opts).
					Build()
			}}
	case config.TypeDefault:
		return &chain{r: r, opts: opts, metadataOpts: metadataOpts}
	}
	return &failing{err: fmt.Errorf("unknown credentials type %q", r.Type)}
}

// httpOptions bound each HTTP request credentials-go makes (a refresh may
// make up to three, for the instance metadata service) and route them
// through proxy when set.
func httpOptions(r config.Resolved, proxy string) *providers.HttpOptions {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = config.DefaultCredentialsTimeout
	}
	return &providers.HttpOptions{
		Proxy:          proxy,
		ConnectTimeout: int(max(timeout/4, 100*time.Millisecond) / time.Millisecond),
		ReadTimeout:    int(max(timeout/2, 100*time.Millisecond) / time.Millisecond),
	}
}

// goSource is one credentials-go provider, built on first use (building
// reads the environment and may fail).
type goSource struct {
	build         func() (providers.CredentialsProvider, error)
	p             providers.CredentialsProvider
	oidcTokenFile string   // its content is secret
	extra         []string // other secret values it holds
}

func (s *goSource) fetch() (value, error) {
	if s.p == nil {
		p, err := s.build()
		if err != nil {
			return value{}, err
		}
		s.p = p
	}
	c, err := s.p.GetCredentials()
	if err != nil {
		return value{}, err
	}
	if c == nil || c.AccessKeyId == "" || c.AccessKeySecret == "" {
		return value{}, errNoCredentials
	}
	return value{creds: sls.Credentials{AccessKeyID: c.AccessKeyId, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}}, nil
}

func (s *goSource) secrets() []string {
	out := append([]string(nil), s.extra...)
	if s.oidcTokenFile != "" {
		if data, err := readLimited(s.oidcTokenFile); err == nil {
			out = append(out, strings.TrimSpace(string(data)))
		}
	}
	return out
}

// tokenFile reads an sts_token_file again whenever its size, modification
// time or identity changes (a Kubernetes Secret volume swaps a symlink).
type tokenFile struct {
	path    string
	info    os.FileInfo // of the file last read
	current value
}

func (s *tokenFile) fetch() (value, error) {
	info, err := os.Stat(s.path)
	if err != nil {
		return value{}, err
	}
	if s.info != nil && os.SameFile(s.info, info) && info.Size() == s.info.Size() && info.ModTime().Equal(s.info.ModTime()) {
		return s.current, nil
	}
	data, err := readLimited(s.path)
	if err != nil {
		return value{}, err
	}
	tok, err := config.ParseSTSTokenFile(data)
	if err != nil {
		// Maybe caught half-written: the next check reads it again.
		return value{}, fmt.Errorf("%s: %w", s.path, err)
	}
	s.info = info
	s.current = value{
		creds:   sls.Credentials{AccessKeyID: tok.AccessKeyID, AccessKeySecret: tok.AccessKeySecret.Reveal(), SecurityToken: tok.SecurityToken.Reveal()},
		expires: tok.Expiration,
	}
	return s.current, nil
}

func (s *tokenFile) secrets() []string { return nil }

// readLimited reads a small credentials file.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<10))
}

// chain is the Alibaba Cloud default credential chain, in credentials-go's
// order (environment AccessKey or STS token, RRSA's OIDC variables, the
// aliyun CLI's profile, ~/.alibabacloud/credentials, the ECS instance role,
// ALIBABA_CLOUD_CREDENTIALS_URI), built with the configured STS endpoint,
// proxy and timeouts. The first link that answers is kept; unlike
// credentials-go's own chain, a chain that has never answered tries every
// link again.
type chain struct {
	links []chainLink
	used  *chainLink
	built bool
	r     config.Resolved
	// opts are for STS, metadataOpts for the ECS metadata service.
	opts, metadataOpts *providers.HttpOptions
}

type chainLink struct {
	name string
	src  *goSource
}

// build makes the links whose settings are present, as credentials-go does.
func (c *chain) build() {
	c.built = true
	add := func(name string, p providers.CredentialsProvider, err error, oidcFile string, extra ...string) {
		if err == nil {
			c.links = append(c.links, chainLink{name: name, src: &goSource{p: p, oidcTokenFile: oidcFile, extra: extra}})
		}
	}
	env, err := providers.NewEnvironmentVariableCredentialsProviderBuilder().Build()
	add("environment", env, err, "", os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"), os.Getenv("ALIBABA_CLOUD_SECURITY_TOKEN"))
	oidc, err := providers.NewOIDCCredentialsProviderBuilder().
		WithRoleSessionName(config.DefaultRoleSessionName).
		WithSTSEndpoint(c.r.STSEndpoint).
		WithStsRegionId(c.r.STSRegion).
		WithEnableVpc(c.r.STSVPC).
		WithHttpOptions(c.opts).
		Build()
	add("oidc_role_arn", oidc, err, os.Getenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE"))
	cli, err := providers.NewCLIProfileCredentialsProviderBuilder().Build()
	add("cli_profile", cli, err, "")
	profile, err := providers.NewProfileCredentialsProviderBuilder().Build()
	add("profile", profile, err, "")
	ecs, err := providers.NewECSRAMRoleCredentialsProviderBuilder().
		WithDisableIMDSv1(c.r.DisableIMDSv1).
		WithHttpOptions(c.metadataOpts).
		Build()
	add("ecs_ram_role", ecs, err, "")
	if os.Getenv("ALIBABA_CLOUD_CREDENTIALS_URI") != "" {
		uri, err := providers.NewURLCredentialsProviderBuilder().WithHttpOptions(c.opts).Build()
		add("credentials_uri", uri, err, "")
	}
}

func (c *chain) fetch() (value, error) {
	if !c.built {
		c.build()
	}
	if c.used != nil {
		v, err := c.used.src.fetch()
		if err != nil {
			return v, &safeError{c.used.name + ": " + sanitizeText(err.Error(), c.used.src.secrets())}
		}
		return v, nil
	}
	var errs []string
	for i := range c.links {
		l := &c.links[i]
		v, err := l.src.fetch()
		if err == nil {
			c.used = l
			return v, nil
		}
		errs = append(errs, l.name+": "+sanitizeText(err.Error(), l.src.secrets()))
	}
	if len(errs) == 0 {
		return value{}, errors.New("no link of the default chain is configured (no AccessKey or OIDC variables, no profile, instance metadata disabled)")
	}
	return value{}, &safeError{"no link of the default chain answered: " + strings.Join(errs, "; ")}
}

func (c *chain) secrets() []string {
	var out []string
	for _, l := range c.links {
		out = append(out, l.src.secrets()...)
	}
	return out
}

// failing is a source that cannot work.
type failing struct{ err error }

func (f *failing) fetch() (value, error) { return value{}, f.err }
func (f *failing) secrets() []string     { return nil }
