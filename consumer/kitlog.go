// A go-kit logger for the SDK that writes into our slog stream: its info lines at debug, warnings and errors as such.
package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	kitlog "github.com/go-kit/log"
)

// NewKitLogger returns a go-kit logger (what the SDK's sls.Logger takes)
// that writes to logger. The SDK's info lines are chatty and are logged at
// debug; warnings and errors keep their level.
func NewKitLogger(logger *slog.Logger) kitlog.Logger {
	return &kitBridge{logger: logger}
}

type kitBridge struct {
	logger *slog.Logger
}

func (b *kitBridge) Log(keyvals ...any) error {
	lvl := slog.LevelDebug
	msg := ""
	attrs := make([]slog.Attr, 0, len(keyvals)/2)
	for i := 0; i+1 < len(keyvals); i += 2 {
		key := fmt.Sprint(keyvals[i])
		value := keyvals[i+1]
		switch key {
		case "level":
			lvl = kitLevel(value)
		case "msg":
			msg = fmt.Sprint(value)
		case "time", "ts", "caller":
		default:
			if key == "error" {
				key = "err"
			}
			attrs = append(attrs, slog.Any(key, value))
		}
	}
	if b.logger.Enabled(context.Background(), lvl) {
		b.logger.LogAttrs(context.Background(), lvl, "sls sdk: "+msg, attrs...)
	}
	return nil
}

func kitLevel(v any) slog.Level {
	switch strings.ToLower(fmt.Sprint(v)) {
	case "error":
		return slog.LevelError
	case "warn":
		return slog.LevelWarn
	}
	return slog.LevelDebug // the SDK's info and debug lines
}
