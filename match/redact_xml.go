// Masking the content of XML elements whose name is sensitive, up to their closing tag.
package match

import (
	"bytes"
	"sort"
	"strings"
)

// maskElements masks the content of XML elements whose name is sensitive:
// <password>x</password>, <AccessKeySecret>x</AccessKeySecret>, up to the
// closing tag, or the next '<' when there is none.
func (r *Redactor) maskElements(v []byte) []byte {
	var out []byte
	var closes map[string][]int // built once a sensitive element is found
	last := 0
	for i := bytes.IndexByte(v, '<'); i >= 0; {
		nameEnd := i + 1
		for nameEnd < len(v) && isNameByte(v[nameEnd]) {
			nameEnd++
		}
		name := v[i+1 : nameEnd]
		next := nameEnd
		if len(name) > 0 && isNameStart(name[0]) && r.SensitiveKey(name) {
			gt := bytes.IndexByte(v[nameEnd:], '>')
			if gt < 0 {
				break // no tag ends after this one
			}
			if v[nameEnd+gt-1] != '/' {
				if closes == nil {
					closes = r.closingTags(v)
				}
				start := nameEnd + gt + 1
				end := closingTag(v, start, closes[strings.ToLower(string(name))])
				if end > start && string(v[start:end]) != Mask {
					if out == nil {
						out = make([]byte, 0, len(v)+len(Mask))
					}
					out = append(out, v[last:start]...)
					out = append(out, Mask...)
					last = end
				}
				next = max(end, start)
			} else {
				next = nameEnd + gt + 1 // <password/>: nothing to mask
			}
		}
		k := bytes.IndexByte(v[min(next, len(v)):], '<')
		if k < 0 {
			break
		}
		i = next + k
	}
	if out == nil {
		return v
	}
	return append(out, v[last:]...)
}

// isNameStart, isNameByte: the bytes of an XML element's name.
func isNameStart(c byte) bool { return isLetter(c) || c == '_' }

func isNameByte(c byte) bool { return isKeyByte(c) || c == ':' }

// closingTags indexes the closing tags of sensitive elements in v (</name>,
// blanks allowed before '>'): the ascending positions of their '<' by
// lowercase name.
func (r *Redactor) closingTags(v []byte) map[string][]int {
	closes := map[string][]int{}
	for k := 0; ; {
		o := bytes.Index(v[k:], []byte("</"))
		if o < 0 {
			return closes
		}
		p := k + o
		e := p + 2
		for e < len(v) && isNameByte(v[e]) {
			e++
		}
		name := v[p+2 : e]
		for e < len(v) && isBlank(v[e]) {
			e++
		}
		if len(name) > 0 && (e == len(v) || v[e] == '>') && r.SensitiveKey(name) {
			n := strings.ToLower(string(name))
			closes[n] = append(closes[n], p)
		}
		k = p + 2
	}
}

// closingTag is the first of closes (an element's closing tags) from start
// on, or else the index of the next '<', or len(v).
func closingTag(v []byte, start int, closes []int) int {
	if i := sort.SearchInts(closes, start); i < len(closes) {
		return closes[i]
	}
	if o := bytes.IndexByte(v[start:], '<'); o >= 0 {
		return start + o
	}
	return len(v)
}
