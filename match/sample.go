// Rendering a matching log as a compact, bounded, valid UTF-8 label value: RenderSample as is, Sampler with chosen fields and redaction.
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
// It shows every field as it is; Sampler chooses fields and masks secrets.
func RenderSample(fields []Field, maxLen int) string {
	return render(fields, maxLen, nil)
}

// render is RenderSample with each value passed through value (when not
// nil) before it is rendered, so the value is whole when it is redacted
// and only the rendered text is cut.
func render(fields []Field, maxLen int, value func(key, v []byte) []byte) string {
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
		if value != nil {
			v = value(fields[i].Key, v)
		}
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

// MinSampleLength is the shortest sample a Sampler cuts to.
const MinSampleLength = 16

// DefaultSampleLength is a Sampler's length when none is given.
const DefaultSampleLength = 200

// SamplerOptions configures a Sampler.
type SamplerOptions struct {
	// Fields are the keys shown, as rules name them: content keys,
	// __topic__, __source__, __tag__:<key>. Empty shows every content field
	// (group metadata only when named).
	Fields []string
	// MaxLength bounds the sample in bytes (DefaultSampleLength when 0, at
	// least MinSampleLength).
	MaxLength int
	// Redactor masks secrets; nil means DefaultRedactor. To show values
	// as they are, pass a Redactor built with DisableDefaults.
	Redactor *Redactor
}

// Sampler renders a log the way a rule's sample label shows it: its chosen
// fields, each value redacted whole, then rendered like RenderSample
// (sorted key=value, quoted when needed, valid UTF-8, cut with …). It is
// immutable and safe for concurrent use; rendering allocates, so call it
// once per rule and batch, not per log.
type Sampler struct {
	fields   map[string]bool // nil: every content field
	meta     bool            // some of fields are group metadata
	maxLen   int
	redactor *Redactor
}

// NewSampler returns a sampler for opts.
func NewSampler(opts SamplerOptions) *Sampler {
	s := &Sampler{maxLen: opts.MaxLength, redactor: opts.Redactor}
	if s.maxLen == 0 {
		s.maxLen = DefaultSampleLength
	}
	s.maxLen = max(s.maxLen, MinSampleLength)
	if s.redactor == nil {
		s.redactor = DefaultRedactor()
	}
	if len(opts.Fields) > 0 {
		s.fields = make(map[string]bool, len(opts.Fields))
		for _, f := range opts.Fields {
			s.fields[f] = true
			s.meta = s.meta || IsMetadataKey([]byte(f))
		}
	}
	return s
}

// IsMetadataKey reports whether key names a log group's metadata as the
// rules see it: __topic__, __source__ or __tag__:<key>.
func IsMetadataKey(key []byte) bool {
	return string(key) == "__topic__" || string(key) == "__source__" || bytes.HasPrefix(key, tagPrefix)
}

var tagPrefix = []byte("__tag__:")

// Wants reports whether the sample shows the field key.
func (s *Sampler) Wants(key []byte) bool {
	if s.fields == nil {
		return !IsMetadataKey(key)
	}
	return s.fields[string(key)]
}

// NeedsMetadata reports whether the sample shows some group metadata, which
// callers that re-read only a log's contents must then keep (KeepMetadata).
func (s *Sampler) NeedsMetadata() bool { return s.meta }

// Redactor is the sampler's redactor.
func (s *Sampler) Redactor() *Redactor { return s.redactor }

// Render renders the fields of one log that the sampler shows, redacted.
func (s *Sampler) Render(fields []Field) string {
	shown := fields
	for i := range fields {
		if !s.Wants(fields[i].Key) {
			shown = make([]Field, 0, len(fields))
			for _, f := range fields {
				if s.Wants(f.Key) {
					shown = append(shown, f)
				}
			}
			break
		}
	}
	return render(shown, s.maxLen, s.redactor.Redact)
}

// MetadataCopy holds a copy of the group metadata of one log, for callers
// that find a log's contents again later but not its group's metadata. Its
// buffers are reused from copy to copy.
type MetadataCopy struct {
	buf    []byte
	fields []Field
}

// KeepMetadata copies into dst the metadata fields the sampler shows from
// fields, a log's contents followed by its group's metadata (the trailing
// run of __topic__, __source__ and __tag__: keys).
func (s *Sampler) KeepMetadata(dst *MetadataCopy, fields []Field) {
	dst.buf, dst.fields = dst.buf[:0], dst.fields[:0]
	n := len(fields)
	for n > 0 && IsMetadataKey(fields[n-1].Key) {
		n--
	}
	meta := fields[n:]
	for _, f := range meta {
		if s.Wants(f.Key) {
			dst.buf = append(append(dst.buf, f.Key...), f.Value...)
		}
	}
	// Sliced once copied: buf may have moved while it grew.
	off := 0
	for _, f := range meta {
		if s.Wants(f.Key) {
			k := dst.buf[off : off+len(f.Key) : off+len(f.Key)]
			off += len(f.Key)
			v := dst.buf[off : off+len(f.Value) : off+len(f.Value)]
			off += len(f.Value)
			dst.fields = append(dst.fields, Field{Key: k, Value: v})
		}
	}
}

// Fields are the copied metadata fields, valid until the next KeepMetadata.
func (m *MetadataCopy) Fields() []Field { return m.fields }
