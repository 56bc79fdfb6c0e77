package supervise

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/backoff"
)

// proc is a real process run through sh, in its own process group.
type proc struct{ cmd *exec.Cmd }

func (p proc) Wait(context.Context) (int, error) {
	err := p.cmd.Wait()
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	if _, ok := err.(*exec.ExitError); ok {
		err = nil
	}
	return ws.ExitStatus(), err
}

func (p proc) Signal(_ context.Context, sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

func shell(script string) StartFunc {
	return func(context.Context) (Process, error) {
		cmd := exec.Command("sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		return proc{cmd}, nil
	}
}

type logs struct {
	mu    sync.Mutex
	lines []string
	at    []time.Time
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.at = append(l.at, time.Now())
}

func (l *logs) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCrashLoopBacksOff(t *testing.T) {
	var l logs
	p := backoff.Policy{Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond, Healthy: time.Hour}
	s := New("crashy", shell("exit 3"), p, l.logf)
	go s.Run(context.Background())
	waitFor(t, func() bool { return l.count("crashed 5 times, backing off 80ms") == 1 })
	s.Stop(context.Background(), time.Second)

	for _, want := range []string{
		"service crashy restarting in 20ms",
		"service crashy restarting in 40ms",
		"service crashy crashed 3 times, backing off 80ms",
		"service crashy crashed 4 times, backing off 80ms",
	} {
		if l.count(want) != 1 {
			t.Errorf("%q logged %d times; log:\n%s", want, l.count(want), strings.Join(l.lines, "\n"))
		}
	}
	if l.count("service crashy started") < 5 || l.count("service crashy exited with status 3") < 5 {
		t.Fatalf("log:\n%s", strings.Join(l.lines, "\n"))
	}
	// The gap before the fourth start is the 80ms back-off, not less.
	l.mu.Lock()
	defer l.mu.Unlock()
	var starts []time.Time
	for i, s := range l.lines {
		if strings.HasSuffix(s, "started") {
			starts = append(starts, l.at[i])
		}
	}
	if gap := starts[3].Sub(starts[2]); gap < 80*time.Millisecond {
		t.Fatalf("restart after %v, want at least 80ms", gap)
	}
}

func TestStopTermsThenKills(t *testing.T) {
	for _, c := range []struct {
		script string
		status string
		killed bool
	}{
		{"exec sleep 30", "stopped (status 143)", false},
		{`trap "" TERM; sleep 30 & wait; sleep 30`, "stopped (status 137)", true},
	} {
		var l logs
		s := New("svc", shell(c.script), backoff.Default, l.logf)
		go s.Run(context.Background())
		<-s.Started()
		time.Sleep(100 * time.Millisecond) // let sh install its trap
		begin := time.Now()
		s.Stop(context.Background(), 300*time.Millisecond)
		took := time.Since(begin)
		if l.count(c.status) != 1 || (l.count("killing it") == 1) != c.killed {
			t.Fatalf("%s: log:\n%s", c.script, strings.Join(l.lines, "\n"))
		}
		if c.killed && took < 300*time.Millisecond || !c.killed && took > 2*time.Second {
			t.Fatalf("%s: stop took %v", c.script, took)
		}
		if l.count("restarting") != 0 {
			t.Fatalf("%s: restarted after Stop", c.script)
		}
	}
}

func TestStartFailureIsRetried(t *testing.T) {
	var l logs
	var mu sync.Mutex
	tries := 0
	start := func(ctx context.Context) (Process, error) {
		mu.Lock()
		tries++
		n := tries
		mu.Unlock()
		if n < 3 {
			return nil, fmt.Errorf("no such bundle")
		}
		return shell("exec sleep 30")(ctx)
	}
	s := New("late", start, backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond, Healthy: time.Hour}, l.logf)
	go s.Run(context.Background())
	<-s.Started()
	s.Stop(context.Background(), time.Second)
	if l.count("failed to start: no such bundle") != 2 || l.count("service late not started, retrying in 1ms") != 2 ||
		l.count("crashed") != 0 || l.count("service late started") != 1 {
		t.Fatalf("log:\n%s", strings.Join(l.lines, "\n"))
	}
}

func TestRunningSince(t *testing.T) {
	var l logs
	p := backoff.Policy{Initial: 200 * time.Millisecond, Max: 200 * time.Millisecond, Healthy: time.Hour}
	s := New("flap", shell("sleep 0.2"), p, l.logf)
	if _, ok := s.RunningSince(); ok {
		t.Fatal("RunningSince before Run reports running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	<-s.Started()
	first, ok := s.RunningSince()
	if !ok || first.IsZero() {
		t.Fatalf("RunningSince after start = %s, %v", first, ok)
	}
	// It exits after 0.2s and restarts 0.2s later: not running in between,
	// then running since a later time.
	waitFor(t, func() bool { _, ok := s.RunningSince(); return !ok })
	waitFor(t, func() bool { since, ok := s.RunningSince(); return ok && since.After(first) })
	s.Stop(ctx, time.Second)
	if _, ok := s.RunningSince(); ok {
		t.Error("RunningSince after Stop reports running")
	}
}
