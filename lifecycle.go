// Lifecycle endpoints: /-/healthy, /-/ready and /-/reload, in Prometheus's style.
package main

import (
	"fmt"
	"net/http"
	"strings"
)

func healthyHandler(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
	fmt.Fprintln(w, "SLS Keyword Exporter is Healthy.")
}

// readyHandler answers 503 until every logstore's consumer has started or
// reported why it cannot.
func readyHandler(readiness interface{ Ready() (bool, []string) }) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		ready, pending := readiness.Ready()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "Service Unavailable: starting %s\n", strings.Join(pending, ", "))
			return
		}
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "SLS Keyword Exporter is Ready.")
	}
}

// reloadHandler asks the main loop to reload and reports its error.
func reloadHandler(reloadCh chan<- chan error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.WriteHeader(http.StatusMethodNotAllowed)
			fmt.Fprintln(w, "Only POST or PUT requests allowed")
			return
		}
		errCh := make(chan error)
		reloadCh <- errCh
		if err := <-errCh; err != nil {
			http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded.")
	}
}
