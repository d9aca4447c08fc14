// Command gen writes the generated Grafana dashboard to dashboards/sls_keyword_exporter.json (run by `make dashboards`).
package main

import (
	"fmt"
	"os"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/dashboards"
)

func main() {
	out, err := dashboards.JSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, "building dashboard:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(dashboards.File, out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("wrote", dashboards.File)
}
