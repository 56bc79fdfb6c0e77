package boot

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/healthcheck"
)

// TestHealthRecord: healthy on the first pass, unhealthy only after
// Retries failures in a row, failures in the start period not counted.
func TestHealthRecord(t *testing.T) {
	var logged []string
	m := &health{name: "web", timing: healthcheck.Timing{Retries: 2}, logf: func(f string, a ...any) {
		logged = append(logged, fmt.Sprintf(f, a...))
	}}
	fail := errors.New("connection refused")
	m.record(fail, true) // start period
	m.record(fail, true)
	if _, ok := m.healthySince(); ok || m.fails != 0 {
		t.Fatalf("start period failures counted: %+v", m)
	}
	m.record(fail, false)
	m.record(fail, false)
	if _, ok := m.healthySince(); ok || !strings.Contains(strings.Join(logged, "\n"), "service web not healthy yet: connection refused") {
		t.Fatalf("after 2 failures: %v", logged)
	}
	m.record(nil, false)
	since, ok := m.healthySince()
	if !ok || since.IsZero() || m.lastError() != nil {
		t.Fatal("a pass did not make it healthy")
	}
	m.record(fail, false)
	if _, ok := m.healthySince(); !ok {
		t.Fatal("one failure of two allowed made it unhealthy")
	}
	m.record(nil, false)
	if again, _ := m.healthySince(); !again.Equal(since) {
		t.Fatal("a pass after a tolerated failure restarted the healthy time")
	}
	m.record(fail, false)
	m.record(fail, false)
	if _, ok := m.healthySince(); ok || !strings.Contains(logged[len(logged)-1], "service web unhealthy") {
		t.Fatalf("two failures in a row: still healthy; log %v", logged)
	}
}

func TestEntryVersion(t *testing.T) {
	for in, want := range map[string]string{
		"bulkhead-1.2.3+2-1.conf": "1.2.3",
		"bulkhead-abc.conf":       "abc",
		"other+0-3.conf":          "other",
	} {
		if got := entryVersion(in); got != want {
			t.Errorf("entryVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDeadlineTime(t *testing.T) {
	if d, err := deadlineTime("console=ttyS0"); d != DefaultDeadline || err != nil {
		t.Errorf("default: %s, %v", d, err)
	}
	if d, err := deadlineTime("bulkhead.deadline=45s"); d.String() != "45s" || err != nil {
		t.Errorf("set: %s, %v", d, err)
	}
	if _, err := deadlineTime("bulkhead.deadline=later"); err == nil {
		t.Error("bad value: no error")
	}
}
