package boot

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/ctrd"
	"github.com/bulkhead-dev/bulkhead/internal/host/kmod"
	"github.com/bulkhead-dev/bulkhead/internal/host/logline"
	"github.com/bulkhead-dev/bulkhead/internal/host/measured"
	"github.com/bulkhead-dev/bulkhead/internal/host/netconf"
	"github.com/bulkhead-dev/bulkhead/internal/host/power"
	"github.com/bulkhead-dev/bulkhead/internal/host/reaper"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysmount"
	"github.com/bulkhead-dev/bulkhead/internal/host/watchdog"
	"github.com/bulkhead-dev/bulkhead/internal/modindex"
	"golang.org/x/sys/unix"
)

// Paths on the host.
const (
	LogDir     = "/run/log"
	Containerd = "/usr/bin/containerd"
	Runc       = "/usr/bin/runc"
	ResolvConf = "/run/resolvconf/resolv.conf"
)

// Timeouts of the boot and shutdown steps.
const (
	containerdDeadline = 30 * time.Second
	networkDeadline    = 10 * time.Second
	serviceGrace       = 10 * time.Second
	onshutdownDeadline = 30 * time.Second
	containerdGrace    = 5 * time.Second
	processGrace       = 2 * time.Second
)

// host is stage 1's state.
type host struct {
	console io.Writer
	log     *logline.Writer
	logf    func(string, ...any)

	began     time.Time // when stage 1 started
	reaper    *reaper.Reaper
	daemon    *ctrd.Daemon
	ctrdReady time.Time // when containerd answered
	client    *ctrd.Client
	services  []*service
	stop      chan power.Action
	stopping  chan struct{} // closed once a shutdown is asked for
	stopOnce  sync.Once
	watchdog  *watchdog.Watchdog
	hung      atomic.Bool  // bulkhead.fault=hang: the watchdog stops being petted
	secrets   *hostSecrets // nil when the host has no secrets
	dataErr   error        // why the data partition the boot needs is not open
}

// run is stage 1; it ends in reboot(2).
func (h *host) run(ctx context.Context) {
	h.began = time.Now()
	h.logf("started (uptime %s)", uptime())
	h.stop = make(chan power.Action, 1)
	h.stopping = make(chan struct{})
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, power.Signals...)
	h.reaper = reaper.New()
	go h.reaper.Run(ctx)

	// containerd keeps nothing on /var, so it starts while the modules
	// load and the data partition (which needs the disk's modules) mounts.
	slot, err := bootSlot()
	if err != nil {
		h.logf("finding the root slot: %v", err)
	}
	dataUUID, withData := slot.data, slot.data != ""
	h.system(withData)
	ready := h.startContainerd()
	h.loadModules()
	h.logPCR11()
	h.armWatchdog(ctx)
	h.injectFault()
	if withData {
		h.mountData(ctx, dataUUID)
	}
	netDone := h.network(ctx)
	h.watchPowerButton(ctx)
	go h.waitSignals(sigs)

	if err := ready(ctx); err != nil {
		h.logf("fatal: %v", err)
	} else {
		<-netDone
		h.hostMetadata(ctx)
		h.secrets = h.startSecrets(ctx)
		h.serveAPI(ctx)
		h.onboot(ctx)
		h.startServices(ctx)
		go h.blessWhenHealthy(ctx)
	}
	a := <-h.stop
	h.shutdown(ctx, a)
}

// requestStop asks for a shutdown; the first request wins.
func (h *host) requestStop(a power.Action, why string) {
	h.stopOnce.Do(func() {
		h.logf("%s: shutting down (%s)", why, a)
		close(h.stopping)
		h.stop <- a
	})
}

func (h *host) waitSignals(sigs <-chan os.Signal) {
	for s := range sigs {
		if a, ok := power.ForSignal(s); ok {
			h.requestStop(a, "signal "+unix.SignalName(s.(unix.Signal)))
		}
	}
}

// system mounts the file systems (all but /var when the data partition is
// to be mounted there), makes / read-only, starts the log files and hardens
// the kernel.
func (h *host) system(withData bool) {
	skipped, err := sysmount.MountAll(systemMounts(withData))
	if err != nil {
		h.logf("mounts: %v", err)
	}
	if len(skipped) > 0 {
		h.logf("mounts: skipped %s (not in this kernel)", strings.Join(skipped, ", "))
	}
	h.openLog()
	if err := sysmount.RootReadOnly(); err != nil {
		h.logf("%v", err)
	} else if err := sysmount.ProbeReadOnly("/"); err != nil {
		h.logf("warning: %v", err)
	} else {
		h.logf("root is read-only (a test write to / was refused)")
	}
	for _, err := range sysctl.Apply("/proc/sys", sysctl.Hardening) {
		h.logf("sysctl: %v", err)
	}
	if ctrls, err := sysmount.EnableControllers("/sys/fs/cgroup"); err != nil {
		h.logf("cgroups: %v", err)
	} else {
		h.logf("cgroups: enabled %s", strings.Join(ctrls, " "))
	}
	if err := power.DisableCAD(); err != nil {
		h.logf("%v", err)
	}
	if name, err := os.ReadFile("/etc/hostname"); err == nil {
		if n := strings.TrimSpace(string(name)); n != "" {
			if err := unix.Sethostname([]byte(n)); err != nil {
				h.logf("setting hostname: %v", err)
			}
		}
	}
}

// openLog adds /run/log/init.log to the init's own log.
func (h *host) openLog() {
	if err := os.MkdirAll(LogDir, 0o755); err != nil {
		h.logf("creating %s: %v", LogDir, err)
		return
	}
	f, err := h.logFile("init")
	if err != nil {
		h.logf("%v", err)
		return
	}
	h.log.SetSinks(h.console, f)
}

// logFile opens /run/log/<name>.log for appending.
func (h *host) logFile(name string) (io.Writer, error) {
	f, err := os.OpenFile(filepath.Join(LogDir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// output returns a writer that prefixes lines with "[name] " for the
// console and /run/log/<file>.log.
func (h *host) output(name, file string) *logline.Writer {
	sinks := []io.Writer{h.console}
	if f, err := h.logFile(file); err == nil {
		sinks = append(sinks, f)
	} else {
		h.logf("%v", err)
	}
	return logline.New("["+name+"] ", sinks...)
}

// startContainerd starts containerd and returns a function that waits for
// it to be ready and connects to it.
func (h *host) startContainerd() func(context.Context) error {
	begin := time.Now()
	d, err := ctrd.StartDaemon(h.reaper, Containerd, ctrd.DefaultPaths, "error", h.output("containerd", "containerd"))
	if err != nil {
		return func(context.Context) error { return err }
	}
	h.daemon = d
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, containerdDeadline)
		defer cancel()
		if err := d.WaitReady(ctx); err != nil {
			return err
		}
		h.ctrdReady = time.Now()
		h.logf("containerd ready in %s (uptime %s)", time.Since(begin).Round(time.Millisecond), uptime())
		c, err := ctrd.Connect(ctrd.DefaultPaths, Runc)
		if err != nil {
			return err
		}
		h.client = c
		return nil
	}
}

// loadModules loads every module of the running kernel.
func (h *host) loadModules() {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		h.logf("modules: %v", err)
		return
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
	if _, err := os.Stat(dir); err != nil {
		h.logf("modules: none for this kernel (%s)", dir)
		return
	}
	begin := time.Now()
	results, err := kmod.LoadAll(dir)
	if err != nil {
		h.logf("modules: %v", err)
	}
	var loaded []string
	for _, r := range results {
		if r.Err != nil {
			h.logf("modules: %v", r.Err)
			continue
		}
		loaded = append(loaded, modindex.Name(r.Path))
	}
	h.logf("modules: loaded %d in %s: %s", len(loaded), time.Since(begin).Round(time.Millisecond), strings.Join(loaded, " "))
}

// network brings up loopback and the primary interface in the background;
// the returned channel closes when done (or given up).
func (h *host) network(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := netconf.LoopbackUp(); err != nil {
			h.logf("network: %v", err)
		}
		cfg, err := netconf.FromCmdline(cmdline())
		if err != nil {
			h.logf("network: %v", err)
			return
		}
		if cfg.Mode == netconf.Off {
			h.logf("network: off (ip= on the command line)")
			return
		}
		upCtx, cancel := context.WithTimeout(ctx, networkDeadline)
		defer cancel()
		lease, dev, err := netconf.Up(upCtx, cfg)
		switch {
		case err != nil && dev == "":
			h.logf("network: %v", err)
			return
		case err != nil:
			h.logf("network: %s: %v", dev, err)
			return
		}
		h.logf("network: %s %s (uptime %s)", dev, lease, uptime())
		if err := netconf.WriteResolvConf(ResolvConf, lease.DNS); err != nil {
			h.logf("network: %v", err)
		}
		go netconf.Keep(ctx, dev, lease, func(l netconf.Lease, err error) {
			if err != nil {
				h.logf("network: %s: %v", dev, err)
				return
			}
			h.logf("network: %s %s", dev, l)
			if err := netconf.WriteResolvConf(ResolvConf, l.DNS); err != nil {
				h.logf("network: %v", err)
			}
		})
		if cfg.Hostname != "" {
			if cur, _ := os.Hostname(); cur == "" || cur == "(none)" {
				_ = unix.Sethostname([]byte(cfg.Hostname))
			}
		}
	}()
	return done
}

// watchPowerButton turns a power key press into a power off.
func (h *host) watchPowerButton(ctx context.Context) {
	devs, err := power.WatchButton(ctx, "/dev/input/event*", func() {
		h.requestStop(power.PowerOff, "power button")
	})
	if err != nil {
		h.logf("power button: %v", err)
	}
	if len(devs) > 0 {
		h.logf("power button: watching %s", strings.Join(devs, " "))
	}
}

// killAll ends every process but PID 1: SIGTERM, then SIGKILL after grace.
func (h *host) killAll() {
	_ = unix.Kill(-1, unix.SIGTERM)
	deadline := time.Now().Add(processGrace)
	for time.Now().Before(deadline) {
		h.reaper.Reap()
		if userProcesses("/proc") == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = unix.Kill(-1, unix.SIGKILL)
	h.reaper.Reap()
}

// logOrphans reports how many orphans (exited shims, daemons' children)
// PID 1 reaped.
func (h *host) logOrphans() {
	h.logf("reaped %d orphaned processes", h.reaper.Orphans())
}

// userProcesses counts the processes other than PID 1 that are not kernel
// threads (kill(-1, 0) cannot tell: it succeeds on kernel threads).
func userProcesses(proc string) int {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue
		}
		if !kernelThread(string(stat)) {
			n++
		}
	}
	return n
}

// kernelThread reads the PF_KTHREAD flag from a /proc/<pid>/stat line.
func kernelThread(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return false
	}
	// After the command: state ppid pgrp session tty_nr tpgid flags.
	f := strings.Fields(stat[i+1:])
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfKthread != 0
}

// pfKthread is the kernel's PF_KTHREAD task flag.
const pfKthread = 0x00200000

// unmountAll detaches the writable file systems after syncing them.
func (h *host) unmountAll() {
	unix.Sync()
	for _, m := range []string{"/var", "/tmp", "/run"} {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			h.logf("unmounting %s: %v", m, err)
		}
	}
	_ = unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
	unix.Sync()
}

// logPCR11 logs PCR 11, what systemd-stub measured of the UKI this host
// booted (bulkhead verify --secureboot predicts it), when there is a TPM.
func (h *host) logPCR11() {
	if pcr, err := measured.PCR(measured.PCRPath, 11); err == nil {
		h.logf("tpm: PCR 11 sha256:%s", pcr)
	} else if !errors.Is(err, measured.ErrNoTPM) {
		h.logf("tpm: %v", err)
	}
}
