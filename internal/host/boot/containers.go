package boot

import (
	"context"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/healthcheck"
	"github.com/bulkhead-dev/bulkhead/internal/host/backoff"
	"github.com/bulkhead-dev/bulkhead/internal/host/containers"
	"github.com/bulkhead-dev/bulkhead/internal/host/ctrd"
	"github.com/bulkhead-dev/bulkhead/internal/host/power"
	"github.com/bulkhead-dev/bulkhead/internal/host/supervise"
)

// Containerd namespaces. Services default to LinuxKit's, so that
// `ctr -n services.linuxkit tasks ls` works as it does there; runtime.json's
// namespace overrides it.
const (
	ServicesNamespace   = "services.linuxkit"
	OnbootNamespace     = "onboot.bulkhead"
	OnshutdownNamespace = "onshutdown.bulkhead"
)

func namespace(b containers.Bundle) string {
	if b.Runtime.Namespace != "" {
		return b.Runtime.Namespace
	}
	switch b.Kind {
	case containers.Onboot:
		return OnbootNamespace
	case containers.Onshutdown:
		return OnshutdownNamespace
	}
	return ServicesNamespace
}

// logName is the log file name of a bundle under /run/log.
func logName(b containers.Bundle) string {
	if b.Kind == containers.Services {
		return b.Name
	}
	return string(b.Kind) + "." + b.Name
}

// runToCompletion runs one onboot or onshutdown container and returns its
// exit code.
func (h *host) runToCompletion(ctx context.Context, b containers.Bundle) (int, error) {
	if err := containers.Apply(containers.Plan(b)); err != nil {
		return -1, err
	}
	defer containers.Cleanup(b)
	ct, err := h.client.Create(ctx, namespace(b), b.Name, b.Spec)
	if err != nil {
		return -1, err
	}
	defer func() {
		if err := ct.Delete(context.WithoutCancel(ctx)); err != nil {
			h.logf("%v", err)
		}
	}()
	out, errOut := h.output(b.Name, logName(b)), h.output(b.Name, logName(b))
	defer out.Flush()
	defer errOut.Flush()
	t, err := ct.Start(ctx, out, errOut, h.prepare(b))
	if err != nil {
		return -1, err
	}
	return t.Wait(ctx)
}

// prepare returns the hook run between task create and start.
func (h *host) prepare(b containers.Bundle) func(uint32) error {
	return func(pid uint32) error {
		if err := containers.Prepare(pid, b.Runtime); err != nil {
			h.logf("%s %s: %v", b.Kind, b.Name, err) // best effort, as in LinuxKit
		}
		return nil
	}
}

// onboot runs the onboot containers in order; a failure is logged and the
// boot goes on.
func (h *host) onboot(ctx context.Context) {
	h.runAll(ctx, containers.Onboot, 0)
}

func (h *host) runAll(ctx context.Context, kind containers.Kind, deadline time.Duration) {
	bundles, err := containers.List("/", kind)
	if err != nil {
		h.logf("%v", err)
		return
	}
	for _, b := range bundles {
		begin := time.Now()
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline > 0 {
			cctx, cancel = context.WithTimeout(ctx, deadline)
		}
		code, err := h.runToCompletion(cctx, b)
		cancel()
		took := time.Since(begin).Round(time.Millisecond)
		if err != nil {
			h.logf("%s %s failed: %v", kind, b.Name, err)
			continue
		}
		h.logf("%s %s exited %d (%s)", kind, b.Name, code, took)
	}
}

// service is one supervised service container.
type service struct {
	b      containers.Bundle
	sup    *supervise.Supervisor
	health *health // nil without a health check

	mu       sync.Mutex
	ct       *ctrd.Container
	prepared bool
}

// startServices starts every service under supervision.
func (h *host) startServices(ctx context.Context) {
	bundles, err := containers.List("/", containers.Services)
	if err != nil {
		h.logf("%v", err)
		return
	}
	first := make(chan string, len(bundles))
	for _, b := range bundles {
		s := &service{b: b}
		s.sup = supervise.New(b.Name, h.serviceStarter(s), backoff.Default, h.logf)
		h.services = append(h.services, s)
		go s.sup.Run(ctx)
		h.watchHealth(ctx, s)
		go func() {
			select {
			case <-s.sup.Started():
				first <- b.Name
			case <-ctx.Done():
			}
		}()
	}
	if len(bundles) > 0 {
		go h.reportFirstService(ctx, first)
	}
}

// watchHealth starts the service's health check, if it has one.
func (h *host) watchHealth(ctx context.Context, s *service) {
	check, err := healthcheck.Read(s.b.Dir)
	if err != nil {
		h.logf("service %s: %v", s.b.Name, err)
		return
	}
	if check == nil {
		return
	}
	s.health = &health{name: s.b.Name, check: *check, timing: check.Timing(), sup: s.sup, logf: h.logf}
	go s.health.run(ctx)
}

// healthySince is since when the service has run and, with a health
// check, passed it; false when it is not running or not healthy now.
func (s *service) healthySince() (time.Time, bool) {
	since, ok := s.sup.RunningSince()
	if !ok || s.health == nil {
		return since, ok
	}
	hs, ok := s.health.healthySince()
	if !ok {
		return time.Time{}, false
	}
	return later(since, hs), true
}

// unhealthy says why the service is not healthy.
func (s *service) unhealthy() string {
	if _, ok := s.sup.RunningSince(); !ok {
		return "service " + s.b.Name + " not running"
	}
	if s.health != nil {
		if err := s.health.lastError(); err != nil {
			return "service " + s.b.Name + " unhealthy: " + err.Error()
		}
		if _, ok := s.health.healthySince(); !ok {
			return "service " + s.b.Name + " not yet checked healthy"
		}
	}
	return "service " + s.b.Name + " restarted"
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// reportFirstService logs when the first service runs: the boot time a
// host's users wait for.
func (h *host) reportFirstService(ctx context.Context, first <-chan string) {
	select {
	case name := <-first:
		h.logf("first service (%s) running %s after stage 1 began (uptime %s)", name, time.Since(h.began).Round(time.Millisecond), uptime())
	case <-ctx.Done():
	}
}

func (h *host) serviceStarter(s *service) supervise.StartFunc {
	return func(ctx context.Context) (supervise.Process, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := h.prepareSecrets(s); err != nil {
			return nil, err
		}
		if !s.prepared {
			if err := containers.Apply(containers.Plan(s.b)); err != nil {
				containers.Cleanup(s.b)
				return nil, err
			}
			s.prepared = true
		}
		if s.ct == nil {
			ct, err := h.client.Create(ctx, namespace(s.b), s.b.Name, s.b.Spec)
			if err != nil {
				return nil, err
			}
			s.ct = ct
		}
		name := logName(s.b)
		t, err := s.ct.Start(ctx, h.output(s.b.Name, name), h.output(s.b.Name, name), h.prepare(s.b))
		if err != nil {
			return nil, err
		}
		return t, nil
	}
}

// shutdown stops the services, runs onshutdown, stops containerd and ends
// the machine.
func (h *host) shutdown(ctx context.Context, a power.Action) {
	var wg sync.WaitGroup
	for _, s := range h.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.sup.Stop(ctx, serviceGrace)
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.ct != nil {
				if err := s.ct.Delete(ctx); err != nil {
					h.logf("%v", err)
				}
			}
			containers.Cleanup(s.b)
		}()
	}
	wg.Wait()
	h.logf("services stopped")
	if h.client != nil {
		h.logf("running onshutdown")
		h.runAll(ctx, containers.Onshutdown, onshutdownDeadline)
		h.client.Close()
	}
	if h.daemon != nil {
		if err := h.daemon.Stop(containerdGrace); err != nil {
			h.logf("%v", err)
		} else {
			h.logf("containerd stopped")
		}
	}
	h.killAll()
	h.logOrphans()
	h.unmountAll()
	h.disarmWatchdog()
	halt(h.logf, a)
}
