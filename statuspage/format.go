// Template functions: durations, ages, counts and times as an operator reads them.
package statuspage

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"time"
)

var funcs = template.FuncMap{
	"duration": formatDuration,
	"ago":      ago,
	"count":    formatCount,
	"utc":      utc,
	"bytes":    formatBytes,
	"short":    shortRevision,
	"raw":      func(v float64) string { return value{v, true}.Raw() },
}

// formatDuration writes seconds for a human: "0 s", "2.5 s", "42 s",
// "3 min 05 s", "2 h 07 min", "3 d 04 h".
func formatDuration(seconds float64) string {
	switch {
	case math.IsNaN(seconds) || math.IsInf(seconds, 0):
		return strconv.FormatFloat(seconds, 'g', -1, 64)
	case seconds < 0:
		return "-" + formatDuration(-seconds)
	case seconds == 0:
		return "0 s"
	case seconds < 10:
		return strconv.FormatFloat(math.Round(seconds*10)/10, 'f', -1, 64) + " s"
	case seconds < 60:
		return fmt.Sprintf("%.0f s", math.Floor(seconds))
	}
	s := int64(seconds)
	switch {
	case s < 3600:
		return fmt.Sprintf("%d min %02d s", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%d h %02d min", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%d d %02d h", s/86400, s%86400/3600)
}

// ago is how long before now the Unix time ts was, as "12 s ago"; a time
// ahead of this clock (another host's, skewed) reads "in 2 s".
func ago(ts float64, now time.Time) string {
	d := float64(now.UnixMilli())/1e3 - ts
	if d < 0 {
		return "in " + formatDuration(-d)
	}
	return formatDuration(d) + " ago"
}

// formatCount writes a counter's value exactly: whole numbers without an
// exponent, anything else as the exposition format does.
func formatCount(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// utc is the Unix time ts as "2006-01-02 15:04:05 UTC".
func utc(ts float64) string {
	sec, frac := math.Modf(ts)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatBytes writes a byte count in binary units: "512 B", "1.5 KiB".
func formatBytes(v float64) string {
	const unit = 1024
	if v < unit {
		return formatCount(v) + " B"
	}
	exp, div := 0, float64(unit)
	for n := v / unit; n >= unit && exp < 5; n /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(math.Round(v/div*10)/10, 'f', -1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}

// shortRevision keeps the first 12 characters of a commit hash.
func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
