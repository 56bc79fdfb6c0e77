// Package swtpmtest starts a software TPM 2.0 (Debian's swtpm) for tests
// that hand it to systemd's tools, which reach it over TCP only.
package swtpmtest

import (
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"
)

// StartTCP starts swtpm with its state in dir and the given --flags
// (such as "startup-clear" or "not-need-init"), its server on a free port
// of 127.0.0.1 and its control channel on the next, waits until it
// listens, stops it when the test ends, and returns the server port (for
// systemd's --tpm2-device=swtpm:host=127.0.0.1,port=PORT).
func StartTCP(tb testing.TB, dir, flags string) int {
	tb.Helper()
	port := freePortPair(tb)
	tpm := exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+dir, "--flags", flags,
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1))
	if err := tpm.Start(); err != nil {
		tb.Fatalf("swtpm: %v", err)
	}
	tb.Cleanup(func() { tpm.Process.Kill(); tpm.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port
		}
		if i == 250 {
			tb.Fatalf("swtpm does not listen on 127.0.0.1:%d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePortPair finds two free consecutive TCP ports on 127.0.0.1 (swtpm's
// server and control ports).
func freePortPair(tb testing.TB) int {
	tb.Helper()
	for i := 0; i < 50; i++ {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := a.Addr().(*net.TCPAddr).Port
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		a.Close()
		if err == nil {
			b.Close()
			return port
		}
	}
	tb.Fatal("no two free consecutive ports")
	return 0
}
