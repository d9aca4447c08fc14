// World: the regions, projects, logstores and AccessKeys an emulator serves, read from strict YAML.
package slsemu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// World describes everything an emulator serves.
type World struct {
	AccessKeys []AccessKey     `yaml:"access_keys"`
	Regions    []RegionConfig  `yaml:"regions"`
	Retention  RetentionConfig `yaml:"retention"`
	// MaxPullBytes caps the raw size of one PullLogs response (at least one
	// group is always returned). 0 means the default of 8 MiB.
	MaxPullBytes int `yaml:"max_pull_bytes"`
	// Traffic, when set, starts the built-in generator of web access logs.
	Traffic *TrafficConfig `yaml:"traffic"`
}

// RegionConfig is one SLS region, reached as <project>.<endpoint>.
type RegionConfig struct {
	Name     string          `yaml:"name"`
	Endpoint string          `yaml:"endpoint"`
	Projects []ProjectConfig `yaml:"projects"`
}

// ProjectConfig is one project; project names are unique across regions.
type ProjectConfig struct {
	Name      string           `yaml:"name"`
	Logstores []LogstoreConfig `yaml:"logstores"`
}

// LogstoreConfig is one logstore.
type LogstoreConfig struct {
	Name   string `yaml:"name"`
	Shards int    `yaml:"shards"`
	TTL    int    `yaml:"ttl"` // days, reported by GetLogStore only
	// AppendMeta adds the __receive_time__ and __client_ip__ tags on write
	// (SLS's "log public IP" switch). Defaults to true.
	AppendMeta *bool `yaml:"append_meta"`
}

// RetentionConfig bounds memory: whichever limit is hit first drops the oldest groups.
type RetentionConfig struct {
	MaxBytesPerShard int64         `yaml:"max_bytes_per_shard"` // raw bytes; default 64 MiB
	MaxAge           time.Duration `yaml:"max_age"`             // default 1h
}

const (
	defaultMaxPullBytes     = 8 << 20
	defaultMaxBytesPerShard = 64 << 20
	defaultMaxAge           = time.Hour
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,62}$`)

// LoadWorld reads a world from a YAML file; unknown keys are errors.
func LoadWorld(path string) (*World, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	w, err := ParseWorld(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// ParseWorld decodes and validates a world.
func ParseWorld(data []byte) (*World, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	w := &World{}
	if err := dec.Decode(w); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return w, nil
}

// Validate checks names and fills defaults.
func (w *World) Validate() error {
	if len(w.AccessKeys) == 0 {
		return errors.New("access_keys: at least one key is required")
	}
	for i, k := range w.AccessKeys {
		if k.ID == "" || k.Secret == "" {
			return fmt.Errorf("access_keys[%d]: id and secret are required", i)
		}
	}
	if w.Retention.MaxBytesPerShard == 0 {
		w.Retention.MaxBytesPerShard = defaultMaxBytesPerShard
	}
	if w.Retention.MaxAge == 0 {
		w.Retention.MaxAge = defaultMaxAge
	}
	if w.MaxPullBytes <= 0 {
		w.MaxPullBytes = defaultMaxPullBytes
	}
	endpoints := map[string]bool{}
	projects := map[string]bool{}
	for i := range w.Regions {
		r := &w.Regions[i]
		if r.Name == "" || r.Endpoint == "" {
			return fmt.Errorf("regions[%d]: name and endpoint are required", i)
		}
		if endpoints[r.Endpoint] {
			return fmt.Errorf("regions[%d]: endpoint %s is used twice", i, r.Endpoint)
		}
		endpoints[r.Endpoint] = true
		for j := range r.Projects {
			p := &r.Projects[j]
			if !nameRE.MatchString(p.Name) {
				return fmt.Errorf("region %s: project name %q is invalid", r.Name, p.Name)
			}
			if projects[p.Name] {
				return fmt.Errorf("region %s: project %s already exists (project names are unique across regions)", r.Name, p.Name)
			}
			projects[p.Name] = true
			logstores := map[string]bool{}
			for k := range p.Logstores {
				l := &p.Logstores[k]
				if !nameRE.MatchString(l.Name) {
					return fmt.Errorf("project %s: logstore name %q is invalid", p.Name, l.Name)
				}
				if logstores[l.Name] {
					return fmt.Errorf("project %s: logstore %s is listed twice", p.Name, l.Name)
				}
				logstores[l.Name] = true
				if l.Shards == 0 {
					l.Shards = 2
				}
				if l.Shards < 1 || l.Shards > 256 {
					return fmt.Errorf("project %s logstore %s: shards must be 1..256, got %d", p.Name, l.Name, l.Shards)
				}
				if l.TTL == 0 {
					l.TTL = 30
				}
			}
		}
	}
	if w.Traffic != nil {
		if err := w.Traffic.validate(); err != nil {
			return fmt.Errorf("traffic: %w", err)
		}
	}
	return nil
}

// Demo access key of the demo world.
const (
	DemoAccessKeyID     = "demo-ak"
	DemoAccessKeySecret = "demo-secret"
)

// DemoWorld is the seed scenario: three regions, four logstores, and the
// traffic generator writing web access logs with occasional bursts of 5xx.
func DemoWorld() *World {
	w := &World{
		AccessKeys: []AccessKey{{ID: DemoAccessKeyID, Secret: DemoAccessKeySecret}},
		Regions: []RegionConfig{
			{Name: "cn-hangzhou", Endpoint: "cn-hangzhou.log.aliyuncs.com", Projects: []ProjectConfig{
				{Name: "project1", Logstores: []LogstoreConfig{{Name: "logstore1", Shards: 2}}},
			}},
			{Name: "cn-beijing", Endpoint: "cn-beijing.log.aliyuncs.com", Projects: []ProjectConfig{
				{Name: "project2", Logstores: []LogstoreConfig{{Name: "logstore2", Shards: 2}}},
			}},
			{Name: "cn-qingdao", Endpoint: "cn-qingdao.log.aliyuncs.com", Projects: []ProjectConfig{
				{Name: "project3", Logstores: []LogstoreConfig{{Name: "logstore3_1", Shards: 2}, {Name: "logstore3_2", Shards: 2}}},
			}},
		},
		Traffic: &TrafficConfig{},
	}
	if err := w.Validate(); err != nil {
		panic(err) // the demo world is a constant
	}
	return w
}
