package main

import (
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// startMemProfile writes a heap profile to the file that the (unlisted)
// environment variable BULKHEAD_MEMPROFILE names each time the live heap
// reaches a new peak, checked every 100 ms: the profile left is the heap
// near its largest, for `go tool pprof -sample_index=inuse_space`.
func startMemProfile() {
	path := os.Getenv("BULKHEAD_MEMPROFILE")
	if path == "" {
		return
	}
	runtime.MemProfileRate = 64 << 10
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		for range time.Tick(100 * time.Millisecond) {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak+peak/20 {
				peak = v
				runtime.GC()
				if f, err := os.Create(path); err == nil {
					pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
}

// startCPUProfile writes a CPU profile of the whole run to the file that
// the (unlisted) environment variable BULKHEAD_CPUPROFILE names, for `go
// tool pprof`; the returned function ends it.
func startCPUProfile() (stop func()) {
	path := os.Getenv("BULKHEAD_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
