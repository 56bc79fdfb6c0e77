package pid1

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCmdlineIsProcCmdline(t *testing.T) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Cmdline(), strings.TrimSpace(string(b)); got != want || strings.HasSuffix(got, "\n") {
		t.Fatalf("Cmdline() = %q, want %q", got, want)
	}
}

// TestUptimeAgreesWithProc checks Uptime against the kernel's own
// /proc/uptime (boot time in seconds, first field).
func TestUptimeAgreesWithProc(t *testing.T) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	proc := time.Duration(secs * float64(time.Second))
	if got := Uptime(); got < proc-time.Second || got > proc+time.Second {
		t.Fatalf("Uptime() = %s, /proc/uptime says %s", got, proc)
	}
}
