// Samplers and redaction against exact renderings: default masks, custom keys and patterns, redaction before the cut, invalid UTF-8, sample fields.
package match

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDefaultRedactionMasksSecrets(t *testing.T) {
	r := DefaultRedactor()
	cases := []struct{ key, value, want string }{
		// Whole values of sensitive keys, whatever their spelling.
		{"password", "hunter2", "***"},
		{"DB_PASSWORD", "hunter2", "***"},
		{"x-auth-token", "abc", "***"},
		{"accessToken", "abc", "***"},
		{"Authorization", "Bearer abc.def", "***"},
		{"set-cookie", "sid=1; Path=/", "***"},
		{"cookies", "sid=1", "***"},
		{"X-Api-Key", "k1", "***"},
		{"apiKey", "k1", "***"},
		{"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s", "***"},
		{"__tag__:token", "t", "***"},
		{"password", "", ""},
		// Keys that only look alike keep their values.
		{"tokenizer", "bpe", "bpe"},
		{"secretary", "alice", "alice"},
		{"status", "500", "500"},
		// Pairs inside values.
		{"path", "/login?token=s3cr3t&x=1", "/login?token=***&x=1"},
		{"msg", "retry with password=hunter2 failed", "retry with password=*** failed"},
		{"msg", "user=alice passwd: hunter2", "user=alice passwd: ***"},
		{"body", `{"user":"alice","password":"hun\"ter2","n":1}`, `{"user":"alice","password":"***","n":1}`},
		{"body", `{\"client_secret\":\"abc\"}`, `{\"client_secret\":\"***\"}`},
		{"headers", "Authorization: Bearer abc.def\nHost: x", "Authorization: Bearer ***\nHost: x"},
		{"headers", "authorization=Basic dXNlcjpwYXNz", "authorization=Basic ***"},
		{"headers", `"Authorization": "Bearer abc.def"`, `"Authorization": "Bearer ***"`},
		{"headers", "Cookie: sid=abc; theme=dark\r\nAccept: */*", "Cookie: ***\r\nAccept: */*"},
		{"msg", "X-Api-Key:k1,next", "X-Api-Key:***,next"},
		{"msg", "at 10:15:30 tokens=5 done", "at 10:15:30 tokens=*** done"},
		{"msg", "tokenizer=bpe", "tokenizer=bpe"},
		// Bearer tokens and URL passwords anywhere.
		{"msg", "sent bearer xyz.123 upstream", "sent bearer *** upstream"},
		{"url", "https://alice:pa55@db.example.com/x", "https://alice:***@db.example.com/x"},
		{"url", "https://db.example.com:5432/x", "https://db.example.com:5432/x"},

		// Blanks around the separator, => and :=.
		{"msg", "password = hunter2", "password = ***"},
		{"body", `{"password" : "x"}`, `{"password" : "***"}`},
		{"msg", "token :abc", "token :***"},
		{"msg", "token\t=\tabc", "token\t=\t***"},
		{"msg", `"password"=>"hunter2"`, `"password"=>"***"`},
		{"msg", `{"user"=>"alice", "password" => "hunter2"}`, `{"user"=>"alice", "password" => "***"}`},
		{"msg", `{:password=>"hunter2", :user=>"bob"}`, `{:password=>"***", :user=>"bob"}`},
		{"msg", `Array ( [password] => hunter2 [user] => bob )`, `Array ( [password] => *** [user] => bob )`},
		{"msg", `password := "hunter2"`, `password := "***"`},
		{"headers", "Authorization :   Bearer abc.def", "Authorization :   Bearer ***"},
		{"headers", "Authorization:   Bearer abc.def", "Authorization:   Bearer ***"},
		// The value on the lines below the key.
		{"msg", "password:\n  hunter2", "password:\n  ***"},
		{"msg", "password:\r\n  hunter2\r\nuser: bob", "password:\r\n  ***\r\nuser: bob"},
		{"msg", "password:\nhunter2 next", "password:\n*** next"},
		{"msg", "password:\nuser: bob", "password:\nuser: bob"},
		{"yaml", "db:\n  password:\n    hunter2\n  user: bob", "db:\n  password:\n    ***\n  user: bob"},
		{"yaml", "secret:\n  token: abc\n  id: 7\nregion: x", "secret:\n  ***\nregion: x"},
		{"yaml", "private_key: |\n  -----BEGIN KEY-----\n  MIIE\n\n  -----END KEY-----\nnext: 1", "private_key: |\n  ***\nnext: 1"},
		{"yaml", "password: >-\n  hunter2\nx: 1", "password: >-\n  ***\nx: 1"},
		{"json", `{"msg":"password:\n  hunter2"}`, `{"msg":"password:\n  ***"}`},
		// Objects and arrays.
		{"body", `"token":{"value":"x"}`, `"token":{***}`},
		{"body", `{"token":{"value":"a}b","n":[1,2]},"user":"bob"}`, `{"token":{***},"user":"bob"}`},
		{"body", `{"tokens":["a","b"],"user":"bob"}`, `{"tokens":[***],"user":"bob"}`},
		{"body", `{\"token\":{\"value\":\"x\\\"}\"},\"user\":\"bob\"}`, `{\"token\":{***},\"user\":\"bob\"}`},
		{"body", `{'secret': {'v': 'x'}, 'user': 'bob'}`, `{'secret': {***}, 'user': 'bob'}`},
		{"body", `"token":{"value":"x"`, `"token":{***`},
		{"body", `"token":{}`, `"token":{}`},
		// XML elements.
		{"body", `<password>x</password>`, `<password>***</password>`},
		{"body", `<AccessKeySecret>x</AccessKeySecret>`, `<AccessKeySecret>***</AccessKeySecret>`},
		{"body", `<Creds><AccessKeySecret>s3</AccessKeySecret><Region>cn</Region></Creds>`, `<Creds><AccessKeySecret>***</AccessKeySecret><Region>cn</Region></Creds>`},
		{"body", `<ns:Password type="t">x</ns:Password><user>bob</user>`, `<ns:Password type="t">***</ns:Password><user>bob</user>`},
		{"body", `<password><![CDATA[a<b]]></password>`, `<password>***</password>`},
		{"body", `<password>x`, `<password>***`},
		{"body", `<password/><user>bob</user>`, `<password/><user>bob</user>`},
		// Joined lowercase names, as keys and inside values.
		{"secretkey", "v", "***"},
		{"tokenstring", "v", "***"},
		{"apikeyid", "v", "***"},
		{"accesskeysecret", "v", "***"},
		{"secretKey", "v", "***"},
		{"secret_key", "v", "***"},
		{"secret-key", "v", "***"},
		{"passwordhash", "v", "***"},
		{"secretkeyids", "v", "***"},
		{"msg", "secretkey=a tokenstring=b apikeyid=c accesskeysecret=d", "secretkey=*** tokenstring=*** apikeyid=*** accesskeysecret=***"},
		{"tokenvalidation", "v", "v"},
		{"passwordstrength", "v", "v"},
		{"msg", "/login?token=s3cr3t", "/login?token=***"},
	}
	for _, c := range cases {
		if got := string(r.Redact([]byte(c.key), []byte(c.value))); got != c.want {
			t.Errorf("Redact(%s, %q) = %q, want %q", c.key, c.value, got, c.want)
		}
	}
}

// TestRedactionLeavesNonSecretsAlone: values without a sensitive key come
// back as they are, the same slice, whatever separators and nesting they use.
func TestRedactionLeavesNonSecretsAlone(t *testing.T) {
	r := DefaultRedactor()
	for _, c := range []struct{ key, value string }{
		{"msg", `{"note"=>"a=>b", "map"=>"x => y"}`},
		{"msg", "user = alice, status : 500, lang := en"},
		{"msg", "if token == nil || a != b || n <= 5"},
		{"body", `{"user" : {"name":"bob"}, "items" : [1, 2]}`},
		{"yaml", "db:\n  host: x\n  user: bob"},
		{"body", `<user>bob</user> <status>500</status>`},
		{"msg", "syntax error at a < token > b"},
		{"tokenizer", "bpe"},
		{"secretary", "alice"},
		{"msg", "tokenizer=bpe tokenvalidation=ok passwordstrength=weak"},
		{"url", "https://db.example.com:5432/x?lang=en"},
	} {
		v := []byte(c.value)
		got := r.Redact([]byte(c.key), v)
		if string(got) != c.value || &got[0] != &v[0] {
			t.Errorf("Redact(%s, %q) = %q, want the value itself", c.key, c.value, got)
		}
	}
	// A pair with a secret masks that value only, "=>" inside another kept.
	got := string(r.Redact([]byte("msg"), []byte(`{"password"=>"p=>q", "note"=>"a=>b"}`)))
	if want := `{"password"=>"***", "note"=>"a=>b"}`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestRedactAllocatesNothingWithoutSecrets: the sample is rendered on the
// matching path, where most values hold no secret.
func TestRedactAllocatesNothingWithoutSecrets(t *testing.T) {
	r := DefaultRedactor()
	key := []byte("msg")
	values := [][]byte{
		[]byte(`{"user":"alice","items":[{"id":1}],"at":"10:15:30"}`),
		[]byte(`<Response><Code>Throttling</Code></Response>`),
		[]byte("Host: api.example.com\r\nAccept: */*"),
		[]byte("https://db.example.com:5432/x user => alice"),
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, v := range values {
			r.Redact(key, v)
		}
	}); n != 0 {
		t.Errorf("Redact allocated %v times on values without secrets", n)
	}
}

// TestRedactionOfHeadersAndDescriptiveKeys: an Authorization value keeps
// whatever scheme it names and masks the rest of its line; a Cookie header
// masks its line but a key merely containing "cookie" only its value; keys
// that describe a secret (its length, name, expiry) or count a language
// model's tokens are shown; a line break written out in an escaped string
// ends an unquoted value.
func TestRedactionOfHeadersAndDescriptiveKeys(t *testing.T) {
	r := DefaultRedactor()
	for _, c := range []struct{ key, value, want string }{
		{"msg", "Authorization: OSS LTAI5tXX:sigabc=", "Authorization: OSS ***"},
		{"msg", "Authorization: AWS AKIAXX:sig\r\nHost: x", "Authorization: AWS ***\r\nHost: x"},
		{"msg", `Authorization: Digest username="bob", response="abc", nonce="x"`, "Authorization: Digest ***"},
		{"msg", `"Authorization": "SharedKey acct:sig"`, `"Authorization": "SharedKey ***"`},
		{"msg", "Authorization: abc123", "Authorization: ***"},
		{"msg", "level=info authorization=0123456789abcdef0123456789abcdef path=/x", "level=info authorization=***"},
		{"msg", "proxy_authorization=sk-abc123 method=GET", "proxy_authorization=***"},
		{"msg", `"Authorization": "k2 extra"`, `"Authorization": "***"`},
		{"msg", `"Authorization": "Hawk id=x, mac=y"`, `"Authorization": "Hawk ***"`},
		{"msg", "Authorization: Bearer abc.def\nnext: 1", "Authorization: Bearer ***\nnext: 1"},
		{"msg", "cookie_domain=x.com status=500 path=/api/x", "cookie_domain=*** status=500 path=/api/x"},
		{"msg", `{"h":"Authorization: Digest username=\"bob\", response=\"abc\"","n":1}`, `{"h":"Authorization: Digest ***","n":1}`},
		{"msg", "Set-Cookie: sid=abc; Path=/; HttpOnly\nx: 1", "Set-Cookie: ***\nx: 1"},
		{"msg", "Cookies: a=1; b=2", "Cookies: ***"},
		{"msg", "password_length=12 secret_name=db-creds token_expires_at=10:15:30 signature_valid=false", "password_length=12 secret_name=db-creds token_expires_at=10:15:30 signature_valid=false"},
		{"msg", "token_count=5 passwordLength=12 apikey_rotation_days=90", "token_count=5 passwordLength=12 apikey_rotation_days=90"},
		{"body", `{"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42},"max_new_tokens":256}`, `{"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42},"max_new_tokens":256}`},
		{"password_length", "12", "12"},
		{"tokens", "abc", "***"},
		{"access_tokens", "abc", "***"},
		{"password_hash", "x", "***"},
		{"msg", `{"m":"token=abc\nuser=bob"}`, `{"m":"token=***\nuser=bob"}`},
		{"msg", `{\"password\":hunter2\"}`, `{\"password\":***\"}`},
		{"msg", `{"cm":"secret:\n  token: abc\n  id: 7"}`, `{"cm":"secret:\n  token: ***\n  id: 7"}`},
		// CJK punctuation, quoted keys with blanks or backticks, string
		// prefixes, YAML sequences at their key's indentation, '@' in a URL
		// password.
		{"msg", "用户登录 password：hunter2，status：500", "用户登录 password：***，status：500"},
		{"msg", "AccessKeySecret：abc；region：cn", "AccessKeySecret：***；region：cn"},
		{"body", `{"API Key": "abc123", "Secret Access Key": "wJalr", "User Name": "bob"}`, `{"API Key": "***", "Secret Access Key": "***", "User Name": "bob"}`},
		{"sql", "UPDATE `users` SET `password`='hunter2' WHERE id=1", "UPDATE `users` SET `password`='***' WHERE id=1"},
		{"msg", "{'password': b'hunter2', 'user': u'bob'}", "{'password': b'***', 'user': u'bob'}"},
		{"msg", `["password"]=> string(7) "hunter2" ["user"]=> string(3) "bob"`, `["password"]=> string(7) "***" ["user"]=> string(3) "bob"`},
		{"msg", `["password"]=>` + "\n  " + `string(7) "hunter2"`, `["password"]=>` + "\n  ***"},
		{"yaml", "password:\n- hunter2\n- hunter3\nuser: bob", "password:\n***\nuser: bob"},
		{"yaml", "spec:\n  tokens:\n  - abc\n  - def\n  user: x", "spec:\n  tokens:\n  ***\n  user: x"},
		{"url", "redis://default:p@ss@redis:6379/0", "redis://default:***@redis:6379/0"},
		{"url", "https://user:pw@host/path?x=a@b", "https://user:***@host/path?x=a@b"},
	} {
		if got := string(r.Redact([]byte(c.key), []byte(c.value))); got != c.want {
			t.Errorf("Redact(%s, %q) = %q, want %q", c.key, c.value, got, c.want)
		}
	}
}

// TestRedactTakesLinearTime: values built to make a scan start again at
// every key (keys before written-out line breaks, repeated self-closing
// tags) take time in proportion to their length. Measured loosely: a
// quadratic scan of these 256 KiB takes seconds, a linear one milliseconds.
func TestRedactTakesLinearTime(t *testing.T) {
	r := DefaultRedactor()
	for name, v := range map[string]string{
		"written breaks":    strings.Repeat(`password:\n`, 1<<15) + "x:",
		"escaped in json":   `{"m":"` + strings.Repeat(`password:\n\t`, 1<<14) + `x:"}`,
		"self-closing tags": strings.Repeat("<password", 1<<15) + "/>",
	} {
		began := time.Now()
		r.Redact([]byte("msg"), []byte(v))
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("%s: %d bytes took %s", name, len(v), took)
		}
	}
}

// TestRedactingTwiceChangesNothing: inputs where a second pass once found
// a pair the first had skipped.
func TestRedactingTwiceChangesNothing(t *testing.T) {
	r := DefaultRedactor()
	for _, v := range []string{
		"`pwd pwd`:`pwd pwd`:`pwd pwd`:",
		"token://Authorization:=}",
		"Cookie: a=1; token=x\nb",
	} {
		once := r.Redact([]byte("msg"), []byte(v))
		if twice := r.Redact([]byte("msg"), once); string(twice) != string(once) {
			t.Errorf("%q: once %q, twice %q", v, once, twice)
		}
	}
}

func TestRedactNeverWritesIntoTheValue(t *testing.T) {
	v := []byte("a?token=s3cr3t")
	_ = DefaultRedactor().Redact([]byte("url"), v)
	if string(v) != "a?token=s3cr3t" {
		t.Fatalf("the source value changed: %q", v)
	}
	clean := []byte("nothing to hide")
	if got := DefaultRedactor().Redact([]byte("msg"), clean); &got[0] != &clean[0] {
		t.Fatal("an unchanged value should be returned as is, not copied")
	}
}

func TestCustomRedaction(t *testing.T) {
	r, err := NewRedactor(RedactOptions{
		Keys: []string{"session_id"},
		Patterns: []RedactPattern{
			{Regex: `\b(\d{4})\d{8}(\d{4})\b`, Replacement: "$1********$2"},
			{Regex: `[\w.]+@example\.com`},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ key, value, want string }{
		{"session-id", "42", "***"},
		{"msg", "resume session_id=42 ok", "resume session_id=*** ok"},
		{"msg", "card 4111111111111111 by bob@example.com", "card 4111********1111 by ***"},
		{"password", "still masked", "***"},
	}
	for _, c := range cases {
		if got := string(r.Redact([]byte(c.key), []byte(c.value))); got != c.want {
			t.Errorf("Redact(%s, %q) = %q, want %q", c.key, c.value, got, c.want)
		}
	}

	only, err := NewRedactor(RedactOptions{DisableDefaults: true, Keys: []string{"ssn"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, value, want string }{
		{"password", "hunter2", "hunter2"},
		{"msg", "Authorization: Bearer abc ssn=123", "Authorization: Bearer abc ssn=***"},
		{"url", "https://a:b@h", "https://a:b@h"},
	} {
		if got := string(only.Redact([]byte(c.key), []byte(c.value))); got != c.want {
			t.Errorf("without defaults: Redact(%s, %q) = %q, want %q", c.key, c.value, got, c.want)
		}
	}

	if _, err := NewRedactor(RedactOptions{Patterns: []RedactPattern{{Regex: "ok"}, {Regex: "("}}}); err == nil ||
		err.Error() != "patterns[1]: invalid regex \"(\": error parsing regexp: missing closing ): `(`" {
		t.Fatalf("bad pattern: %v", err)
	}
}

func TestSamplerRedactsBeforeItCuts(t *testing.T) {
	s := NewSampler(SamplerOptions{MaxLength: 32})
	// Cut first, "token=abcdefghijklmnop…" would show half the secret, and
	// the card pattern below would no longer match its cut digits.
	got := s.Render(fields("msg", "x token=abcdefghijklmnopqrstuvwxyz", "status", "500"))
	if want := `msg="x token=***" status=500`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	card, err := NewRedactor(RedactOptions{Patterns: []RedactPattern{{Regex: `\d{16}`, Replacement: "<card>"}}})
	if err != nil {
		t.Fatal(err)
	}
	got = NewSampler(SamplerOptions{MaxLength: 24, Redactor: card}).Render(fields("a", "0123456789", "b", "4111111111111111 paid"))
	if want := `a=0123456789 b="<card…`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSamplerKeepsTheRenderingOfRenderSample(t *testing.T) {
	log := fields("status", "500", "path", "/api/v1/orders", "agent", "curl 8", "empty", "")
	if got, want := NewSampler(SamplerOptions{}).Render(log), RenderSample(log, 200); got != want {
		t.Errorf("sampler %q, RenderSample %q", got, want)
	}
	bad := NewSampler(SamplerOptions{}).Render([]Field{
		{Key: []byte("k"), Value: []byte{'a', 0xff, 'b'}},
		{Key: []byte("msg"), Value: []byte("\xfe password=hunter2")},
	})
	if want := "k=a\uFFFDb msg=\"\uFFFD password=***\""; bad != want || !utf8.ValidString(bad) {
		t.Errorf("invalid UTF-8: got %q, want %q", bad, want)
	}
	long := NewSampler(SamplerOptions{MaxLength: 64}).Render(fields("msg", strings.Repeat("é", 500)))
	if len(long) != 63 || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Errorf("cut sample is %d bytes, valid=%v: %q", len(long), utf8.ValidString(long), long)
	}
	if n := len(NewSampler(SamplerOptions{MaxLength: 1}).Render(fields("msg", strings.Repeat("x", 100)))); n != MinSampleLength {
		t.Errorf("a sampler of length 1 rendered %d bytes, want %d", n, MinSampleLength)
	}
}

func TestSamplerFields(t *testing.T) {
	log := fields("status", "503", "path", "/x", "password", "p", "msg", "m",
		"__topic__", "web", "__source__", "10.0.0.1", "__tag__:__hostname__", "node-1")
	cases := []struct {
		fields []string
		want   string
		meta   bool
	}{
		{nil, "msg=m password=*** path=/x status=503", false},
		{[]string{"status", "path"}, "path=/x status=503", false},
		{[]string{"status", "password", "missing"}, "password=*** status=503", false},
		{[]string{"status", "__topic__", "__tag__:__hostname__"}, "__tag__:__hostname__=node-1 __topic__=web status=503", true},
	}
	for _, c := range cases {
		s := NewSampler(SamplerOptions{Fields: c.fields})
		if got := s.Render(log); got != c.want {
			t.Errorf("fields %v: got %q, want %q", c.fields, got, c.want)
		}
		if s.NeedsMetadata() != c.meta {
			t.Errorf("fields %v: NeedsMetadata %v, want %v", c.fields, s.NeedsMetadata(), c.meta)
		}
	}
}

func TestKeepMetadataCopiesWhatTheSamplerShows(t *testing.T) {
	s := NewSampler(SamplerOptions{Fields: []string{"status", "__source__", "__tag__:zone"}})
	var kept MetadataCopy
	log := fields("status", "500", "__topic__", "t", "__source__", "10.0.0.1", "__tag__:zone", "a", "__tag__:other", "b")
	s.KeepMetadata(&kept, log)
	for i := range log { // the caller's buffers are reused for the next log
		clear(log[i].Value)
	}
	contents := fields("status", "500")
	if got, want := s.Render(append(contents, kept.Fields()...)), "__source__=10.0.0.1 __tag__:zone=a status=500"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s.KeepMetadata(&kept, fields("status", "502"))
	if n := len(kept.Fields()); n != 0 {
		t.Errorf("a log without metadata kept %d fields", n)
	}
}
