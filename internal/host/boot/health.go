package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/healthcheck"
	"github.com/bulkhead-dev/bulkhead/internal/host/ctrd"
	"github.com/bulkhead-dev/bulkhead/internal/host/supervise"
	"github.com/bulkhead-dev/bulkhead/internal/host/watchdog"
	"golang.org/x/sys/unix"
)

// health watches one service's health check while the service runs.
type health struct {
	name   string
	check  healthcheck.Check
	timing healthcheck.Timing
	sup    *supervise.Supervisor
	logf   func(string, ...any)

	mu      sync.Mutex
	since   time.Time // healthy since; zero when not healthy
	fails   int       // failures in a row
	lastErr error
}

// healthySince reports since when the service has passed its check, and
// whether it passes now.
func (m *health) healthySince() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.since, !m.since.IsZero()
}

// run probes every interval until ctx ends.
func (m *health) run(ctx context.Context) {
	t := time.NewTicker(m.timing.Interval)
	defer t.Stop()
	var lastStart time.Time
	for {
		proc, started := m.sup.Current()
		switch {
		case proc == nil:
			m.reset()
		case started != lastStart:
			lastStart = started
			m.reset() // a restart starts over
			fallthrough
		default:
			m.record(m.probe(ctx, proc), time.Since(started) < m.timing.StartPeriod)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *health) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.since, m.fails = time.Time{}, 0
}

// record takes one probe's result. A failure in the start period does not
// count; Retries failures in a row make a healthy service unhealthy.
func (m *health) record(err error, grace bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		if m.since.IsZero() {
			m.since = time.Now()
			m.logf("service %s healthy", m.name)
		}
		m.fails, m.lastErr = 0, nil
		return
	}
	m.lastErr = err
	if grace {
		return
	}
	m.fails++
	if m.fails == m.timing.Retries {
		if !m.since.IsZero() {
			m.logf("service %s unhealthy: %v", m.name, err)
		} else {
			m.logf("service %s not healthy yet: %v", m.name, err)
		}
		m.since = time.Time{}
	}
}

// lastError is the last probe's failure, or nil.
func (m *health) lastError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// probe runs the check once against the running process.
func (m *health) probe(ctx context.Context, proc supervise.Process) error {
	task, ok := proc.(*ctrd.Task)
	if !ok {
		return errors.New("not a container task")
	}
	if len(m.check.Exec) > 0 {
		ctx, cancel := context.WithTimeout(ctx, m.timing.Timeout)
		defer cancel()
		var out bytes.Buffer
		code, err := task.Exec(ctx, m.check.Exec, &out)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("exec %s: exit %d: %s", strings.Join(m.check.Exec, " "), code, strings.TrimSpace(lastLine(out.String())))
		}
		return nil
	}
	return healthcheck.ProbeNetwork(ctx, m.check, m.timing.Timeout, netnsDialer(task.Pid()))
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// netnsDialer dials inside the network namespace of process pid (the host's
// when the service shares it), so a check reaches 127.0.0.1 of the service.
func netnsDialer(pid uint32) healthcheck.Dialer {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			// The thread stays locked and so ends with this goroutine,
			// taking the namespace switch with it.
			runtime.LockOSThread()
			ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
			if err != nil {
				ch <- result{nil, fmt.Errorf("opening network namespace: %w", err)}
				return
			}
			defer ns.Close()
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("entering network namespace: %w", err)}
				return
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		select {
		case r := <-ch:
			return r.c, r.err
		case <-ctx.Done():
			go func() {
				if r := <-ch; r.c != nil {
					r.c.Close()
				}
			}()
			return nil, ctx.Err()
		}
	}
}

// watchdogTimeout is how long a hung host runs before the watchdog resets
// it.
const watchdogTimeout = 30 * time.Second

// armWatchdog arms /dev/watchdog, when the kernel has one, and pets it
// while containerd (once started) is alive. A host without a watchdog
// boots as before, saying so.
func (h *host) armWatchdog(ctx context.Context) {
	if _, err := os.Stat(watchdog.DefaultDevice); err != nil {
		h.logf("watchdog: none (%v)", err)
		return
	}
	timeout, err := durationParam(cmdline(), bootparam.Watchdog, watchdogTimeout)
	if err != nil {
		h.logf("watchdog: %v; using %s", err, timeout)
	}
	wd, err := watchdog.Open(watchdog.DefaultDevice, timeout)
	if err != nil {
		h.logf("%v", err)
		return
	}
	h.watchdog = wd
	h.logf("watchdog: armed, %s", wd.Timeout())
	sound := func() error {
		if h.hung.Load() {
			return errors.New("stage 1 hung")
		}
		if h.daemon != nil && isClosed(h.daemon.Done()) && !isClosed(h.stopping) {
			return errors.New("containerd exited")
		}
		return nil
	}
	go watchdog.Keep(ctx, wd, sound, func(err error) {
		h.logf("watchdog: %v: no longer petting it, reset within %s", err, wd.Timeout())
	})
}

// disarmWatchdog stops the watchdog before a clean power-off or reboot.
func (h *host) disarmWatchdog() {
	if h.watchdog == nil {
		return
	}
	if err := h.watchdog.Disarm(); err != nil {
		h.logf("watchdog: %v", err)
	}
}

// injectFault acts on bulkhead.fault=panic|hang, the switch the fallback
// tests use: panic ends PID 1 (the kernel panics), hang stops stage 1 and
// the watchdog's petting. It returns when no fault is asked for.
func (h *host) injectFault() {
	fault := ""
	for _, f := range strings.Fields(cmdline()) {
		if v, ok := strings.CutPrefix(f, bootparam.Fault+"="); ok {
			fault = v
		}
	}
	switch fault {
	case "":
		return
	case "panic":
		h.logf("fault injection: %s=panic: stage 1 exits", bootparam.Fault)
		os.Exit(1)
	case "hang":
		h.logf("fault injection: %s=hang: stage 1 stops", bootparam.Fault)
		h.hung.Store(true)
		select {}
	default:
		h.logf("fault injection: unknown %s=%s ignored", bootparam.Fault, fault)
	}
}
