package main

import (
	"os"
	"runtime/debug"
)

// softMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT sets one.
// A build's live heap is some tens of MiB whatever the size of the content
// (file data streams from the store to the outputs), but with the default
// GOGC the garbage of streaming hundreds of MB could grow the heap to
// several times that before a collection. The limit makes the collector
// run as the heap nears it, so peak memory stays flat in the content.
const softMemoryLimit = 64 << 20

// setMemoryLimit applies softMemoryLimit when GOMEMLIMIT is not set.
func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
}
