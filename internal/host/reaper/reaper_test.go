package reaper

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReapsOrphansAndReportsOwnChildren makes this test process a child
// subreaper, so that a grandchild whose parent exits is re-parented to it,
// exactly as orphans are to PID 1.
func TestReapsOrphansAndReportsOwnChildren(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	r := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	// sh starts a background sleep and exits; the sleep becomes our orphan.
	done, err := r.Start(exec.Command("sh", "-c", "sleep 0.2 & exit 7"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ws := <-done:
		if ExitCode(ws) != 7 {
			t.Fatalf("exit code %d, want 7", ExitCode(ws))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit status")
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Orphans() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("orphan never reaped")
		}
		time.Sleep(20 * time.Millisecond)
	}

	sleep := exec.Command("sleep", "30")
	killed, err := r.Start(sleep)
	if err != nil {
		t.Fatal(err)
	}
	unix.Kill(sleep.Process.Pid, unix.SIGTERM)
	if code := ExitCode(<-killed); code != 128+int(unix.SIGTERM) {
		t.Fatalf("killed exit code %d", code)
	}
}
