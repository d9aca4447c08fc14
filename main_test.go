// The default consumer name: hostname plus the listen port.
package main

import (
	"os"
	"testing"
)

func TestDefaultConsumerName(t *testing.T) {
	host, _ := os.Hostname()
	for addrs, want := range map[string]string{
		"":               host + "-10290",
		":9999":          host + "-9999",
		"[::1]:8080":     host + "-8080",
		"vsock://:7070":  host + "-7070",
		"not-an-address": host + "-10290",
	} {
		var list []string
		if addrs != "" {
			list = []string{addrs}
		}
		if got := defaultConsumerName(list); got != want {
			t.Errorf("defaultConsumerName(%q) = %q, want %q", addrs, got, want)
		}
	}
}
