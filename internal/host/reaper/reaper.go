// Package reaper is PID 1's child bookkeeping: it waits for every child that
// exits (orphans re-parented to init included), and hands the exit status of
// the processes the init started itself to whoever started them.
package reaper

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Reaper reaps children. Processes the init starts must go through Start,
// never exec.Cmd.Wait: the Reaper is the only caller of wait4.
type Reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
	orphans int
}

// New returns a Reaper; call Run to start reaping.
func New() *Reaper {
	return &Reaper{waiting: map[int]chan unix.WaitStatus{}}
}

// Start starts cmd and returns a channel that receives its exit status.
// cmd's output must be *os.File values (or nil), because nothing will call
// cmd.Wait to copy pipes.
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[cmd.Process.Pid] = ch
	return ch, nil
}

// Run reaps children whenever SIGCHLD arrives, until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, unix.SIGCHLD)
	defer signal.Stop(sig)
	r.Reap()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			r.Reap()
		}
	}
}

// Reap waits for every child that has exited, without blocking.
func (r *Reaper) Reap() {
	for {
		r.mu.Lock()
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			r.mu.Unlock()
			continue
		}
		if pid <= 0 || err != nil {
			r.mu.Unlock()
			return
		}
		if ch, ok := r.waiting[pid]; ok {
			ch <- ws
			delete(r.waiting, pid)
		} else {
			r.orphans++
		}
		r.mu.Unlock()
	}
}

// Orphans is how many children were reaped that the init did not Start.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// ExitCode is a wait status as a shell shows it: the exit code, or 128 plus
// the signal number.
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
