// Pull buffers: pooled by size class, and a byte budget that bounds what all pulls in flight may hold.
package consumer

import (
	"context"
	"math/bits"
	"sync"

	"golang.org/x/sync/semaphore"
)

// Size classes are powers of two from 64 KiB to 64 MiB; larger buffers are
// allocated for the one pull that needs them and left to the GC.
const (
	minBufferClass = 16
	maxBufferClass = 26
)

var bufferPools [maxBufferClass + 1]sync.Pool

// getBuffer returns a buffer of length n, reused when a pooled one fits.
func getBuffer(n int) []byte {
	class := bufferClass(n)
	if class > maxBufferClass {
		return make([]byte, n)
	}
	if p, ok := bufferPools[class].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<class)
}

// putBuffer returns a buffer from getBuffer to its pool.
func putBuffer(b []byte) {
	c := cap(b)
	if c == 0 || c&(c-1) != 0 {
		return
	}
	class := bits.TrailingZeros(uint(c))
	if class < minBufferClass || class > maxBufferClass {
		return
	}
	b = b[:0]
	bufferPools[class].Put(&b)
}

func bufferClass(n int) int {
	if n <= 1<<minBufferClass {
		return minBufferClass
	}
	return bits.Len(uint(n - 1))
}

// byteBudget bounds the bytes held by pulls in flight (compressed body plus
// its decompression), whatever the number of shards: a pull waits for room
// before it reads its body. SLS announces both sizes in the headers.
type byteBudget struct {
	limit int64
	sem   *semaphore.Weighted
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, sem: semaphore.NewWeighted(limit)}
}

// acquire reserves n bytes (at most the whole budget, so one huge pull still
// proceeds alone) and returns what to release.
func (b *byteBudget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(max(n, 1), b.limit)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return 0, err
	}
	return n, nil
}

func (b *byteBudget) release(n int64) { b.sem.Release(n) }
