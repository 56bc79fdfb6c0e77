package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/init/bless"
	"github.com/bulkhead-dev/bulkhead/internal/init/blockdev"
	"github.com/bulkhead-dev/bulkhead/internal/init/sysmount"
	"golang.org/x/sys/unix"
)

// SettleParam sets on the kernel command line how long containerd and
// every service must run without a break before the boot entry is blessed
// (bulkhead.settle=10s).
const SettleParam = bootparam.Settle

// DefaultSettle is the settle time without SettleParam.
const DefaultSettle = 10 * time.Second

// ESPDir is where the ESP is mounted while the entry is blessed.
const ESPDir = "/run/bulkhead/esp"

// healthPoll is how often the settle timer looks at the services.
const healthPoll = 250 * time.Millisecond

// settleTime reads SettleParam from a kernel command line.
func settleTime(cmdline string) (time.Duration, error) {
	d := DefaultSettle
	for _, f := range strings.Fields(cmdline) {
		v, ok := strings.CutPrefix(f, SettleParam+"=")
		if !ok {
			continue
		}
		p, err := time.ParseDuration(v)
		if err != nil || p < 0 {
			return DefaultSettle, fmt.Errorf("%s=%s is not a duration", SettleParam, v)
		}
		d = p
	}
	return d, nil
}

// runningSince reports when something started running, and whether it is
// running now.
type runningSince func() (time.Time, bool)

// healthyFrom returns the moment since which all of parts have been
// running without a break (the latest start), or false when one is not
// running now.
func healthyFrom(parts []runningSince) (time.Time, bool) {
	var from time.Time
	for _, p := range parts {
		since, ok := p()
		if !ok {
			return time.Time{}, false
		}
		if since.After(from) {
			from = since
		}
	}
	return from, true
}

// waitHealthy returns once parts have all been running for settle without
// a break; false when ctx ends or stop closes first.
func waitHealthy(ctx context.Context, parts []runningSince, settle time.Duration, stop <-chan struct{}) bool {
	t := time.NewTicker(healthPoll)
	defer t.Stop()
	for {
		if from, ok := healthyFrom(parts); ok && time.Since(from) >= settle {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		case <-t.C:
		}
	}
}

// healthParts are containerd and the services, as runningSince functions.
func (h *host) healthParts() []runningSince {
	parts := []runningSince{func() (time.Time, bool) {
		select {
		case <-h.daemon.Done():
			return time.Time{}, false
		default:
			return h.ctrdReady, true
		}
	}}
	for _, s := range h.services {
		parts = append(parts, s.sup.RunningSince)
	}
	return parts
}

// blessWhenHealthy blesses the boot entry the system started from once
// containerd and every service have run for the settle time without a
// restart. It does nothing when the system did not boot from a counted
// entry.
func (h *host) blessWhenHealthy(ctx context.Context) {
	countPath, err := h.countedEntry()
	if errors.Is(err, bless.ErrNotCounted) {
		return
	}
	if err != nil {
		h.logf("boot: %v", err)
		return
	}
	settle, err := settleTime(cmdline())
	if err != nil {
		h.logf("boot: %v; settling for %s", err, settle)
	}
	if !waitHealthy(ctx, h.healthParts(), settle, h.daemon.Done()) {
		return
	}
	entry, err := h.blessEntry(ctx, countPath)
	if err != nil {
		h.logf("boot: blessing %s: %v", countPath, err)
		return
	}
	h.logf("boot: blessed entry %s after %s healthy", path.Base(entry), settle)
}

// countedEntry mounts efivarfs if needed and returns LoaderBootCountPath,
// or bless.ErrNotCounted (also on a machine without EFI).
func (h *host) countedEntry() (string, error) {
	if _, err := os.Stat("/sys/firmware/efi"); err != nil {
		return "", bless.ErrNotCounted
	}
	if !sysmount.IsMountPoint(bless.DefaultEfivars) {
		err := unix.Mount("efivarfs", bless.DefaultEfivars, "efivarfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, "")
		if err != nil {
			return "", fmt.Errorf("mounting efivarfs: %w", err)
		}
	}
	return bless.BootCountPath(bless.DefaultEfivars)
}

// blessEntry mounts the ESP systemd-boot started from, blesses the entry
// countPath on it and unmounts it; it returns the blessed entry's path.
func (h *host) blessEntry(ctx context.Context, countPath string) (string, error) {
	uuid, err := bless.ESPPartUUID(bless.DefaultEfivars)
	if err != nil {
		return "", err
	}
	dev, err := blockdev.FindPartUUID(ctx, uuid)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(ESPDir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", ESPDir, err)
	}
	if err := unix.Mount(dev, ESPDir, "vfat", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "flush"); err != nil {
		return "", fmt.Errorf("mounting ESP %s: %w", dev, err)
	}
	entry, err := bless.Bless(ESPDir, countPath)
	if uerr := unix.Unmount(ESPDir, 0); uerr != nil {
		_ = unix.Unmount(ESPDir, unix.MNT_DETACH)
		err = errors.Join(err, fmt.Errorf("unmounting ESP: %w", uerr))
	}
	return entry, err
}
