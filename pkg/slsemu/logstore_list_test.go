// ListLogStores paging as ListLogStoreV2 sends it: pages of at most 500, count and total, sorted names.
package slsemu_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

func TestListLogStoreV2PagesOver1200Logstores(t *testing.T) {
	srv := startEmulator(t, testWorld())
	c := newClient(srv, testHost, testAK, testSecret)
	want := []string{"four", "two"} // the world's
	for i := range 1198 {
		name := fmt.Sprintf("ls-%04d", i)
		if err := c.CreateLogStore("proj", name, 1, 1, false, 0); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	slices.Sort(want)

	var paged []string
	for offset, page := 0, 0; ; offset, page = offset+500, page+1 {
		names, err := c.ListLogStoreV2("proj", offset, 500, "")
		if err != nil {
			t.Fatal(err)
		}
		if wantLen := []int{500, 500, 200, 0}[page]; len(names) != wantLen {
			t.Fatalf("page %d (offset %d) has %d names, want %d", page, offset, len(names), wantLen)
		}
		if len(names) == 0 {
			break
		}
		paged = append(paged, names...)
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("the pages hold %d names, not the 1200 sorted ones", len(paged))
	}
	// Without size (ListLogStore, or ListLogStoreV2 with size 0): the default page of 200.
	if names, err := c.ListLogStore("proj"); err != nil || !slices.Equal(names, want[:200]) {
		t.Fatalf("ListLogStore returned %d names, %v; want the first 200", len(names), err)
	}
	if names, err := c.ListLogStoreV2("proj", 1100, 0, "None"); err != nil || !slices.Equal(names, want[1100:]) {
		t.Fatalf("ListLogStoreV2(offset 1100, no size) returned %d names, %v; want the last 100", len(names), err)
	}
	if names, err := c.ListLogStoreV2("proj", 0, 500, "Metrics"); err != nil || len(names) != 0 {
		t.Fatalf("Metrics stores: %v, %v; want none", names, err)
	}
	_, err := c.ListLogStoreV2("proj", 0, 501, "")
	wantSLSError(t, "page size 501", err, 400, "ParameterInvalid")
	_, err = c.ListLogStoreV2("proj", -1, 10, "")
	wantSLSError(t, "negative offset", err, 400, "ParameterInvalid")

	// count is the page's length, total every logstore.
	resp := pythonStyleRequest(t, srv, http.MethodGet, "/logstores?offset=1150&size=500", nil)
	var body struct {
		Count     int      `json:"count"`
		Total     int      `json:"total"`
		Logstores []string `json:"logstores"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Count != 50 || body.Total != 1200 || !slices.Equal(body.Logstores, want[1150:]) {
		t.Fatalf("page at offset 1150: count %d, total %d, %d names, %v; want 50, 1200, 50", body.Count, body.Total, len(body.Logstores), err)
	}

	// telemetryType filters on what CreateLogStoreV2 was given.
	if err := c.CreateLogStoreV2("proj", &sls.LogStore{Name: "metrics-1", TTL: 1, ShardCount: 1, TelemetryType: "Metrics"}); err != nil {
		t.Fatal(err)
	}
	if names, err := c.ListLogStoreV2("proj", 0, 500, "Metrics"); err != nil || !slices.Equal(names, []string{"metrics-1"}) {
		t.Fatalf("Metrics stores: %v, %v; want [metrics-1]", names, err)
	}
}
