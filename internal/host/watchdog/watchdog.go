// Package watchdog arms the kernel's watchdog device (/dev/watchdog: the
// i6300esb under qemu, softdog elsewhere) and pets it while the host is
// sound, so a hung init, a dead containerd or a stuck shutdown ends in a
// reset: the boot counter of an unblessed entry then runs down and the
// boot loader falls back to the other slot.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultDevice is the first watchdog the kernel registers.
const DefaultDevice = "/dev/watchdog"

// Watchdog is an armed watchdog device.
type Watchdog struct {
	f       *os.File
	timeout time.Duration
}

// Open arms the watchdog at dev with the given timeout (whole seconds; the
// driver may round it) and returns it. From here on the machine resets
// unless Pet is called within the timeout.
func Open(dev string, timeout time.Duration) (*Watchdog, error) {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("arming watchdog: %w", err)
	}
	secs := int(timeout / time.Second)
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.WDIOC_SETTIMEOUT, secs); err != nil {
		// Not every driver lets the timeout change: keep its own.
		if got, gerr := unix.IoctlGetInt(int(f.Fd()), unix.WDIOC_GETTIMEOUT); gerr == nil && got > 0 {
			secs = got
		}
	} else if got, gerr := unix.IoctlGetInt(int(f.Fd()), unix.WDIOC_GETTIMEOUT); gerr == nil && got > 0 {
		secs = got
	}
	return &Watchdog{f: f, timeout: time.Duration(secs) * time.Second}, nil
}

// Timeout is the timeout the driver runs with.
func (w *Watchdog) Timeout() time.Duration { return w.timeout }

// Pet restarts the countdown.
func (w *Watchdog) Pet() error {
	if _, err := w.f.Write([]byte{'1'}); err != nil {
		return fmt.Errorf("petting watchdog: %w", err)
	}
	return nil
}

// Disarm stops the watchdog (the "magic close"), for a clean power-off
// that must not be cut short by a reset.
func (w *Watchdog) Disarm() error {
	_, err := w.f.Write([]byte{'V'})
	return errors.Join(err, w.f.Close())
}

// Keep pets w every third of its timeout while sound says the host is
// fine, until ctx ends. When sound turns false it stops petting and calls
// gone once: the reset follows within the timeout.
func Keep(ctx context.Context, w *Watchdog, sound func() error, gone func(error)) {
	period := max(w.timeout/3, 100*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := sound(); err != nil {
			gone(err)
			return
		}
		_ = w.Pet()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
