// The signed pull request asks for the configured compression.
package consumer

import (
	"strings"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

func TestPullAsksForTheConfiguredCompression(t *testing.T) {
	for _, compression := range []string{"lz4", "zstd"} {
		p := newPuller(nil, sls.NewStaticCredentialsProvider("ak", "sk", ""), "cn-hangzhou.log.aliyuncs.com", "proj", "ls", compression, "test", nil)
		var signed signedPull
		req, err := p.prepare(3, "MTIz", 1000, &signed)
		if err != nil {
			t.Fatal(err)
		}
		block := string(req.headerBlock)
		if !strings.Contains(block, "Accept-Encoding: "+compression+"\r\n") {
			t.Errorf("%s: the request's headers lack Accept-Encoding: %s:\n%s", compression, compression, block)
		}
		if req.host != "proj.cn-hangzhou.log.aliyuncs.com" || !strings.HasPrefix(req.uri, "/logstores/ls/shards/3?") {
			t.Errorf("%s: request for %s%s", compression, req.host, req.uri)
		}
	}
}
