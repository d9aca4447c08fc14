// Temporary AccessKeys added while serving: accepted with their STS token until they expire, then 401 Unauthorized "has expired".
package slsemu_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/pkg/slsemu"
)

func TestAddAccessKeyWithTokenAndExpiry(t *testing.T) {
	srv, err := slsemu.Start(testWorld())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := func(id, secret, token string) sls.ClientInterface {
		c := sls.CreateNormalInterface(testHost, id, secret, token)
		c.SetHTTPClient(srv.HTTPClient())
		return c
	}
	code := func(err error) string {
		var e *sls.Error
		if !errors.As(err, &e) {
			t.Fatalf("want an SLS error, got %v", err)
		}
		return e.Code + " " + e.Message
	}

	if _, err := client("STS.tmp", "tmp-secret", "tok-1").ListShards("proj", "two"); err == nil || !strings.HasPrefix(code(err), "Unauthorized AccessKeyId not found") {
		t.Fatalf("a key not added yet: %v", err)
	}
	expires := time.Now().Add(1500 * time.Millisecond)
	if err := srv.AddAccessKey(slsemu.AccessKey{ID: "STS.tmp", Secret: "tmp-secret", SecurityToken: "tok-1", Expires: expires}); err != nil {
		t.Fatal(err)
	}
	if _, err := client("STS.tmp", "tmp-secret", "tok-1").ListShards("proj", "two"); err != nil {
		t.Fatalf("the added key before it expires: %v", err)
	}
	if _, err := client("STS.tmp", "tmp-secret", "tok-2").ListShards("proj", "two"); err == nil || code(err) != "Unauthorized The security token you provided is invalid." {
		t.Fatalf("another token: %v", err)
	}
	if _, err := client(testAK, testSecret, "").ListShards("proj", "two"); err != nil {
		t.Fatalf("the world's key still works: %v", err)
	}
	time.Sleep(time.Until(expires))
	_, err = client("STS.tmp", "tmp-secret", "tok-1").ListShards("proj", "two")
	var e *sls.Error
	if !errors.As(err, &e) || e.HTTPCode != 401 || e.Code != "Unauthorized" || e.Message != "The security token you provided has expired." {
		t.Fatalf("after expiry: %v, want 401 Unauthorized ...has expired.", err)
	}
	if err := srv.AddAccessKey(slsemu.AccessKey{ID: "STS.tmp"}); err == nil {
		t.Error("a key without a secret must be refused")
	}
}

func TestWorldFileKeyExpiry(t *testing.T) {
	path := t.TempDir() + "/world.yml"
	if err := os.WriteFile(path, []byte(`access_keys:
  - id: STS.file
    secret: s
    security_token: t
    expires: 2026-01-02T15:04:05Z
regions:
  - name: cn-hangzhou
    endpoint: cn-hangzhou.log.aliyuncs.com
    projects: [{name: project1, logstores: [{name: logstore1}]}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := slsemu.LoadWorld(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC); !w.AccessKeys[0].Expires.Equal(want) {
		t.Fatalf("expires %v, want %v", w.AccessKeys[0].Expires, want)
	}
}
