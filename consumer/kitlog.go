// A go-kit logger for the SDK that writes into our slog stream and reports the SDK's errors and heartbeats.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	kitlog "github.com/go-kit/log"
)

// sdkEvent is something the consumer library only tells through its log.
type sdkEvent struct {
	operation string // SLS call or step that failed, "" for a heartbeat success
	code      string // SLS error code, or ClientError for transport failures
	heartbeat bool   // a heartbeat answered successfully
}

// sdkFailures maps the consumer library's log messages (v0.1.124) to the
// operation that failed. The library retries these itself and reports them
// nowhere else.
var sdkFailures = map[string]string{
	"shard pull logs failed, occur sls error":               "PullLogs",
	"unknown error when pull log":                           "PullLogs",
	"send heartbeat error":                                  "HeartBeat",
	"failed to save checkpoint":                             "UpdateCheckpoint",
	"failed to flush checkpoint when shutting down":         "UpdateCheckpoint",
	"shard Get checkpoint gets errors, starts to try again": "GetCheckpoint",
	"get beginCursor error":                                 "GetCursor",
	"get endCursor error":                                   "GetCursor",
	"get specialCursor error":                               "GetCursor",
	"get specialCursor for endCursor error":                 "GetCursor",
	"possibly failed to create or update consumer group, please check worker run log": "CreateConsumerGroup",
	"process func returns an error": "Process",
}

// NewKitLogger returns a go-kit logger (as the SDK's sls.Logger and
// LogHubConfig.Logger take) that writes to logger. The SDK's info lines are
// chatty (one per heartbeat) and are logged at debug; warnings and errors
// keep their level. onEvent, if set, sees recognised failures and heartbeats.
func NewKitLogger(logger *slog.Logger, onEvent func(sdkEvent)) kitlog.Logger {
	return &kitBridge{logger: logger, onEvent: onEvent}
}

type kitBridge struct {
	logger  *slog.Logger
	onEvent func(sdkEvent)
}

func (b *kitBridge) Log(keyvals ...any) error {
	lvl := slog.LevelDebug
	msg := ""
	var errValue any
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
			if key == "error" || key == "err" {
				errValue = value
				key = "err"
			}
			attrs = append(attrs, slog.Any(key, value))
		}
	}
	if msg == "" {
		// Some library lines have no msg key: their first own key is the
		// message (e.g. "heart beat result"); context keys come first.
		for i, a := range attrs {
			if a.Key != "shard" {
				msg = a.Key
				attrs[i].Key = "value"
				break
			}
		}
	}
	if b.onEvent != nil {
		if op, ok := sdkFailures[msg]; ok {
			b.onEvent(sdkEvent{operation: op, code: errorCode(errValue)})
		} else if msg == "heart beat result" {
			b.onEvent(sdkEvent{heartbeat: true})
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

// errorCode extracts the SLS error code from an error the SDK logged.
func errorCode(v any) string {
	err, ok := v.(error)
	if !ok {
		if v == nil {
			return "Unknown"
		}
		return "ClientError"
	}
	var slsErr *sls.Error
	if errors.As(err, &slsErr) && slsErr.Code != "" {
		return slsErr.Code
	}
	return "ClientError"
}
