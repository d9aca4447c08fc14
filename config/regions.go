// Regions, projects and logstores: the schema and its validation, and how each becomes a consumed target.
package config

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Region is one SLS region endpoint and the projects read through it.
type Region struct {
	Name     string `yaml:"name"`
	Endpoint string `yaml:"endpoint"`
	ProxyURL string `yaml:"proxy_url"`
	// Compression asks SLS for lz4 (default) or zstd pulls; zstd cuts the
	// cross-region traffic SLS bills, at more CPU to decompress.
	Compression string       `yaml:"compression"`
	Credentials *Credentials `yaml:"credentials"`
	Projects    []Project    `yaml:"projects"`
}

// Project lists the logstores read in one project: names, or globs that
// discovery resolves by listing the project's logstores.
type Project struct {
	Name      string   `yaml:"name"`
	Logstores []string `yaml:"logstores"`
	// Exclude drops discovered logstores matching any of these globs.
	Exclude []string `yaml:"exclude"`
}

// IsLogstorePattern reports whether a logstores entry is a glob
// (path.Match syntax) rather than a name.
func IsLogstorePattern(entry string) bool { return strings.ContainsAny(entry, "*?[") }

// Discovery is a project whose logstores are found by listing it.
type Discovery struct {
	Target   Target   // the project's settings; Logstore is empty
	Patterns []string // globs of logstore names
	Exclude  []string
	Named    []string // logstores also listed by name: consumed as such
}

// Key identifies a discovery: region/project.
func (d Discovery) Key() string { return d.Target.Region + "/" + d.Target.Project }

// Matches reports whether a listed logstore is one to consume.
func (d Discovery) Matches(logstore string) bool {
	for _, g := range d.Exclude {
		if ok, _ := path.Match(g, logstore); ok {
			return false
		}
	}
	if slices.Contains(d.Named, logstore) {
		return false
	}
	for _, g := range d.Patterns {
		if ok, _ := path.Match(g, logstore); ok {
			return true
		}
	}
	return false
}

// Discoveries lists the projects with logstore patterns. The config must be validated.
func (c *Config) Discoveries() []Discovery {
	var out []Discovery
	for i := range c.Regions {
		r := &c.Regions[i]
		creds, _ := c.credentialsFor(r) // checked by validate
		for _, p := range r.Projects {
			d := Discovery{Target: Target{Region: r.Name, Endpoint: r.Endpoint, ProxyURL: r.ProxyURL, Compression: r.Compression, Project: p.Name, Credentials: creds},
				Exclude: p.Exclude}
			for _, l := range p.Logstores {
				if IsLogstorePattern(l) {
					d.Patterns = append(d.Patterns, l)
				} else {
					d.Named = append(d.Named, l)
				}
			}
			if len(d.Patterns) > 0 {
				out = append(out, d)
			}
		}
	}
	return out
}

var (
	endpointRE  = regexp.MustCompile(`^(?:https?://)?[A-Za-z0-9.-]+(?::\d+)?$`)
	regionFromE = regexp.MustCompile(`^(?:https?://)?([a-z0-9-]+?)(?:-intranet|-vpc|-share)?\.(?:log|sls)\.aliyuncs\.com(?::\d+)?$`)
)

func (c *Config) validateRegions(at locate) error {
	if len(c.Regions) == 0 {
		return at("regions", "at least one region is required")
	}
	seenTargets := map[string]string{}
	seenPatterns := map[string]string{} // region/project -> where its patterns are
	for i := range c.Regions {
		r := &c.Regions[i]
		rpath := fmt.Sprintf("regions[%d]", i)
		if !endpointRE.MatchString(r.Endpoint) {
			return at(rpath+".endpoint", "regions[%d]: endpoint %q must be a host name or IP with optional port and http(s):// prefix", i, r.Endpoint)
		}
		if r.Name == "" {
			r.Name = RegionFromEndpoint(r.Endpoint)
		}
		if r.ProxyURL != "" {
			u, err := url.Parse(r.ProxyURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return at(rpath+".proxy_url", "region %s: proxy_url %q must be an http(s) URL", r.Name, r.ProxyURL)
			}
		}
		switch r.Compression {
		case "":
			r.Compression = "lz4"
		case "lz4", "zstd":
		default:
			return at(rpath+".compression", "region %s: compression %q must be lz4 or zstd", r.Name, r.Compression)
		}
		if r.Credentials != nil {
			if err := r.Credentials.validate(c.Credentials.kind()); err != nil {
				return at(blockPath(rpath+".credentials", r.Credentials, err.(*credentialsError).field), "region %s: credentials: %v", r.Name, err)
			}
		}
		if len(r.Projects) == 0 {
			return at(rpath, "region %s: at least one project is required", r.Name)
		}
		for j, p := range r.Projects {
			ppath := fmt.Sprintf("%s.projects[%d]", rpath, j)
			if !nameRE.MatchString(p.Name) {
				return at(ppath+".name", "region %s: project name %q is invalid", r.Name, p.Name)
			}
			if len(p.Logstores) == 0 {
				return at(ppath+".logstores", "region %s project %s: at least one logstore is required", r.Name, p.Name)
			}
			for k, g := range p.Exclude {
				if _, err := path.Match(g, ""); err != nil || strings.Contains(g, "/") {
					return at(fmt.Sprintf("%s.exclude[%d]", ppath, k), "region %s project %s: exclude %q is not a valid glob of logstore names", r.Name, p.Name, g)
				}
			}
			for k, l := range p.Logstores {
				if IsLogstorePattern(l) {
					if _, err := path.Match(l, ""); err != nil || strings.Contains(l, "/") {
						return at(fmt.Sprintf("%s.logstores[%d]", ppath, k), "region %s project %s: logstore pattern %q is not a valid glob of logstore names (*, ?, [a-z])", r.Name, p.Name, l)
					}
					// One listing per project: patterns in two entries of
					// the same project would have one silently unwatched.
					key := r.Name + "/" + p.Name
					if prev, ok := seenPatterns[key]; ok && !strings.HasPrefix(prev, ppath+".") {
						return at(fmt.Sprintf("%s.logstores[%d]", ppath, k), "project %s has logstore patterns in two entries (first at %s): put them in one entry", key, prev)
					}
					if _, ok := seenPatterns[key]; !ok {
						seenPatterns[key] = fmt.Sprintf("%s.logstores[%d]", ppath, k)
					}
					continue
				}
				if !nameRE.MatchString(l) {
					return at(fmt.Sprintf("%s.logstores[%d]", ppath, k), "region %s project %s: logstore name %q is invalid", r.Name, p.Name, l)
				}
				key := r.Name + "/" + p.Name + "/" + l
				if prev, ok := seenTargets[key]; ok {
					return at(fmt.Sprintf("%s.logstores[%d]", ppath, k), "logstore %s is listed twice (first at %s)", key, prev)
				}
				seenTargets[key] = fmt.Sprintf("%s.logstores[%d]", ppath, k)
			}
		}
		if _, err := c.credentialsFor(r); err != nil && !c.skipCredentials {
			return c.regionCredentialsError(at, i, err)
		}
	}
	return nil
}

// RegionFromEndpoint derives a region label: "cn-hangzhou" from
// cn-hangzhou.log.aliyuncs.com (or -intranet/-vpc variants), otherwise the
// endpoint's host and port.
func RegionFromEndpoint(endpoint string) string {
	if m := regionFromE.FindStringSubmatch(endpoint); m != nil {
		return m[1]
	}
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	return host
}

// IsIPEndpoint reports whether an endpoint is an IP literal, which the
// exporter dials directly instead of resolving <project>.<endpoint>.
func IsIPEndpoint(endpoint string) bool {
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return net.ParseIP(host) != nil
}

// Target is one logstore to consume, with everything needed to reach it.
type Target struct {
	Region      string
	Endpoint    string
	ProxyURL    string
	Compression string // lz4 or zstd
	Project     string
	Logstore    string
	Credentials Resolved
}

// Key identifies a target: region/project/logstore.
func (t Target) Key() string { return t.Region + "/" + t.Project + "/" + t.Logstore }

// Targets lists every logstore configured by name. The config must be validated.
func (c *Config) Targets() []Target {
	var out []Target
	for i := range c.Regions {
		r := &c.Regions[i]
		creds, _ := c.credentialsFor(r) // checked by validate
		for _, p := range r.Projects {
			for _, l := range p.Logstores {
				if IsLogstorePattern(l) {
					continue // found by discovery
				}
				out = append(out, Target{Region: r.Name, Endpoint: r.Endpoint, ProxyURL: r.ProxyURL, Compression: r.Compression, Project: p.Name, Logstore: l, Credentials: creds})
			}
		}
	}
	return out
}
