package netconf

import (
	"context"

	"golang.org/x/sys/unix"
)

// waitRandom waits until the kernel's random number generator is
// initialized. The DHCP library draws each transaction id with a
// non-blocking getrandom that it polls until its context ends, and
// polling never makes the kernel seed itself; a blocking getrandom does
// (from CPU timing jitter, in about a second). Without it a host with no
// hardware generator the kernel trusts (a guest under software
// emulation, the hardened kernel) may poll for minutes.
func waitRandom(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := unix.Getrandom(b[:], 0)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
