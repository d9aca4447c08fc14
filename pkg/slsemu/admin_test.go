// The admin API's access_keys routes: keys told to the emulator over HTTP are accepted with their STS token, expire, are revoked, and are never listed with their secrets.
package slsemu_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

func TestAdminAccessKeys(t *testing.T) {
	srv := startEmulator(t, testWorld())
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+"/_slsemu/"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	client := func(id, secret, token string) sls.ClientInterface {
		c := sls.CreateNormalInterface(testHost, id, secret, token)
		c.SetHTTPClient(srv.HTTPClient())
		return c
	}
	call := func(id, secret, token string) error {
		_, err := client(id, secret, token).ListShards("proj", "two")
		return err
	}
	wantUnauthorized := func(what string, err error, message string) {
		t.Helper()
		wantSLSError(t, what, err, 401, "Unauthorized")
		if got := err.(*sls.Error).Message; !strings.HasPrefix(got, message) {
			t.Fatalf("%s: message %q, want %q", what, got, message)
		}
	}

	wantUnauthorized("before the key is added", call("STS.admin", "admin-secret-1", "admin-token-1"), "AccessKeyId not found")
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if code, body := do(http.MethodPost, "access_keys", `{"id":"STS.admin","secret":"admin-secret-1","security_token":"admin-token-1","expires":"`+later.Format(time.RFC3339)+`"}`); code != 200 || body != "" {
		t.Fatalf("POST access_keys: %d %s", code, body)
	}
	if err := call("STS.admin", "admin-secret-1", "admin-token-1"); err != nil {
		t.Fatalf("the added key: %v", err)
	}
	wantUnauthorized("another token", call("STS.admin", "admin-secret-1", "admin-token-2"), "The security token you provided is invalid.")
	wantSLSError(t, "another secret", call("STS.admin", "admin-secret-2", "admin-token-1"), 401, "SignatureNotMatch")

	// Listed by ID, secret and token left out.
	code, body := do(http.MethodGet, "access_keys", "")
	var list []slsemu.AccessKeyInfo
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
		t.Fatalf("GET access_keys: %d %v %s", code, err, body)
	}
	if len(list) != 2 || list[0].ID != "STS.admin" || !list[0].SecurityToken || !list[0].Expires.Equal(later) || list[0].Expired ||
		list[1].ID != testAK || list[1].SecurityToken || !list[1].Expires.IsZero() || list[1].Expired {
		t.Errorf("GET access_keys: %+v, want STS.admin (token, expires %s) and %s", list, later, testAK)
	}
	for _, secret := range []string{"admin-secret-1", "admin-token-1", testSecret} {
		if strings.Contains(body, secret) {
			t.Errorf("GET access_keys shows a secret: %s", body)
		}
	}

	// Posting the same ID replaces the key: here with an expiry already past.
	past := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	if code, body := do(http.MethodPost, "access_keys", `{"id":"STS.admin","secret":"admin-secret-1","security_token":"admin-token-1","expires":"`+past+`"}`); code != 200 {
		t.Fatalf("POST access_keys again: %d %s", code, body)
	}
	wantUnauthorized("after expiry", call("STS.admin", "admin-secret-1", "admin-token-1"), "The security token you provided has expired.")
	if _, body := do(http.MethodGet, "access_keys", ""); !strings.Contains(body, `"id":"STS.admin","security_token":true,`) || !strings.Contains(body, `"expired":true`) {
		t.Errorf("GET access_keys after expiry: %s", body)
	}

	// A key without token or expiry, then revoked.
	if code, body := do(http.MethodPost, "access_keys", `{"id":"LTAIrotated","secret":"rotated-secret"}`); code != 200 {
		t.Fatalf("POST a plain key: %d %s", code, body)
	}
	if err := call("LTAIrotated", "rotated-secret", ""); err != nil {
		t.Fatalf("the plain key: %v", err)
	}
	if code, body := do(http.MethodDelete, "access_keys/LTAIrotated", ""); code != 200 {
		t.Fatalf("DELETE access_keys/LTAIrotated: %d %s", code, body)
	}
	wantUnauthorized("after revocation", call("LTAIrotated", "rotated-secret", ""), "AccessKeyId not found")
	if code, body := do(http.MethodDelete, "access_keys/LTAIrotated", ""); code != 404 || !strings.Contains(body, `"errorCode":"AccessKeyNotExist"`) {
		t.Errorf("DELETE a revoked key: %d %s, want 404 AccessKeyNotExist", code, body)
	}
	if err := call(testAK, testSecret, ""); err != nil {
		t.Errorf("the world's key after the others changed: %v", err)
	}

	for name, bad := range map[string]string{
		"unknown field":   `{"id":"x","secret":"y","token":"z"}`,
		"no secret":       `{"id":"x"}`,
		"no id":           `{"secret":"y"}`,
		"bad expiry":      `{"id":"x","secret":"y","expires":"tomorrow"}`,
		"not JSON":        `id=x`,
		"wrong JSON type": `{"id":1,"secret":"y"}`,
	} {
		if code, body := do(http.MethodPost, "access_keys", bad); code != 400 {
			t.Errorf("%s: %d %s, want 400", name, code, body)
		}
	}
	if code, _ := do(http.MethodPut, "access_keys", `{}`); code != 404 {
		t.Errorf("PUT access_keys: %d, want 404", code)
	}
}
