// The consumer library's hidden *sls.Client, reached so tests can set its timeouts before the first concurrent pulls.
package slsemu_test

import (
	"errors"
	"reflect"
	"time"
	"unsafe"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	consumerLibrary "github.com/aliyun/aliyun-log-go-sdk/consumer"
)

// errWorkerLayout means the consumer library no longer has the shape of
// aliyun-log-go-sdk v0.1.124 that setWorkerClientTimeouts digs through.
var errWorkerLayout = errors.New("unexpected aliyun-log-go-sdk consumer layout")

// setWorkerClientTimeouts sets the request and retry timeouts of the client
// inside a consumer worker; call it between InitConsumerWorker* and Start.
// sls.Client writes both fields under a read lock on its first logstore call
// when they are zero, so the shard workers' first concurrent pulls race
// (go test -race reports it); once they are set those calls only read them.
// The package's tests keep this to themselves rather than share a helper
// with the exporter, whose consumer may change how it builds its client.
func setWorkerClientTimeouts(w *consumerLibrary.ConsumerWorker, request, retry time.Duration) error {
	if w == nil {
		return errWorkerLayout
	}
	consumerClient := reflect.ValueOf(w).Elem().FieldByName("client")
	if !consumerClient.IsValid() || consumerClient.Kind() != reflect.Pointer || consumerClient.IsNil() {
		return errWorkerLayout
	}
	field := consumerClient.Elem().FieldByName("client")
	if !field.IsValid() || field.Kind() != reflect.Interface || !field.CanAddr() {
		return errWorkerLayout
	}
	// An unexported field cannot be read through reflect; view its memory as a
	// value of the same type instead.
	c, ok := reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem().Interface().(*sls.Client)
	if !ok || c == nil {
		return errWorkerLayout
	}
	c.RequestTimeOut = request
	c.RetryTimeOut = retry
	return nil
}
