// Tests of the rules test runner: passing files, the exact diff of failing ones, the config's sample settings, mistakes in test files, and the shipped examples.
package rulescli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testRules is the rule file the tests below name.
const testRules = `rules:
  - name: http_5xx
    field: status
    regex: '^5\d{2}$'
    unless: [{field: path, regex: '^/healthz'}]
  - name: timeout
    field: "*"
    regex: timeout
    case_insensitive: true
  - name: hz_only
    field: status
    regex: '^5'
    logstores: ['cn-hangzhou/*/*']
  - name: login
    field: path
    regex: login
`

// writeFiles writes name -> content into a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runFiles runs RunTests on names in dir and returns its output with dir
// replaced by DIR.
func runFiles(t *testing.T, dir string, names ...string) (string, bool) {
	t.Helper()
	var paths []string
	for _, n := range names {
		paths = append(paths, filepath.Join(dir, n))
	}
	var out bytes.Buffer
	ok := RunTests(&out, paths)
	return strings.ReplaceAll(out.String(), dir, "DIR"), ok
}

func checkOutput(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestRulesTestPasses(t *testing.T) {
	dir := writeFiles(t, map[string]string{"rules.yml": testRules, "ok_test.yml": `rule_files: [rules.yml]
tests:
  - name: in hangzhou
    target: cn-hangzhou/web/nginx
    logs:
      - id: a
        fields: {status: 503, path: /login}
      - id: b
        fields: {status: 503, path: /healthz}
      - id: c
        topic: app
        tags: {host: web-1}
        fields: {status: 200, msg: upstream TIMEOUT}
    expect:
      http_5xx: {matches: [a], sample: path=/login status=503}
      timeout: {count: 1, sample: 'msg="upstream TIMEOUT" status=200'}
      hz_only: {matches: [a, b], sample: path=/healthz status=503}
      login: {matches: [a]}
  - name: in beijing, where hz_only does not apply
    target: cn-beijing/web/nginx
    logs:
      - fields: {status: 500, path: /}
      - fields: {status: 502, path: /}
        time: 1767225599
    expect:
      http_5xx: {matches: [0, 1], sample: path=/ status=500}
      hz_only: {count: 0}
  - name: without a target every rule applies
    logs:
      - fields: {status: 500}
    expect:
      http_5xx: {count: 1}
      hz_only: {count: 1}
`})
	got, ok := runFiles(t, dir, "ok_test.yml")
	checkOutput(t, got, `DIR/ok_test.yml: PASSED (3 tests, 6 logs)
rules test: 1 file PASSED (3 tests, 6 logs)
`)
	if !ok {
		t.Error("RunTests reported a failure")
	}
}

func TestRulesTestFailsWithADiffPerRuleAndLog(t *testing.T) {
	dir := writeFiles(t, map[string]string{"rules.yml": testRules, "ok_test.yml": `rule_files: [rules.yml]
tests:
  - logs: [{fields: {status: 200}}]
`, "broken_test.yml": `rule_files: [rules.yml]
tests:
  - name: passes
    logs: [{fields: {status: 200}}]
  - name: broken
    target: cn-beijing/web/nginx
    logs:
      - id: a
        fields: {status: 503, path: /login, token: abc}
      - id: b
        fields: {status: 503, path: /healthz}
      - id: c
        fields: {status: 200, msg: upstream TIMEOUT}
      - id: d
        time: 2026-01-01T00:00:00Z
        fields: {status: 500, path: /cart}
    expect:
      http_5xx:
        matches: [a, b]
        sample: path=/login status=503 token=***
      timeout:
        count: 2
      hz_only:
        count: 1
  - name: no match, no sample
    logs: [{fields: {status: 200}}]
    expect:
      timeout: {sample: msg=timeout}
`})
	got, ok := runFiles(t, dir, "ok_test.yml", "broken_test.yml")
	checkOutput(t, got, `DIR/ok_test.yml: PASSED (1 test, 1 log)
DIR/broken_test.yml: FAILED
  test "broken" (target cn-beijing/web/nginx):
    rule http_5xx:
      log b (path=/healthz status=503): expected a match, got none
      log d (path=/cart status=500): got a match, expected none
      sample:
        expected: path=/login status=503 token=***
        got:      path=/cart status=500
    rule timeout:
      count: expected 2, got 1
        matched log c (msg="upstream TIMEOUT" status=200)
    rule hz_only (does not apply to cn-beijing/web/nginx: its logstores are cn-hangzhou/*/*):
      count: expected 1, got 0
    rule login (not in expect: expected to match nothing):
      log a (path=/login status=503 token=***): got a match, expected none
  test "no match, no sample":
    rule timeout:
      sample:
        expected: msg=timeout
        got:      (no match, no sample)
rules test: 1 of 2 files FAILED
`)
	if ok {
		t.Error("RunTests reported success")
	}
}

// The config's sample settings (sample_fields, sample_max_length, redact)
// shape the samples, as on /metrics; the test file's rule files come after
// the config's rules and rule_files.
func TestRulesTestUsesTheConfigsSampleSettings(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.yml": `sample_max_length: 60
sample_fields: [status, msg, __tag__:host]
redact:
  keys: [session]
  patterns: [{regex: '\d{4}-\d{4}', replacement: '####'}]
credentials: {access_key_id: ak, access_key_secret: sk}
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    projects: [{name: web, logstores: [nginx]}]
rule_files: [rules.yml]
rules:
  - name: from_main
    field: msg
    regex: card
`,
		"rules.yml": testRules,
		"extra.yml": `rules:
  - name: extra
    field: session
    regex: .
    sample_fields: ["*"]
`,
		"cfg_test.yml": `config: main.yml
rule_files: [extra.yml]
tests:
  - name: samples
    target: cn-hangzhou/web/nginx
    logs:
      - tags: {host: web-1}
        fields: {status: 503, msg: card 1234-5678 declined, session: s-1, path: /pay}
    expect:
      from_main: {sample: '__tag__:host=web-1 msg="card #### declined" status=503'}
      http_5xx: {count: 1}
      hz_only: {count: 1}
      extra: {sample: 'msg="card #### declined" path=/pay session=*** status=503'}
  - name: a long sample is cut
    logs:
      - fields: {status: 200, msg: card 1234-5678 declined by the issuing bank after three attempts}
    expect:
      from_main: {sample: 'msg="card #### declined by the issuing bank after three attempts" status=200'}
`,
	})
	got, ok := runFiles(t, dir, "cfg_test.yml")
	// The second test's expectation is the whole log: the label is cut at
	// sample_max_length (60 bytes, the ellipsis included).
	checkOutput(t, got, `DIR/cfg_test.yml: FAILED
  test "a long sample is cut":
    rule from_main:
      sample:
        expected: msg="card #### declined by the issuing bank after three attempts" status=200
        got:      msg="card #### declined by the issuing bank after three a…
rules test: 1 of 1 file FAILED
`)
	if ok {
		t.Error("RunTests reported success")
	}
}

func TestRulesTestReportsMistakesInTestFiles(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"unknown key", "rule_files: [rules.yml]\ntests:\n  - logz: []\n",
			`line 3: field logz not found`},
		{"no tests", "rule_files: [rules.yml]\n", `no tests: list them under tests:`},
		{"empty file", "", `the file is empty`},
		{"no rules", "tests:\n  - logs: []\n", `no rules under test: name a config file (config:) and/or rule files (rule_files:)`},
		{"missing rule file", "rule_files: [nope.yml]\ntests:\n  - logs: []\n", `DIR/nope.yml: cannot read rule file: no such file or directory`},
		{"bad rule file", "rule_files: [bad.yml]\ntests:\n  - logs: []\n", `DIR/bad.yml:4: rule broken: invalid regex "(": error parsing regexp: missing closing ): ` + "`(`"},
		{"unknown rule", "rule_files: [rules.yml]\ntests:\n  - expect: {http_5xxx: {count: 0}}\n",
			`test "test 1": expect: no rule http_5xxx among the rules under test (http_5xx, timeout, hz_only, login)`},
		{"unknown id", "rule_files: [rules.yml]\ntests:\n  - logs: [{id: a}]\n    expect: {http_5xx: {matches: [b]}}\n",
			`test "test 1": expect: rule http_5xx: matches: no log has the id "b"`},
		{"empty expectation", "rule_files: [rules.yml]\ntests:\n  - expect: {http_5xx: {}}\n",
			`test "test 1": expect: rule http_5xx: give matches, count and/or sample`},
		{"duplicate id", "rule_files: [rules.yml]\ntests:\n  - logs: [{id: a}, {id: a}]\n",
			`test "test 1": two logs have the id "a"`},
		{"bad target", "rule_files: [rules.yml]\ntests:\n  - target: cn-hangzhou/web\n",
			`test "test 1" (target cn-hangzhou/web): target "cn-hangzhou/web" must be region/project/logstore`},
		{"bad time", "rule_files: [rules.yml]\ntests:\n  - logs: [{time: yesterday}]\n",
			`test "test 1": logs[0]: time "yesterday": want RFC 3339 (2026-01-02T15:04:05Z) or unix seconds`},
		{"nested fields", "rule_files: [rules.yml]\ntests:\n  - logs: [{fields: {a: [1]}}]\n",
			`line 3: "a": want a plain value (quote it if needed)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"rules.yml": testRules, "bad.yml": "rules:\n  - name: broken\n    field: msg\n    regex: '('\n", "x_test.yml": tc.file})
			got, ok := runFiles(t, dir, "x_test.yml")
			checkOutput(t, got, "DIR/x_test.yml: FAILED: "+tc.want+"\nrules test: 1 of 1 file FAILED\n")
			if ok {
				t.Error("RunTests reported success")
			}
		})
	}
}

// The project's own example rules pass their tests (make test runs them
// with the binary too).
func TestRulesTestShippedExamplesPass(t *testing.T) {
	files, err := filepath.Glob("../examples/rules/*_test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example tests: %v", err)
	}
	var out bytes.Buffer
	if !RunTests(&out, files) {
		t.Errorf("the shipped examples fail:\n%s", out.String())
	}
}

// TestRulesTestNeedsNoCredentials: a production config whose secret comes
// from a file and the environment of the machine that runs the exporter is
// tested on a machine that has neither (CI): nothing is sent to SLS.
func TestRulesTestNeedsNoCredentials(t *testing.T) {
	for _, env := range []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "SLS_AK_ID", "SLS_AK_KEY"} {
		t.Setenv(env, "")
	}
	dir := writeFiles(t, map[string]string{
		"prod.yml": `credentials: {access_key_secret_file: /run/secrets/sls-secret-that-is-not-here}
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou-intranet.log.aliyuncs.com
    credentials: {type: ecs_ram_role}
    projects: [{name: web, logstores: [nginx]}]
  - name: cn-beijing
    endpoint: cn-beijing.log.aliyuncs.com
    projects: [{name: api, logstores: [access]}]
rules:
  - {name: http_5xx, field: status, regex: '^5\d{2}$'}
`,
		"prod_test.yml": `config: prod.yml
tests:
  - name: a 503
    logs:
      - fields: {status: 503}
    expect:
      http_5xx: {count: 1}
`,
	})
	got, ok := runFiles(t, dir, "prod_test.yml")
	checkOutput(t, got, "DIR/prod_test.yml: PASSED (1 test, 1 log)\nrules test: 1 file PASSED (1 test, 1 log)\n")
	if !ok {
		t.Error("RunTests reported failure")
	}
}
