// Regions, projects and logstores: the schema and its validation, and how each becomes a consumed target.
package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
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

// Project lists the logstores read in one project.
type Project struct {
	Name      string   `yaml:"name"`
	Logstores []string `yaml:"logstores"`
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
	for i := range c.Regions {
		r := &c.Regions[i]
		path := fmt.Sprintf("regions[%d]", i)
		if !endpointRE.MatchString(r.Endpoint) {
			return at(path+".endpoint", "regions[%d]: endpoint %q must be a host name or IP with optional port and http(s):// prefix", i, r.Endpoint)
		}
		if r.Name == "" {
			r.Name = RegionFromEndpoint(r.Endpoint)
		}
		if r.ProxyURL != "" {
			u, err := url.Parse(r.ProxyURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return at(path+".proxy_url", "region %s: proxy_url %q must be an http(s) URL", r.Name, r.ProxyURL)
			}
		}
		switch r.Compression {
		case "":
			r.Compression = "lz4"
		case "lz4", "zstd":
		default:
			return at(path+".compression", "region %s: compression %q must be lz4 or zstd", r.Name, r.Compression)
		}
		if r.Credentials != nil {
			if err := r.Credentials.validate(); err != nil {
				return at(path+".credentials", "region %s: credentials: %v", r.Name, err)
			}
		}
		if len(r.Projects) == 0 {
			return at(path, "region %s: at least one project is required", r.Name)
		}
		for j, p := range r.Projects {
			ppath := fmt.Sprintf("%s.projects[%d]", path, j)
			if !nameRE.MatchString(p.Name) {
				return at(ppath+".name", "region %s: project name %q is invalid", r.Name, p.Name)
			}
			if len(p.Logstores) == 0 {
				return at(ppath+".logstores", "region %s project %s: at least one logstore is required", r.Name, p.Name)
			}
			for k, l := range p.Logstores {
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
		if _, err := c.credentialsFor(r); err != nil {
			return at(path, "region %s: %v", r.Name, err)
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
