// The SDK batch adapter: contents then group metadata, reused buffers that never mix groups up.
package consumer

import (
	"fmt"
	"strings"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sls-keyword-exporter/sls_keyword_exporter/match"
)

func group(topic string, tags map[string]string, logs ...[]string) *sls.LogGroup {
	g := &sls.LogGroup{Topic: &topic}
	for _, k := range []string{"__hostname__", "__receive_time__", "x"} {
		if v, ok := tags[k]; ok {
			key, value := k, v
			g.LogTags = append(g.LogTags, &sls.LogTag{Key: &key, Value: &value})
		}
	}
	for i, kv := range logs {
		sec, ns := uint32(100+i), uint32(5e8)
		l := &sls.Log{Time: &sec, TimeNs: &ns}
		for j := 0; j+1 < len(kv); j += 2 {
			k, v := kv[j], kv[j+1]
			l.Contents = append(l.Contents, &sls.LogContent{Key: &k, Value: &v})
		}
		g.Logs = append(g.Logs, l)
	}
	return g
}

func render(fields []match.Field) string {
	var parts []string
	for _, f := range fields {
		parts = append(parts, string(f.Key)+"="+string(f.Value))
	}
	return strings.Join(parts, " ")
}

func TestSDKBatchFieldsAcrossGroupsAndBatches(t *testing.T) {
	var b sdkBatch
	first := &sls.LogGroupList{LogGroups: []*sls.LogGroup{
		group("web", map[string]string{"__hostname__": "host-a", "__receive_time__": "1700000000"},
			[]string{"status", "500"}, []string{"status", "200", "path", "/x"}),
		group("app", map[string]string{"x": "y"}, []string{"msg", "OutOfMemory"}),
	}}
	var got []string
	b.reset(first).eachLog(func(ref logRef, fields []match.Field, logTime float64) {
		got = append(got, fmt.Sprintf("%d/%d t=%.1f %s", ref.group, ref.log, logTime, render(fields)))
	})
	want := []string{
		"0/0 t=100.5 status=500 __topic__=web __tag__:__hostname__=host-a __tag__:__receive_time__=1700000000",
		"0/1 t=101.5 status=200 path=/x __topic__=web __tag__:__hostname__=host-a __tag__:__receive_time__=1700000000",
		"1/0 t=100.5 msg=OutOfMemory __topic__=app __tag__:x=y",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c := render(b.contents(logRef{0, 1}, nil)); c != "status=200 path=/x" {
		t.Fatalf("contents = %q", c)
	}
	if b.logCount() != 3 || b.rawBytes() != first.Size() {
		t.Fatalf("logCount %d rawBytes %d", b.logCount(), b.rawBytes())
	}

	// The same buffers serve the next batch without leaking the old tags.
	second := &sls.LogGroupList{LogGroups: []*sls.LogGroup{group("", nil, []string{"k", "v"})}}
	got = got[:0]
	b.reset(second).eachLog(func(_ logRef, fields []match.Field, _ float64) { got = append(got, render(fields)) })
	if len(got) != 1 || got[0] != "k=v" {
		t.Fatalf("second batch: %q", got)
	}
}
