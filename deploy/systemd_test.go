// Tests of the systemd unit and its environment file: a small INI parser, the asserted keys, and `systemd-analyze verify`.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	unitPath = "systemd/sls_keyword_exporter.service"
	envPath  = "systemd/sls_keyword_exporter.env"
	unitBin  = "/usr/local/bin/sls_keyword_exporter"
)

// unit maps "Section.Key" to its values in order (systemd allows repeated keys).
type unit map[string][]string

// parseUnit reads systemd's INI dialect: [Section] headers, Key=Value lines, '#' and ';' comments,
// backslash continuations.
func parseUnit(t *testing.T, text string) unit {
	t.Helper()
	u := unit{}
	section, pending := "", ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			pending += body + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" || strings.TrimSpace(key) == "" {
			t.Fatalf("line %d: not a Key=Value in a section: %q", i+1, line)
		}
		k := section + "." + strings.TrimSpace(key)
		u[k] = append(u[k], strings.TrimSpace(value))
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, string(readFile(t, unitPath)))
	want := map[string]string{
		"Unit.Wants":                    "network-online.target",
		"Unit.After":                    "network-online.target",
		"Service.Type":                  "simple",
		"Service.User":                  "sls_keyword_exporter",
		"Service.Group":                 "sls_keyword_exporter",
		"Service.EnvironmentFile":       "-/etc/default/sls_keyword_exporter",
		"Service.ExecReload":            "/bin/kill -HUP $MAINPID",
		"Service.Restart":               "on-failure",
		"Service.RestartSec":            "1s",
		"Service.TimeoutStopSec":        "20s",
		"Service.NoNewPrivileges":       "yes",
		"Service.ProtectSystem":         "strict",
		"Service.ProtectHome":           "yes",
		"Service.PrivateTmp":            "yes",
		"Service.CapabilityBoundingSet": "",
		"Install.WantedBy":              "multi-user.target",
	}
	for k, v := range want {
		if got := u[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(u["Unit.Description"]) != 1 || len(u["Unit.Documentation"]) != 1 {
		t.Error("Description or Documentation missing")
	}

	if len(u["Service.ExecStart"]) != 1 {
		t.Fatalf("ExecStart %q, want one", u["Service.ExecStart"])
	}
	args := strings.Fields(u["Service.ExecStart"][0])
	if args[0] != unitBin || args[len(args)-1] != "$OPTIONS" {
		t.Errorf("ExecStart %q, want %s ... $OPTIONS", args, unitBin)
	}
	if f, _ := flagValue(args, "config.file"); f != "/etc/sls_keyword_exporter/config.yml" {
		t.Errorf("--config.file=%q, want /etc/sls_keyword_exporter/config.yml", f)
	}
	arg, _ := flagValue(args, "shutdown.timeout")
	shutdown, err := time.ParseDuration(arg)
	if err != nil {
		t.Fatalf("--shutdown.timeout=%q: %v", arg, err)
	}
	// systemd SIGKILLs after TimeoutStopSec: it must outlast the checkpoint flush and one 1s scrape.
	stop, _ := time.ParseDuration(u["Service.TimeoutStopSec"][0])
	if stop <= shutdown+time.Second {
		t.Errorf("TimeoutStopSec %s does not exceed --shutdown.timeout %s plus a 1s scrape", stop, shutdown)
	}
}

func TestSystemdEnvironmentFile(t *testing.T) {
	text := string(readFile(t, envPath))
	var keys []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("not KEY=VALUE: %q", line)
		}
		keys = append(keys, key)
		if strings.HasPrefix(key, "ALIBABA_CLOUD_") && !(strings.HasPrefix(value, "<") && strings.HasSuffix(value, ">")) {
			t.Errorf("%s holds %q, want a <placeholder>", key, value)
		}
	}
	if want := []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "OPTIONS"}; !slices.Equal(keys, want) {
		t.Errorf("variables %q, want %q", keys, want)
	}
	for _, s := range []string{"/etc/default/sls_keyword_exporter", "-m 0600"} {
		if !strings.Contains(text, s) {
			t.Errorf("the install guidance lacks %q", s)
		}
	}
}

// systemd-analyze verify checks every key and value. It exits 0 on unknown keys or bad values and
// only warns, so any output fails the test. ExecStart must name an existing executable: a copy of
// the unit points it at a stand-in.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd): the unit is checked by the parser only")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sls_keyword_exporter")
	writeFile(t, bin, "#!/bin/sh\nexit 0\n")
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	text := string(readFile(t, unitPath))
	if strings.Count(text, unitBin) != 1 {
		t.Fatalf("%s does not name %s exactly once", unitPath, unitBin)
	}
	copyPath := filepath.Join(dir, filepath.Base(unitPath))
	writeFile(t, copyPath, strings.Replace(text, unitBin, bin, 1))
	out, err := exec.CommandContext(t.Context(), analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
