// Package memtest measures how much memory a piece of code costs, for tests
// that hold readers of hostile input to a bound.
package memtest

import (
	"runtime"
	"runtime/metrics"
)

const allocsMetric = "/gc/heap/allocs:bytes"

// Allocated runs f and returns the bytes of heap it allocated: an upper
// bound on how far f raised the heap's peak, whatever the garbage
// collector did meanwhile. Other goroutines' allocations count too, so
// tests that use it should not run in parallel.
func Allocated(f func()) uint64 {
	runtime.GC()
	before := read()
	f()
	return read() - before
}

func read() uint64 {
	s := []metrics.Sample{{Name: allocsMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// MiB is a mebibyte, for readable bounds.
const MiB = 1 << 20
