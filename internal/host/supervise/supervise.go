// Package supervise keeps a service running: it restarts it whenever it
// exits, waiting longer after each quick crash (package backoff), logs every
// exit with its status, and stops it on request with a grace period.
package supervise

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/backoff"
)

// Process is one run of a service.
type Process interface {
	// Wait blocks until the process exits, cleans up after it, and returns
	// its exit code (128+signal when killed).
	Wait(ctx context.Context) (int, error)
	// Signal sends sig to the process.
	Signal(ctx context.Context, sig syscall.Signal) error
}

// StartFunc starts one run of a service.
type StartFunc func(ctx context.Context) (Process, error)

// Logf receives the supervisor's messages.
type Logf func(format string, args ...any)

// ReportAfter is the number of consecutive crashes from which each restart
// is reported as a crash loop.
const ReportAfter = 3

// Supervisor runs one service.
type Supervisor struct {
	name   string
	start  StartFunc
	policy backoff.Policy
	logf   Logf

	mu       sync.Mutex
	cur      Process
	since    time.Time // when cur started
	stopping bool
	stop     chan struct{}
	done     chan struct{}
	started  chan struct{}
	once     sync.Once
}

// New returns a Supervisor for the service name; Run starts it.
func New(name string, start StartFunc, policy backoff.Policy, logf Logf) *Supervisor {
	return &Supervisor{
		name: name, start: start, policy: policy, logf: logf,
		stop: make(chan struct{}), done: make(chan struct{}), started: make(chan struct{}),
	}
}

// Started is closed after the first successful start.
func (s *Supervisor) Started() <-chan struct{} { return s.started }

// Run starts the service and restarts it each time it exits, until Stop is
// called or ctx ends.
func (s *Supervisor) Run(ctx context.Context) {
	defer close(s.done)
	state := s.policy.New()
	for {
		begin := time.Now()
		more, started := s.runOnce(ctx)
		if !more {
			return
		}
		delay, crashes := state.Exited(time.Since(begin))
		if !started {
			s.logf("service %s not started, retrying in %s", s.name, delay)
		} else if crashes >= ReportAfter {
			s.logf("service %s crashed %d times, backing off %s", s.name, crashes, delay)
		} else {
			s.logf("service %s restarting in %s", s.name, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// runOnce starts and waits for one run; more is false when the
// supervisor is stopping, started false when the service could not start.
func (s *Supervisor) runOnce(ctx context.Context) (more, started bool) {
	p, err := s.start(ctx)
	if err != nil {
		s.logf("service %s failed to start: %v", s.name, err)
		return !s.isStopping(), false
	}
	if !s.setCurrent(p) {
		_ = p.Signal(ctx, syscall.SIGTERM)
	}
	s.once.Do(func() { close(s.started) })
	s.logf("service %s started", s.name)
	code, err := p.Wait(ctx)
	s.setCurrent(nil)
	if s.isStopping() {
		s.logf("service %s stopped (status %d)", s.name, code)
		return false, true
	}
	if err != nil {
		s.logf("service %s: waiting for exit: %v", s.name, err)
	}
	s.logf("service %s exited with status %d", s.name, code)
	return ctx.Err() == nil, true
}

func (s *Supervisor) setCurrent(p Process) (running bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = p
	s.since = time.Time{}
	if p != nil {
		s.since = time.Now()
	}
	return !s.stopping
}

// RunningSince returns when the current run of the service started; ok is
// false while it is not running (starting, restarting or stopped). A
// restart gives a later time.
func (s *Supervisor) RunningSince() (since time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.since, s.cur != nil
}

// Current returns the running process and when it started, or nil.
func (s *Supervisor) Current() (Process, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.since
}

func (s *Supervisor) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// Stop ends supervision: the running process gets SIGTERM, and SIGKILL if
// it is still running after grace. Stop returns once Run has returned.
func (s *Supervisor) Stop(ctx context.Context, grace time.Duration) {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		close(s.stop)
	}
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		_ = cur.Signal(ctx, syscall.SIGTERM)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.done:
		return
	case <-t.C:
	}
	s.mu.Lock()
	cur = s.cur
	s.mu.Unlock()
	if cur != nil {
		s.logf("service %s did not stop in %s, killing it", s.name, grace)
		_ = cur.Signal(ctx, syscall.SIGKILL)
	}
	<-s.done
}
