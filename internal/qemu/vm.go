package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Reason says how a VM ended.
type Reason string

// How a VM can end.
const (
	Poweroff Reason = "poweroff" // the guest powered itself off
	Reboot   Reason = "reboot"   // the guest rebooted while reboots were not allowed
	Panic    Reason = "panic"    // the guest kernel panicked
	Timeout  Reason = "timeout"  // Config.Timeout ran out
	Killed   Reason = "killed"   // Kill, the Start context, or a signal to qemu ended it
	Failed   Reason = "failed"   // qemu failed; Wait's error says why
)

// Result is how a VM ended.
type Result struct {
	Reason   Reason
	ExitCode int    // qemu's exit status, -1 when a signal ended it
	Detail   string // what decided Reason, such as the panic message
}

// Errors that WaitFor wraps.
var (
	ErrTimeout = errors.New("timed out")
	ErrStopped = errors.New("vm stopped")
)

// tailLines is how much console an error carries.
const tailLines = 40

// panicRE matches the kernel's panic line; panicEndRE the end of its report.
var (
	panicRE    = regexp.MustCompile(`Kernel panic - not syncing[^\r\n]*`)
	panicEndRE = regexp.MustCompile(`end Kernel panic`)
)

// VM is a running qemu.
type VM struct {
	cfg     Config
	accel   Accel
	dir     string
	cmd     *exec.Cmd
	console *console
	stderr  *bytes.Buffer // read only after qemu exited

	qmp      *qmpConn
	qmpDone  chan struct{} // closed when the QMP connection ends or never came up
	procDone chan struct{} // closed when the qemu process exited
	exited   chan struct{} // closed when the result is known

	mu         sync.Mutex
	cursor     int    // where the next WaitFor starts
	stopReason Reason // set when we end the VM ourselves
	stopDetail string
	shutdown   *shutdownEvent // QMP SHUTDOWN
	panicked   bool           // QMP GUEST_PANICKED

	result Result
	err    error
}

type shutdownEvent struct {
	Guest  bool   `json:"guest"`
	Reason string `json:"reason"`
}

func newVM(cfg Config, dir string) *VM {
	return &VM{
		cfg:      cfg,
		dir:      dir,
		console:  newConsole(cfg.Console),
		stderr:   new(bytes.Buffer),
		qmpDone:  make(chan struct{}),
		procDone: make(chan struct{}),
		exited:   make(chan struct{}),
	}
}

// reap waits for qemu, then for the QMP events it sent before exiting, and
// records the result.
func (vm *VM) reap() {
	werr := vm.cmd.Wait()
	close(vm.procDone)
	select {
	case <-vm.qmpDone:
	case <-time.After(2 * time.Second):
	}
	vm.result, vm.err = vm.classify(werr)
	os.RemoveAll(vm.dir)
	close(vm.exited)
}

func (vm *VM) classify(werr error) (Result, error) {
	r := Result{ExitCode: vm.cmd.ProcessState.ExitCode()}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	panicLine := ""
	if !vm.cfg.AllowReboot {
		panicLine = string(panicRE.Find(vm.console.bytes()))
	}
	switch {
	case vm.stopReason == Panic:
		r.Reason, r.Detail = Panic, panicLine // the whole line now
	case vm.stopReason != "":
		r.Reason, r.Detail = vm.stopReason, vm.stopDetail
	case panicLine != "":
		r.Reason, r.Detail = Panic, panicLine
	case vm.panicked:
		r.Reason, r.Detail = Panic, "qmp: GUEST_PANICKED"
	case vm.shutdown != nil && vm.shutdown.Guest:
		r.Reason, r.Detail = guestShutdownReason(vm.shutdown.Reason), "qmp: SHUTDOWN "+vm.shutdown.Reason
	case vm.shutdown != nil:
		r.Reason, r.Detail = Killed, "qmp: SHUTDOWN "+vm.shutdown.Reason
	default:
		r.Reason = Failed
		if werr == nil {
			werr = errors.New("exit status 0")
		}
		return r, fmt.Errorf("qemu exited: %w: %s", werr, lastLines(vm.stderr.String(), 10))
	}
	return r, nil
}

func guestShutdownReason(qmpReason string) Reason {
	switch qmpReason {
	case "guest-reset":
		return Reboot
	case "guest-panic":
		return Panic
	default: // guest-shutdown
		return Poweroff
	}
}

// watch ends the VM on ctx, on the timeout, and (unless reboots are allowed)
// on a kernel panic on the console.
func (vm *VM) watch(ctx context.Context) {
	go func() {
		select {
		case <-ctx.Done():
			vm.stop(Killed, "context: "+ctx.Err().Error())
		case <-vm.exited:
		}
	}()
	if vm.cfg.Timeout > 0 {
		go func() {
			t := time.NewTimer(vm.cfg.Timeout)
			defer t.Stop()
			select {
			case <-t.C:
				vm.stop(Timeout, "after "+vm.cfg.Timeout.String())
			case <-vm.exited:
			}
		}()
	}
	if !vm.cfg.AllowReboot {
		go vm.watchPanic()
	}
}

// watchPanic kills the VM once the kernel has reported a panic: without
// panic=N on its command line a panicked kernel hangs forever.
func (vm *VM) watchPanic() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from := 0
	if _, err := vm.waitFrom(ctx, panicRE, &from, 0); err != nil {
		return
	}
	vm.waitFrom(ctx, panicEndRE, &from, 3*time.Second) // let the report finish
	vm.stop(Panic, "")
}

// stop ends the VM, recording why unless a reason is already known.
func (vm *VM) stop(reason Reason, detail string) {
	select {
	case <-vm.procDone:
		return // too late: qemu ended by itself
	default:
	}
	vm.mu.Lock()
	if vm.stopReason == "" {
		vm.stopReason, vm.stopDetail = reason, detail
	}
	vm.mu.Unlock()
	_ = vm.cmd.Process.Kill()
}

// Kill ends qemu at once (Result Killed). It does not wait for it to exit.
func (vm *VM) Kill() {
	vm.stop(Killed, "kill")
}

// Powerdown presses the guest's ACPI power button. It does not wait for the
// guest to power off: Wait does.
func (vm *VM) Powerdown() error {
	if err := vm.qmp.execute("system_powerdown", vm.procDone); err != nil {
		return fmt.Errorf("powering down: %w", err)
	}
	return nil
}

// Wait waits for qemu to exit and says how the guest ended. The error is
// non-nil only for Result Failed.
func (vm *VM) Wait() (Result, error) {
	<-vm.exited
	return vm.result, vm.err
}

// Accel says which accelerator the VM runs with and, when auto fell back
// to software emulation, why.
func (vm *VM) Accel() Accel { return vm.accel }

// KVMEnabled asks qemu (QMP query-kvm) whether the guest runs under KVM.
func (vm *VM) KVMEnabled() (bool, error) {
	raw, err := vm.qmp.query("query-kvm", vm.procDone)
	if err != nil {
		return false, fmt.Errorf("asking qemu about kvm: %w", err)
	}
	var r struct {
		Enabled bool `json:"enabled"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return false, fmt.Errorf("reading query-kvm reply: %w", err)
	}
	return r.Enabled, nil
}

// Done is closed when the VM has ended and Wait returns at once.
func (vm *VM) Done() <-chan struct{} { return vm.exited }

// Console returns the serial console output so far.
func (vm *VM) Console() string { return string(vm.console.bytes()) }

// Tail returns the last n lines of the console, without carriage returns.
func (vm *VM) Tail(n int) string { return lastLines(vm.Console(), n) }

// WaitFor waits until s appears on the console and returns it. Each WaitFor
// or WaitForRegexp searches the output after the previous match, so a
// sequence of waits follows the boot in order. timeout 0 waits until ctx is
// done or the VM stops. Errors carry the console's tail.
func (vm *VM) WaitFor(ctx context.Context, s string, timeout time.Duration) (string, error) {
	return vm.waitFor(ctx, regexp.MustCompile(regexp.QuoteMeta(s)), strconv.Quote(s), timeout)
}

// WaitForRegexp is WaitFor for a regular expression; it returns the match.
func (vm *VM) WaitForRegexp(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (string, error) {
	return vm.waitFor(ctx, re, "/"+re.String()+"/", timeout)
}

func (vm *VM) waitFor(ctx context.Context, re *regexp.Regexp, desc string, timeout time.Duration) (string, error) {
	vm.mu.Lock()
	from := vm.cursor
	vm.mu.Unlock()
	m, err := vm.waitFrom(ctx, re, &from, timeout)
	switch {
	case err == nil:
		vm.mu.Lock()
		vm.cursor = max(vm.cursor, from)
		vm.mu.Unlock()
		return m, nil
	case errors.Is(err, ErrTimeout):
		return "", fmt.Errorf("%w after %s waiting for %s; console tail:\n%s", err, timeout, desc, vm.Tail(tailLines))
	case errors.Is(err, ErrStopped):
		return "", fmt.Errorf("%w (%s) before %s appeared; console tail:\n%s", err, vm.result.Reason, desc, vm.Tail(tailLines))
	default:
		return "", fmt.Errorf("waiting for %s: %w; console tail:\n%s", desc, err, vm.Tail(tailLines))
	}
}

// waitFrom waits for re in the console at or after *from, and moves *from
// past the match.
func (vm *VM) waitFrom(ctx context.Context, re *regexp.Regexp, from *int, timeout time.Duration) (string, error) {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		m, changed := vm.console.find(re, from)
		if m != "" {
			return m, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline:
			return "", ErrTimeout
		case <-vm.exited:
			if m, _ := vm.console.find(re, from); m != "" {
				return m, nil
			}
			return "", ErrStopped
		}
	}
}

// console collects the serial output and copies it to an optional writer.
type console struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed and replaced on each write
	out     io.Writer
}

func newConsole(out io.Writer) *console {
	return &console{changed: make(chan struct{}), out: out}
}

// Write never fails: a failing copy must not stall qemu's serial port.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	if c.out != nil {
		_, _ = c.out.Write(p)
	}
	return len(p), nil
}

func (c *console) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf)
}

// find returns the first match of re at or after *from (moving *from past
// it), or "" and a channel closed on the next write.
func (c *console) find(re *regexp.Regexp, from *int) (string, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if loc := re.FindIndex(c.buf[*from:]); loc != nil {
		m := string(c.buf[*from+loc[0] : *from+loc[1]])
		*from += loc[1]
		return m, nil
	}
	return "", c.changed
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\r\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, "\r")
	}
	return strings.Join(lines, "\n")
}
