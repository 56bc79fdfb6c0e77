// Package power is how the host is told to stop and how it stops: the
// signals PID 1 receives, the ACPI power button (an input device), and the
// final reboot(2).
package power

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Action is what the host does at the end of shutdown.
type Action int

// The two ends of a shutdown.
const (
	PowerOff Action = iota
	Reboot
)

func (a Action) String() string {
	if a == Reboot {
		return "reboot"
	}
	return "power off"
}

// ForSignal maps a signal PID 1 received to an Action: SIGINT (ctrl-alt-del
// once DisableCAD ran) reboots; SIGTERM, SIGUSR2 and SIGPWR power off.
func ForSignal(sig os.Signal) (Action, bool) {
	switch sig {
	case unix.SIGINT:
		return Reboot, true
	case unix.SIGTERM, unix.SIGUSR2, unix.SIGPWR:
		return PowerOff, true
	}
	return 0, false
}

// Signals are the signals ForSignal understands.
var Signals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGUSR2, unix.SIGPWR}

// DisableCAD makes ctrl-alt-del send SIGINT to PID 1 instead of rebooting
// at once.
func DisableCAD() error {
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		return fmt.Errorf("disabling ctrl-alt-del: %w", err)
	}
	return nil
}

// Halt ends the system. It returns only on failure.
func Halt(a Action) error {
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if a == Reboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	return fmt.Errorf("%s: %w", a, unix.Reboot(cmd))
}

// Input event constants (linux/input-event-codes.h).
const (
	evKey    = 1
	keyPower = 116
	// eventSize is sizeof(struct input_event) on 64-bit: a timeval and
	// type, code, value.
	eventSize = 24
)

// IsPowerPress reports whether one struct input_event is the power key
// going down.
func IsPowerPress(ev []byte) bool {
	if len(ev) < eventSize {
		return false
	}
	typ := binary.NativeEndian.Uint16(ev[16:])
	code := binary.NativeEndian.Uint16(ev[18:])
	value := int32(binary.NativeEndian.Uint32(ev[20:]))
	return typ == evKey && code == keyPower && value == 1
}

// WatchButton reads every input device matching glob (/dev/input/event*)
// and calls pressed when one reports the power key; it returns the devices
// it watches. The kernel's ACPI button driver (module "button") turns the
// power button (qemu's system_powerdown) into such a device; the evdev
// module gives it its /dev/input/event node.
func WatchButton(ctx context.Context, glob string, pressed func()) ([]string, error) {
	paths, err := filepath.Glob(glob)
	if err != nil {
		return nil, fmt.Errorf("finding input devices: %w", err)
	}
	slices.Sort(paths)
	var watched []string
	var errs []error
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("opening input device: %w", err))
			continue
		}
		watched = append(watched, p)
		go watch(ctx, f, pressed)
	}
	if len(watched) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no input device matches %s", glob))
	}
	return watched, errors.Join(errs...)
}

func watch(ctx context.Context, f *os.File, pressed func()) {
	defer f.Close()
	go func() {
		<-ctx.Done()
		_ = f.SetReadDeadline(time.Now())
	}()
	buf := make([]byte, eventSize*64)
	for {
		n, err := io.ReadAtLeast(f, buf, eventSize)
		if err != nil {
			return
		}
		for off := 0; off+eventSize <= n; off += eventSize {
			if IsPowerPress(buf[off : off+eventSize]) {
				pressed()
			}
		}
	}
}
