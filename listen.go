// Binding the listen addresses before anything else starts, then serving them through exporter-toolkit.
package main

import (
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/exporter-toolkit/web"
)

// bindListeners opens the TCP listen addresses. Systemd sockets and vsock
// addresses are left to exporter-toolkit (nil listeners), which opens them
// itself when serving.
func bindListeners(flags *web.FlagConfig) ([]net.Listener, error) {
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		return nil, nil
	}
	var listeners []net.Listener
	for _, address := range *flags.WebListenAddresses {
		if strings.HasPrefix(address, "vsock://") {
			closeAll(listeners)
			return nil, nil
		}
		l, err := net.Listen("tcp", address)
		if err != nil {
			closeAll(listeners)
			return nil, err
		}
		listeners = append(listeners, l)
	}
	return listeners, nil
}

func closeAll(listeners []net.Listener) {
	for _, l := range listeners {
		_ = l.Close()
	}
}

// serve serves on the bound listeners (TLS and basic auth from
// --web.config.file), or lets exporter-toolkit bind when none were.
func serve(listeners []net.Listener, server *http.Server, flags *web.FlagConfig, logger *slog.Logger) error {
	if listeners == nil {
		return web.ListenAndServe(server, flags, logger)
	}
	return web.ServeMultiple(listeners, server, flags, logger)
}
