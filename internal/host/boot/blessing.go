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
	"github.com/bulkhead-dev/bulkhead/internal/host/attempts"
	"github.com/bulkhead-dev/bulkhead/internal/host/bless"
	"github.com/bulkhead-dev/bulkhead/internal/host/blockdev"
	"github.com/bulkhead-dev/bulkhead/internal/host/power"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysmount"
	"golang.org/x/sys/unix"
)

// SettleParam sets on the kernel command line how long containerd and
// every service must run without a break before the boot entry is blessed
// (bulkhead.settle=10s).
const SettleParam = bootparam.Settle

// DefaultSettle is the settle time without SettleParam.
const DefaultSettle = 10 * time.Second

// DeadlineParam sets how long a counted boot has to become healthy before
// its entry is marked bad (bulkhead.deadline=5m).
const DeadlineParam = bootparam.Deadline

// DefaultDeadline is the assessment deadline without DeadlineParam.
const DefaultDeadline = 5 * time.Minute

// ESPDir is where the ESP is mounted while the entry is blessed.
const ESPDir = "/run/bulkhead/esp"

// healthPoll is how often the settle timer looks at the services.
const healthPoll = 250 * time.Millisecond

// settleTime reads SettleParam from a kernel command line.
func settleTime(cmdline string) (time.Duration, error) {
	return durationParam(cmdline, SettleParam, DefaultSettle)
}

// deadlineTime reads DeadlineParam from a kernel command line.
func deadlineTime(cmdline string) (time.Duration, error) {
	return durationParam(cmdline, DeadlineParam, DefaultDeadline)
}

// durationParam reads the last key=DURATION of a kernel command line.
func durationParam(cmdline, key string, def time.Duration) (time.Duration, error) {
	d := def
	for _, f := range strings.Fields(cmdline) {
		v, ok := strings.CutPrefix(f, key+"=")
		if !ok {
			continue
		}
		p, err := time.ParseDuration(v)
		if err != nil || p < 0 {
			return def, fmt.Errorf("%s=%s is not a duration", key, v)
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

// healthParts are containerd and the services, as runningSince functions
// (a service with a health check counts from when it passed it), and
// their names.
func (h *host) healthParts() ([]runningSince, []string) {
	parts := []runningSince{func() (time.Time, bool) {
		select {
		case <-h.daemon.Done():
			return time.Time{}, false
		default:
			return h.ctrdReady, true
		}
	}}
	names := []string{"containerd"}
	for _, s := range h.services {
		parts = append(parts, s.healthySince)
		names = append(names, "service "+s.b.Name)
	}
	if h.dataErr != nil {
		parts = append(parts, func() (time.Time, bool) { return time.Time{}, false })
		names = append(names, "data partition")
	}
	return parts, names
}

// notHealthy says which parts are not healthy now, and why where known.
func (h *host) notHealthy() string {
	parts, names := h.healthParts()
	var bad []string
	for i, p := range parts {
		if _, ok := p(); ok {
			continue
		}
		why := names[i] + " not running"
		switch {
		case i > len(h.services):
			why = "data partition not open: " + h.dataErr.Error()
		case i > 0:
			why = h.services[i-1].unhealthy()
		}
		bad = append(bad, why)
	}
	if len(bad) == 0 {
		return "healthy, but not for the whole settle time"
	}
	return strings.Join(bad, "; ")
}

// blessWhenHealthy assesses a boot from a counted entry: once containerd
// and every service have been healthy for the settle time without a
// break, the entry is blessed; when that has not happened by the deadline
// (or containerd died), the entry is marked bad and, if another entry can
// boot, the machine reboots into it. Each attempt is recorded on /var. It
// does nothing when the system did not boot from a counted entry.
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
	deadline, err := deadlineTime(cmdline())
	if err != nil {
		h.logf("boot: %v; deadline %s", err, deadline)
	}
	entry := path.Base(strings.ReplaceAll(countPath, `\`, "/"))
	h.recordBegin(entry)
	h.logf("boot: assessing %s: blessed after %s healthy, marked bad if not healthy within %s", entry, settle, deadline)
	dctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	parts, _ := h.healthParts()
	stop := make(chan struct{})
	go func() {
		select {
		case <-h.stopping:
		case <-h.daemon.Done():
		case <-dctx.Done():
		}
		close(stop)
	}()
	if !waitHealthy(dctx, parts, settle, stop) {
		h.assessmentFailed(ctx, countPath, entry, deadline)
		return
	}
	blessed, err := h.onESP(ctx, func(esp string) (string, error) { return bless.Bless(esp, countPath) })
	if err != nil {
		h.logf("boot: blessing %s: %v", countPath, err)
		return
	}
	h.recordEnd(entry, attempts.Blessed, "")
	h.logf("boot: blessed entry %s after %s healthy", path.Base(blessed), settle)
	if v := entryVersion(entry); v != "" {
		if err := raiseFloor(v); err != nil {
			h.logf("boot: raising the rollback floor to %s: %v", v, err)
		}
	}
}

// assessmentFailed marks the entry bad and reboots when another entry can
// boot; a shutdown under way is not a failure.
func (h *host) assessmentFailed(ctx context.Context, countPath, entry string, deadline time.Duration) {
	select {
	case <-h.stopping:
		return
	default:
	}
	if ctx.Err() != nil {
		return
	}
	reason := h.notHealthy()
	if dead := h.daemon.Done(); isClosed(dead) {
		reason = "containerd exited"
	} else {
		reason = fmt.Sprintf("not healthy within %s: %s", deadline, reason)
	}
	h.logf("boot: assessment of %s failed: %s", entry, reason)
	var fallbacks []string
	bad, err := h.onESP(ctx, func(esp string) (string, error) {
		var ferr error
		if fallbacks, ferr = bless.Fallbacks(esp, countPath); ferr != nil {
			return "", ferr
		}
		return bless.MarkBad(esp, countPath)
	})
	if err != nil {
		h.logf("boot: marking %s bad: %v", entry, err)
		return
	}
	h.recordEnd(entry, attempts.Bad, reason)
	if len(fallbacks) == 0 {
		h.logf("boot: marked entry %s bad; no other entry can boot, staying on this version", path.Base(bad))
		return
	}
	h.logf("boot: marked entry %s bad; rebooting into %s", path.Base(bad), strings.Join(fallbacks, ", "))
	h.requestStop(power.Reboot, "boot assessment")
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// recordBegin and recordEnd keep the attempt record on /var; a failure to
// write it is logged, never fatal.
func (h *host) recordBegin(entry string) {
	if err := attempts.Begin(attempts.DefaultPath, entry, entryVersion(entry), time.Now().UTC()); err != nil {
		h.logf("boot: %v", err)
	}
}

func (h *host) recordEnd(entry, outcome, reason string) {
	if err := attempts.End(attempts.DefaultPath, entry, outcome, reason, time.Now().UTC()); err != nil {
		h.logf("boot: %v", err)
	}
}

// entryVersion is VERSION of an entry file bulkhead-VERSION[+LEFT[-DONE]].conf.
func entryVersion(entry string) string {
	name, _ := bless.Uncounted(entry)
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".conf"), ".efi")
	return strings.TrimPrefix(name, "bulkhead-")
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

// onESP mounts the ESP systemd-boot started from, runs do on it and
// unmounts it; one at a time.
func (h *host) onESP(ctx context.Context, do func(esp string) (string, error)) (string, error) {
	espMu.Lock()
	defer espMu.Unlock()
	esp, unmount, err := h.mountESP(ctx)
	if err != nil {
		return "", err
	}
	out, err := do(esp)
	return out, errors.Join(err, unmount())
}

// mountESP mounts the ESP systemd-boot started from at ESPDir; the caller
// holds espMu.
func (h *host) mountESP(ctx context.Context) (string, func() error, error) {
	if _, err := h.countedOrBlessed(); err != nil {
		return "", nil, err
	}
	uuid, err := bless.ESPPartUUID(bless.DefaultEfivars)
	if err != nil {
		return "", nil, err
	}
	dev, err := blockdev.FindPartUUID(ctx, uuid)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(ESPDir, 0o700); err != nil {
		return "", nil, fmt.Errorf("creating %s: %w", ESPDir, err)
	}
	if err := unix.Mount(dev, ESPDir, "vfat", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "flush"); err != nil {
		return "", nil, fmt.Errorf("mounting ESP %s: %w", dev, err)
	}
	return ESPDir, func() error {
		if err := unix.Unmount(ESPDir, 0); err != nil {
			_ = unix.Unmount(ESPDir, unix.MNT_DETACH)
			return fmt.Errorf("unmounting ESP: %w", err)
		}
		return nil
	}, nil
}

// countedOrBlessed makes sure efivarfs is mounted (the ESP's identity is
// in it) on a machine booted through UEFI.
func (h *host) countedOrBlessed() (string, error) {
	p, err := h.countedEntry()
	if errors.Is(err, bless.ErrNotCounted) {
		if _, serr := os.Stat("/sys/firmware/efi"); serr != nil {
			return "", errors.New("not booted through UEFI: no ESP")
		}
		return "", nil
	}
	return p, err
}
