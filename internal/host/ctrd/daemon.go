package ctrd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Starter starts a process and reports its exit status (the init's reaper).
type Starter interface {
	Start(cmd *exec.Cmd) (<-chan unix.WaitStatus, error)
}

// Daemon is a running containerd.
type Daemon struct {
	cmd    *exec.Cmd
	exited <-chan unix.WaitStatus
	status unix.WaitStatus
	done   chan struct{}
	paths  Paths
}

// StartDaemon writes the config under p.State and starts binary, its output
// (both streams) going to out.
func StartDaemon(s Starter, binary string, p Paths, level string, out io.Writer) (*Daemon, error) {
	if err := os.MkdirAll(p.State, 0o711); err != nil {
		return nil, fmt.Errorf("creating containerd state directory: %w", err)
	}
	if err := os.MkdirAll(p.Root, 0o711); err != nil {
		return nil, fmt.Errorf("creating containerd root directory: %w", err)
	}
	cfg := filepath.Join(p.State, "config.toml")
	if err := os.WriteFile(cfg, Config(p, level), 0o600); err != nil {
		return nil, fmt.Errorf("writing containerd config: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting containerd: %w", err)
	}
	cmd := exec.Command(binary, "--config", cfg)
	cmd.Env = []string{"PATH=/usr/bin:/usr/sbin:/bin:/sbin"}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	exited, err := s.Start(cmd)
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("starting containerd: %w", err)
	}
	go func() {
		_, _ = io.Copy(out, r)
		r.Close()
	}()
	d := &Daemon{cmd: cmd, exited: exited, done: make(chan struct{}), paths: p}
	go func() {
		d.status = <-exited
		close(d.done)
	}()
	return d, nil
}

// Done is closed when containerd exits.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// ExitStatus is containerd's wait status, valid once Done is closed.
func (d *Daemon) ExitStatus() unix.WaitStatus { return d.status }

// WaitReady waits until containerd accepts connections on its socket, it
// exits, or ctx ends.
func (d *Daemon) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var dialer net.Dialer
		conn, err := dialer.DialContext(ctx, "unix", d.paths.Socket)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for containerd: %w", ctx.Err())
		case <-d.done:
			return fmt.Errorf("waiting for containerd: it exited (%v)", d.status)
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM, and SIGKILL after grace, and waits for the exit.
func (d *Daemon) Stop(grace time.Duration) error {
	_ = d.cmd.Process.Signal(unix.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-d.done:
		return nil
	case <-t.C:
	}
	_ = d.cmd.Process.Signal(unix.SIGKILL)
	<-d.done
	return errors.New("stopping containerd: killed after grace period")
}
