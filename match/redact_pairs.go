// Finding sensitive pairs inside a value: key and separator (= : => := ：), quoted, bracketed or bare, and pairs hidden inside a span already masked.
package match

// isKeyByte: the bytes of a key inside a value (token=, "password":, x-api-key:).
func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// maskPairs masks the values of sensitive key=value, key: value, key =>
// value and key := value pairs inside v.
func (r *Redactor) maskPairs(v []byte) []byte {
	var out []byte
	last := 0
	keyFloor := 0             // keys start here or later, not inside a masked span
	budget := 4*len(v) + 4096 // bytes hiddenPair may scan: linear time whatever v
	for i := 0; i < len(v); i++ {
		from, keyStart, keyEnd, escaped := pairAt(v, i, keyFloor)
		if from == 0 || keyStart < keyFloor || !r.SensitiveKey(v[keyStart:keyEnd]) {
			continue
		}
		start, end, kind := secretSpan(v, from, keyStart, v[keyStart:keyEnd], escaped)
		if end <= start || string(v[start:end]) == Mask {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(v)+len(Mask))
		}
		out = append(out, v[last:start]...)
		// The span may hide a sensitive key whose value runs past it
		// (Cookie: a=1; token="x", a quote left open over a line holding
		// password := "x"): that value is masked too, as part of the span
		// when it starts inside it, else as a span of its own.
		for scan := start; ; {
			i, s, e := r.hiddenPair(v, scan, start, end, &budget)
			if i < 0 {
				break
			}
			if scan = i + 1; s <= end {
				end = e
				continue
			}
			out = append(append(out, Mask...), v[end:s]...)
			start, end, scan, kind = s, e, s, spanInline
		}
		out = append(out, Mask...)
		// A word taken from the next line may be a key itself (secret:\n
		// password = x): its value is masked too.
		last, i, keyFloor = end, end-1, end
		if kind == spanWord {
			keyFloor = start
		}
	}
	if out == nil {
		return v
	}
	return append(out, v[last:]...)
}

// pairAt reads a pair whose separator starts at v[i]: from is where its
// value may start (0: there is no pair at i), v[keyStart:keyEnd] its key.
// The separator is '=', ':', "=>" or ":=", with blanks around it; the key
// bare, quoted ("password", \"password\" with escaped set) or in brackets
// ([password]). "==", "!=", "<=" and ">=" are comparisons, not pairs. A
// quoted key's opening quote is not looked for before floor (the end of
// what was masked).
func pairAt(v []byte, i, floor int) (from, keyStart, keyEnd int, escaped bool) {
	c, n := v[i], 1
	if c == 0xEF && i+2 < len(v) && v[i+1] == 0xBC && v[i+2] == 0x9A { // '：', the fullwidth colon of CJK text
		c, n = ':', 3
	}
	if c != '=' && c != ':' {
		return 0, 0, 0, false
	}
	from = i + n
	if c == '=' {
		if from < len(v) && v[from] == '=' || i > 0 && (v[i-1] == '=' || v[i-1] == '!' || v[i-1] == '<' || v[i-1] == '>') {
			return 0, 0, 0, false // token == nil, a != b
		}
		if from < len(v) && v[from] == '>' { // "password"=>"x"
			from++
		}
	} else if from < len(v) && v[from] == '=' { // password := "x"
		from++
	}
	keyEnd = i
	for keyEnd > 0 && isBlank(v[keyEnd-1]) { // password = x, "password" : "x"
		keyEnd--
	}
	if keyEnd > 0 && v[keyEnd-1] == ']' { // [password] => x
		keyEnd--
	}
	var quote byte
	if keyEnd > 0 && (v[keyEnd-1] == '"' || v[keyEnd-1] == '\'' || v[keyEnd-1] == '`') { // "password": or \"password\":
		keyEnd--
		quote = v[keyEnd]
		if keyEnd > 0 && v[keyEnd-1] == '\\' {
			keyEnd--
			escaped = true
		}
	}
	keyStart = keyEnd
	for keyStart > 0 && isKeyByte(v[keyStart-1]) {
		keyStart--
	}
	if quote != 0 && keyStart > 0 && isBlank(v[keyStart-1]) {
		// A quoted key may hold blanks ("API Key", "Secret Access Key"):
		// the whole of it, when its opening quote is near.
		for k := keyStart - 1; k >= floor && keyEnd-k <= 64 && (isKeyByte(v[k]) || isBlank(v[k]) || v[k] == quote); k-- {
			if v[k] == quote {
				keyStart = k + 1
				break
			}
		}
	}
	if keyStart == keyEnd {
		return 0, 0, 0, false
	}
	return from, keyStart, keyEnd, escaped
}

// hiddenPair finds, from scan on, the separator i of a sensitive key held
// in v[start:end] whose value v[s:e] ends past end; i is -1 if none. The
// values it measures are taken from *budget; once it is spent, the rest of
// v is the value (masked rather than measured).
func (r *Redactor) hiddenPair(v []byte, scan, start, end int, budget *int) (i, s, e int) {
	for i = scan; i < end && end < len(v); i++ {
		from, keyStart, keyEnd, escaped := pairAt(v, i, start)
		if from == 0 || keyStart < start || !r.SensitiveKey(v[keyStart:keyEnd]) {
			continue
		}
		if *budget < 0 {
			return i, start, len(v)
		}
		s, e, _ = secretSpan(v, from, keyStart, v[keyStart:keyEnd], escaped)
		*budget -= max(e, from) - i
		if e > end && e > s {
			return i, s, e
		}
		if s > 0 && (v[s-1] == '{' || v[s-1] == '[') && e < len(v) {
			i = max(i, e-1) // what a closed object or array holds ends inside it
		}
	}
	return -1, 0, 0
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }
