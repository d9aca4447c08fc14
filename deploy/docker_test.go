// Tests of the Dockerfile and .dockerignore: node_exporter's busybox image shape, the promu build path, port and user.
package deploy

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type instruction struct{ cmd, args string }

// parseDockerfile returns the instructions in order: comments and blank lines dropped,
// backslash continuations joined, the keyword upper-cased.
func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur += body + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
		cur = ""
	}
	return out
}

var labelRE = regexp.MustCompile(`([A-Za-z0-9_.-]+)="([^"]*)"`)

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(string(readFile(t, join(repoRoot, "Dockerfile"))))
	var cmds []string
	for _, in := range ins {
		cmds = append(cmds, in.cmd)
	}
	want := []string{"ARG", "ARG", "FROM", "LABEL", "LABEL", "ARG", "ARG", "COPY", "EXPOSE", "USER", "ENTRYPOINT"}
	if !slices.Equal(cmds, want) {
		t.Fatalf("instructions = %v, want %v", cmds, want)
	}
	// ARGs before FROM are not visible after it: both pairs must declare the same defaults.
	for _, i := range []int{0, 5} {
		if ins[i].args != `ARCH="amd64"` || ins[i+1].args != `OS="linux"` {
			t.Errorf("ARGs at %d = %q, %q; want ARCH=\"amd64\", OS=\"linux\"", i, ins[i].args, ins[i+1].args)
		}
	}
	checks := map[int]string{
		2:  "quay.io/prometheus/busybox-${OS}-${ARCH}:latest",
		7:  ".build/${OS}-${ARCH}/sls_keyword_exporter /bin/sls_keyword_exporter",
		8:  "10290",
		9:  "nobody",
		10: `[ "/bin/sls_keyword_exporter" ]`,
	}
	for i, args := range checks {
		if ins[i].args != args {
			t.Errorf("%s %s, want %s %s", ins[i].cmd, ins[i].args, ins[i].cmd, args)
		}
	}
	var entrypoint []string
	if err := json.Unmarshal([]byte(ins[10].args), &entrypoint); err != nil || !slices.Equal(entrypoint, []string{"/bin/sls_keyword_exporter"}) {
		t.Errorf("ENTRYPOINT %s is not the exec form [\"/bin/sls_keyword_exporter\"] (%v)", ins[10].args, err)
	}

	labels := map[string]string{}
	for _, m := range labelRE.FindAllStringSubmatch(ins[3].args+" "+ins[4].args, -1) {
		labels[m[1]] = m[2]
	}
	module := goModule(t)
	for key, value := range map[string]string{
		"maintainer":                        "The sls_keyword_exporter authors",
		"org.opencontainers.image.title":    "sls_keyword_exporter",
		"org.opencontainers.image.source":   "https://" + module,
		"org.opencontainers.image.url":      "https://" + module,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"io.prometheus.image.variant":       "busybox",
	} {
		if labels[key] != value {
			t.Errorf("LABEL %s=%q, want %q", key, labels[key], value)
		}
	}
	if labels["org.opencontainers.image.description"] == "" || labels["org.opencontainers.image.documentation"] == "" {
		t.Errorf("LABELs lack description or documentation: %v", labels)
	}
}

// The binary the Dockerfile copies is the one promu (and `make docker-binary`) builds.
func TestDockerfileCopiesPromuBinary(t *testing.T) {
	var promu struct {
		Build struct {
			Binaries []struct{ Name, Path string }
		}
	}
	if err := yaml.Unmarshal(readFile(t, join(repoRoot, ".promu.yml")), &promu); err != nil {
		t.Fatal(err)
	}
	if len(promu.Build.Binaries) == 0 || promu.Build.Binaries[0].Name != "sls_keyword_exporter" || promu.Build.Binaries[0].Path != "" {
		t.Fatalf(".promu.yml: first binary %+v, want sls_keyword_exporter built from the module root", promu.Build.Binaries)
	}
}

// .dockerignore keeps the build context to the binary: everything else is excluded.
func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(string(readFile(t, join(repoRoot, ".dockerignore"))), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	if want := []string{"*", "!.build/*/sls_keyword_exporter"}; !slices.Equal(patterns, want) {
		t.Fatalf(".dockerignore patterns = %q, want %q", patterns, want)
	}
	for _, path := range []string{".build/linux-amd64/sls_keyword_exporter", ".build/linux-arm64/sls_keyword_exporter"} {
		if ok, _ := filepath.Match(strings.TrimPrefix(patterns[1], "!"), path); !ok {
			t.Errorf("%s is not re-included by %q", path, patterns[1])
		}
	}
}

func goModule(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(string(readFile(t, join(repoRoot, "go.mod"))), "\n") {
		if m, ok := strings.CutPrefix(line, "module "); ok {
			return strings.TrimSpace(m)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}
