// Package slsemu is an Alibaba Cloud Log Service (SLS) emulator that speaks the
// real wire protocol closely enough for the unmodified aliyun-log-go-sdk (and
// the Python SDK) to use it as they would use SLS: request signatures (V1 and
// V4), logstores (paged listing) and shards (split and merge, readonly
// shards), cursors, lz4 or zstd + protobuf PullLogs, PutLogs, and consumer
// groups with server-side shard assignment, heartbeats and checkpoints.
//
// It reads like net/http/httptest:
//
//	srv, err := slsemu.Start(slsemu.DemoWorld()) // a free loopback port
//	defer srv.Close()
//	client := sls.CreateNormalInterface("cn-hangzhou.log.aliyuncs.com", slsemu.DemoAccessKeyID, slsemu.DemoAccessKeySecret, "")
//	client.SetHTTPClient(srv.HTTPClient()) // dial the emulator whatever the host name
//
// Faults (errors, latency, connection resets) can be injected per API route,
// project or logstore with InjectFault or over HTTP under /_slsemu/faults.
// See README.md in this directory for what is and is not emulated.
package slsemu
