package memtest

import "testing"

var sink []byte

func TestAllocatedCountsAllocations(t *testing.T) {
	got := Allocated(func() { sink = make([]byte, 8*MiB) })
	if got < 8*MiB || got > 9*MiB {
		t.Fatalf("Allocated(8 MiB) = %d bytes", got)
	}
	if got := Allocated(func() {}); got > MiB {
		t.Fatalf("Allocated(nothing) = %d bytes", got)
	}
}
