package boot

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/sysmount"
)

func TestSettleTime(t *testing.T) {
	for _, c := range []struct {
		cmdline string
		want    time.Duration
		bad     bool
	}{
		{"console=ttyS0", DefaultSettle, false},
		{"bulkhead.settle=3s", 3 * time.Second, false},
		{"bulkhead.settle=1m bulkhead.settle=500ms", 500 * time.Millisecond, false},
		{"bulkhead.settle=soon", DefaultSettle, true},
		{"bulkhead.settle=-1s", DefaultSettle, true},
	} {
		got, err := settleTime(c.cmdline)
		if got != c.want || (err != nil) != c.bad {
			t.Errorf("settleTime(%q) = %s, %v; want %s, error %v", c.cmdline, got, err, c.want, c.bad)
		}
	}
}

func TestHealthyFrom(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	up := func(at time.Time) runningSince { return func() (time.Time, bool) { return at, true } }
	down := func() (time.Time, bool) { return time.Time{}, false }
	if from, ok := healthyFrom([]runningSince{up(t0), up(t0.Add(5 * time.Second)), up(t0.Add(time.Second))}); !ok || !from.Equal(t0.Add(5*time.Second)) {
		t.Errorf("healthyFrom = %s, %v; want the latest start", from, ok)
	}
	if _, ok := healthyFrom([]runningSince{up(t0), down}); ok {
		t.Error("healthyFrom with a part down reported healthy")
	}
}

// flappy is a service that restarts every period until told to settle.
type flappy struct {
	mu     sync.Mutex
	since  time.Time
	period time.Duration
	stable bool
}

func (f *flappy) runningSince() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stable && time.Since(f.since) >= f.period {
		f.since = time.Now() // restarted
	}
	return f.since, true
}

func TestWaitHealthyRestartsOnCrash(t *testing.T) {
	const settle = 600 * time.Millisecond
	f := &flappy{since: time.Now(), period: 300 * time.Millisecond}
	ctrd := time.Now()
	parts := []runningSince{func() (time.Time, bool) { return ctrd, true }, f.runningSince}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if waitHealthy(ctx, parts, settle, nil) {
		t.Fatal("waitHealthy blessed a service that kept restarting")
	}

	f.mu.Lock()
	f.stable = true
	settledAt := time.Now()
	f.mu.Unlock()
	begin := time.Now()
	if !waitHealthy(context.Background(), parts, settle, nil) {
		t.Fatal("waitHealthy gave up on a stable system")
	}
	if took := time.Since(begin); took > settle+time.Second {
		t.Errorf("waitHealthy took %s for a %s settle time", took, settle)
	}
	if since, _ := f.runningSince(); time.Since(since) < settle || since.After(settledAt) {
		t.Errorf("blessed %s after the last restart, settle is %s", time.Since(since), settle)
	}
}

func TestWaitHealthyStops(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	down := func() (time.Time, bool) { return time.Time{}, false }
	if waitHealthy(context.Background(), []runningSince{down}, 0, stop) {
		t.Error("waitHealthy reported healthy after stop")
	}
}

func TestSystemMounts(t *testing.T) {
	has := func(ms []sysmount.Mount) bool {
		return slices.ContainsFunc(ms, func(m sysmount.Mount) bool { return m.Target == DataDir })
	}
	if !has(systemMounts(false)) || has(systemMounts(true)) {
		t.Error("systemMounts: /var tmpfs must be there without a data partition only")
	}
	if len(systemMounts(true)) != len(sysmount.System)-1 || !has(sysmount.System) {
		t.Error("systemMounts changed sysmount.System")
	}
}
