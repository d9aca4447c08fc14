// The committed dashboard JSON must be what the generator produces, and query every panel it shows.
package dashboards

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommittedDashboardIsUpToDate(t *testing.T) {
	want, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Base(File))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `make dashboards` and commit the result", File)
	}
}

func TestEveryPanelHasAQueryAndEveryVariableIsDefined(t *testing.T) {
	out, _ := JSON()
	panels, variables, err := Queries(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(panels) != 11 {
		t.Errorf("%d panels with queries, want 11", len(panels))
	}
	for _, name := range []string{"job", "region", "project", "logstore"} {
		if variables[name] == "" {
			t.Errorf("variable %s missing", name)
		}
	}
	for title, exprs := range panels {
		for _, e := range exprs {
			for _, v := range []string{"$job", "$region", "$project", "$logstore"} {
				if !strings.Contains(e, v) {
					t.Errorf("panel %q query does not filter by %s: %s", title, v, e)
				}
			}
		}
	}
}
