// Differential fuzz test: on any body the walker agrees with sls.LogsBytesDecode plus the consumer's flattening.
package logwire

import (
	"testing"
)

// FuzzWalkerMatchesSDK checks, for every input, that the Walker and the SDK
// (sls.LogsBytesDecode, then sdkBatch's flattening as restated in sdkAll):
//   - both fail, or neither does (the walker fails without panicking);
//   - when they succeed: the same number of logs, the same fields in the
//     same order with byte-equal keys and values, bit-equal times, and
//     Contents(ref) giving the log's contents again.
//
// Exceptions: none. The walker follows the gogo-generated code even where
// it is odd (field numbers truncated to int32, 10-byte varints with their
// excess bits dropped, field number 0 inside an unknown group).
//
// Seeds: real bodies marshalled by the SDK, every hand-built case of
// walker_test.go, and the entries under testdata/fuzz.
func FuzzWalkerMatchesSDK(f *testing.F) {
	f.Add(accessBody(f, 1, 1, 1))
	f.Add(accessBody(f, 2, 2, 3))
	f.Add(accessBody(f, 3, 3, 2)[:100]) // truncated
	for _, c := range walkCases {
		f.Add(c.body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if d := diffSDK(body); d != "" {
			t.Fatal(d)
		}
	})
}
