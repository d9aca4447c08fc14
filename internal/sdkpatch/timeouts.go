// Package sdkpatch sets what the SDK's consumer library does not expose: its client's request and retry timeouts.
package sdkpatch

import (
	"errors"
	"reflect"
	"time"
	"unsafe"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	consumerLibrary "github.com/aliyun/aliyun-log-go-sdk/consumer"
)

// ErrLayout means the consumer library no longer has the shape this package
// was written for (aliyun-log-go-sdk v0.1.124).
var ErrLayout = errors.New("sdkpatch: unexpected aliyun-log-go-sdk consumer layout")

// SetClientTimeouts sets the request and retry timeouts of the client inside
// a consumer worker. Call it after InitConsumerWorker* and before Start.
//
// Two reasons, both about sls.Client leaving RequestTimeOut and RetryTimeOut
// zero until its first logstore call:
//   - every such call then writes the defaults under a read lock
//     (Client.initHttpClient), so the shard workers' first concurrent pulls
//     race; once the fields are set those calls only read them;
//   - the default RetryTimeOut keeps a failing GET retrying silently for 90 s,
//     far too long for a monitor that must report errors within seconds.
func SetClientTimeouts(w *consumerLibrary.ConsumerWorker, request, retry time.Duration) error {
	c, err := workerClient(w)
	if err != nil {
		return err
	}
	c.RequestTimeOut = request
	c.RetryTimeOut = retry
	return nil
}

// workerClient digs the *sls.Client out of ConsumerWorker.client.client.
func workerClient(w *consumerLibrary.ConsumerWorker) (*sls.Client, error) {
	if w == nil {
		return nil, ErrLayout
	}
	consumerClient := reflect.ValueOf(w).Elem().FieldByName("client")
	if !consumerClient.IsValid() || consumerClient.Kind() != reflect.Pointer || consumerClient.IsNil() {
		return nil, ErrLayout
	}
	field := consumerClient.Elem().FieldByName("client")
	if !field.IsValid() || field.Kind() != reflect.Interface || !field.CanAddr() {
		return nil, ErrLayout
	}
	// Unexported fields cannot be read through reflect directly; view the
	// same memory through an exported-looking value instead.
	iface := reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem().Interface()
	c, ok := iface.(*sls.Client)
	if !ok || c == nil {
		return nil, ErrLayout
	}
	return c, nil
}
