package backoff

import (
	"testing"
	"time"
)

func TestDoublesToCapAndResets(t *testing.T) {
	s := Default.New()
	steps := []struct {
		ran     time.Duration
		delay   time.Duration
		crashes int
	}{
		{0, 1 * time.Second, 1},
		{100 * time.Millisecond, 2 * time.Second, 2},
		{9 * time.Second, 4 * time.Second, 3},
		{0, 8 * time.Second, 4},
		{0, 16 * time.Second, 5},
		{0, 30 * time.Second, 6},
		{0, 30 * time.Second, 7},
		{10 * time.Second, 1 * time.Second, 1}, // healthy run forgives
		{0, 2 * time.Second, 2},
	}
	for i, st := range steps {
		d, n := s.Exited(st.ran)
		if d != st.delay || n != st.crashes {
			t.Fatalf("step %d: Exited(%v) = %v, %d; want %v, %d", i, st.ran, d, n, st.delay, st.crashes)
		}
	}
}

func TestManyCrashesStayCapped(t *testing.T) {
	s := Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Healthy: time.Hour}.New()
	var d time.Duration
	var n int
	for range 200 {
		d, n = s.Exited(0)
	}
	if d != 5*time.Millisecond || n != 200 {
		t.Fatalf("after 200 crashes got %v, %d", d, n)
	}
}
