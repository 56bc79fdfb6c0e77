package boot

import (
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/host/containers"
)

func TestNamespaceAndLogName(t *testing.T) {
	for _, c := range []struct {
		b       containers.Bundle
		ns, log string
	}{
		{containers.Bundle{Kind: containers.Services, Name: "web"}, ServicesNamespace, "web"},
		{containers.Bundle{Kind: containers.Services, Name: "web", Runtime: containers.Runtime{Namespace: "mine"}}, "mine", "web"},
		{containers.Bundle{Kind: containers.Onboot, Name: "dhcpcd"}, OnbootNamespace, "onboot.dhcpcd"},
		{containers.Bundle{Kind: containers.Onshutdown, Name: "bye"}, OnshutdownNamespace, "onshutdown.bye"},
	} {
		if ns := namespace(c.b); ns != c.ns {
			t.Errorf("namespace(%+v) = %q, want %q", c.b, ns, c.ns)
		}
		if l := logName(c.b); l != c.log {
			t.Errorf("logName(%+v) = %q, want %q", c.b, l, c.log)
		}
	}
}

func TestKernelThread(t *testing.T) {
	kthread := "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0"
	user := "812 (my (odd) prog) S 1 812 812 0 -1 4194560 100 0 0 0 1 1 0 0 20 0 1 0 90 0 0"
	if !kernelThread(kthread) || kernelThread(user) || kernelThread("garbage") {
		t.Fatal("kernelThread misreads /proc/<pid>/stat")
	}
	// This test process and its parent are user processes.
	if n := userProcesses("/proc"); n < 1 {
		t.Fatalf("userProcesses = %d", n)
	}
	if n := userProcesses(t.TempDir()); n != 0 {
		t.Fatalf("empty proc: %d", n)
	}
}
