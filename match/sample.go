// Rendering a matching log as a compact, bounded, valid UTF-8 label value.
package match

import (
	"bytes"
	"sort"
	"strconv"
	"unicode/utf8"
)

// ellipsis marks a sample that was cut.
const ellipsis = "…"

// RenderSample renders fields as space-separated key=value pairs sorted by
// key, quoting values that contain spaces, quotes or '=' (and empty ones),
// with invalid UTF-8 replaced, cut to at most maxLen bytes on a rune boundary.
func RenderSample(fields []Field, maxLen int) string {
	order := make([]int, len(fields))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return bytes.Compare(fields[order[a]].Key, fields[order[b]].Key) < 0 })

	var b []byte
	for n, i := range order {
		if n > 0 {
			b = append(b, ' ')
		}
		b = appendValid(b, fields[i].Key)
		b = append(b, '=')
		v := fields[i].Value
		if needsQuote(v) {
			b = strconv.AppendQuote(b, string(bytes.ToValidUTF8(v, []byte("\uFFFD"))))
		} else {
			b = appendValid(b, v)
		}
		if len(b) > maxLen*2 { // enough to cut from; stop rendering huge logs early
			break
		}
	}
	return cut(b, maxLen)
}

func needsQuote(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	for _, c := range v {
		if c <= ' ' || c == '"' || c == '=' || c == 0x7f {
			return true
		}
	}
	return false
}

func appendValid(dst, src []byte) []byte {
	if utf8.Valid(src) {
		return append(dst, src...)
	}
	return append(dst, bytes.ToValidUTF8(src, []byte("\uFFFD"))...)
}

// cut shortens b to at most maxLen bytes, ending in an ellipsis when cut.
func cut(b []byte, maxLen int) string {
	if len(b) <= maxLen {
		return string(b)
	}
	end := maxLen - len(ellipsis)
	for end > 0 && !utf8.RuneStart(b[end]) {
		end--
	}
	return string(b[:end]) + ellipsis
}
