package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/test/qemutest"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

func TestParsePublish(t *testing.T) {
	good := map[string]qemu.Forward{
		"8080:80":     {Proto: "tcp", HostAddr: "127.0.0.1", HostPort: 8080, GuestPort: 80},
		"5353:53/udp": {Proto: "udp", HostAddr: "127.0.0.1", HostPort: 5353, GuestPort: 53},
		"1:65535/tcp": {Proto: "tcp", HostAddr: "127.0.0.1", HostPort: 1, GuestPort: 65535},
	}
	for in, want := range good {
		got, err := parsePublish(in)
		if err != nil || got != want {
			t.Errorf("parsePublish(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"80", "0.0.0.0:80:80", "80:80/sctp", "0:80", "80:70000", "a:b", ""} {
		if _, err := parsePublish(in); err == nil {
			t.Errorf("parsePublish(%q) succeeded", in)
		}
	}
}

// writePrefix writes PREFIX-kernel, PREFIX-initrd.img and PREFIX-cmdline
// the way a kernel+initrd build does, for the test guest.
func writePrefix(t *testing.T, cmdline string, modules ...string) string {
	t.Helper()
	dir := t.TempDir()
	prefix := filepath.Join(dir, "host")
	modDir := ""
	if len(modules) > 0 {
		modDir = testkernel.ModulesDir(t)
	}
	links := map[string]string{
		prefix + "-kernel":     testkernel.Path(t),
		prefix + "-initrd.img": qemutest.Initrd(t, modDir, modules...),
	}
	for name, target := range links {
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(prefix+"-cmdline", []byte(qemutest.Cmdline+" "+cmdline+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return prefix
}

func TestRunArgs(t *testing.T) {
	prefix := writePrefix(t, "bulkhead.guest=poweroff")
	opts, err := parseRunArgs([]string{"qemu", "--mem", "512", prefix, "-p", "8080:80", "--append", "x=1", "--publish", "53:53/udp"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := opts.cfg
	if c.Kernel != prefix+"-kernel" || c.Initrd != prefix+"-initrd.img" || c.MemoryMB != 512 || c.CPUs != 1 {
		t.Errorf("config %+v", c)
	}
	if want := qemutest.Cmdline + " bulkhead.guest=poweroff x=1"; c.Cmdline != want {
		t.Errorf("cmdline %q, want %q", c.Cmdline, want)
	}
	if len(c.Forwards) != 2 || c.Forwards[1].Proto != "udp" {
		t.Errorf("forwards %+v", c.Forwards)
	}
}

// TestRunArgsDiskImages: a .img or .iso argument boots that image through
// UEFI; --disk beside a kernel stays a plain disk.
func TestRunArgsDiskImages(t *testing.T) {
	dir := t.TempDir()
	img, iso := filepath.Join(dir, "host.img"), filepath.Join(dir, "host.iso")
	for _, p := range []string{img, iso} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := parseRunArgs([]string{"qemu", img}, io.Discard)
	if err != nil || opts.cfg.Disk != img || !opts.cfg.UEFI || opts.cfg.Kernel != "" || opts.cfg.DiskSize != 1<<30 {
		t.Errorf("%s: config %+v, %v; want a disk of 1 GiB", img, opts.cfg, err)
	}
	opts, err = parseRunArgs([]string{"qemu", "--disk-size", "0", img}, io.Discard)
	if err != nil || opts.cfg.DiskSize != 0 {
		t.Errorf("--disk-size 0: config %+v, %v", opts.cfg, err)
	}
	if _, err = parseRunArgs([]string{"qemu", "--disk-size", "lots", img}, io.Discard); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--disk-size") {
		t.Errorf("--disk-size lots: %v, want a usage error naming the flag", err)
	}
	opts, err = parseRunArgs([]string{"qemu", iso}, io.Discard)
	if err != nil || opts.cfg.ISO != iso || !opts.cfg.UEFI || opts.cfg.DiskSize != 0 {
		t.Errorf("%s: config %+v, %v", iso, opts.cfg, err)
	}
	prefix := writePrefix(t, "")
	opts, err = parseRunArgs([]string{"qemu", "--disk", img, prefix}, io.Discard)
	if err != nil || opts.cfg.Disk != img || opts.cfg.UEFI || opts.cfg.Kernel != prefix+"-kernel" {
		t.Errorf("--disk with a kernel: config %+v, %v", opts.cfg, err)
	}
}

func TestRunUsage(t *testing.T) {
	prefix := writePrefix(t, "")
	for _, args := range [][]string{
		{"run"},
		{"run", "qemu"},
		{"run", "kvm", prefix},
		{"run", "qemu", filepath.Join(t.TempDir(), "missing")},
		{"run", "qemu", "-p", "80", prefix},
		{"run", "qemu", prefix, "extra"},
		{"run", "qemu", "--accel", "hvf", prefix},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2; stderr:\n%s", args, code, stderr.String())
		}
	}
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"run", "--help"}, &stdout, io.Discard); code != 0 || !strings.Contains(stdout.String(), "124  --timeout ran out") {
		t.Errorf("--help: exit %d, stdout:\n%s", code, stdout.String())
	}
}

// TestRunExitCodes boots through the verb and checks the exit status for each
// way a guest can end, and the console on stdout and in --console-log.
func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmdline string
		flags   []string
		want    int
	}{
		{"poweroff", "bulkhead.guest=poweroff", nil, 0},
		{"panic", "bulkhead.guest=panic", nil, runExitPanic},
		{"reboot", "bulkhead.guest=reboot", nil, runExitReboot},
		{"timeout", "", []string{"--timeout", "1s"}, runExitTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := writePrefix(t, tc.cmdline)
			log := filepath.Join(t.TempDir(), "console.log")
			args := append([]string{"run", "--console-log", log}, tc.flags...) // qemu is the default backend
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append(args, prefix), &stdout, &stderr)
			if code != tc.want {
				t.Fatalf("exit %d, want %d; stderr:\n%s\nstdout:\n%s", code, tc.want, stderr.String(), stdout.String())
			}
			logged, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(logged, stdout.Bytes()) {
				t.Errorf("console log differs from stdout")
			}
			if tc.want != runExitTimeout && !strings.Contains(stdout.String(), "hello from guest") {
				t.Errorf("stdout has no console:\n%s", stdout.String())
			}
			wantAccelLine(t, stderr.String())
			if !strings.Contains(stderr.String(), "bulkhead run: booting "+prefix+"-kernel under ") ||
				!strings.Contains(stderr.String(), "bulkhead run: Ctrl-C powers the guest off; a second Ctrl-C kills it\n") {
				t.Errorf("no banner on stderr:\n%s", stderr.String())
			}
		})
	}
}

// lockedBuffer lets the test read stdout while the VM writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunInterrupts: one interrupt powers a guest that honours the power
// button down (exit 0); a guest that ignores it needs a second one (130).
func TestRunInterrupts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		modules []string
		signals int
		want    int
	}{
		{"powerdown", qemutest.PowerButtonModules, 1, 0},
		{"kill", nil, 2, runExitKilled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := writePrefix(t, "", tc.modules...)
			opts, err := parseRunArgs([]string{"qemu", "--timeout", "2m", prefix}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			interrupts := make(chan os.Signal, 2)
			var stdout, stderr lockedBuffer
			done := make(chan error, 1)
			go func() { done <- runQemu(context.Background(), opts, &stdout, &stderr, interrupts) }()
			waitOutput(t, &stdout, "guest waiting", done)
			for range tc.signals {
				interrupts <- os.Interrupt
				time.Sleep(time.Second)
			}
			code := 0
			if err := <-done; err != nil {
				ee, ok := err.(exitError)
				if !ok {
					t.Fatal(err)
				}
				code = ee.code
			}
			if code != tc.want {
				t.Fatalf("exit %d, want %d; stderr:\n%s\nstdout:\n%s", code, tc.want, stderr.String(), stdout.String())
			}
		})
	}
}

func waitOutput(t *testing.T, out *lockedBuffer, want string, done <-chan error) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("run ended (%v) before %q; stdout:\n%s", err, want, out.String())
		case <-deadline:
			t.Fatalf("no %q on stdout:\n%s", want, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wantAccelLine checks that a run whose automatic accelerator choice fell
// back to software emulation said so, and one that did not, did not.
func wantAccelLine(t *testing.T, stderr string) {
	t.Helper()
	a, err := qemu.ResolveAccel(context.Background(), qemu.DefaultBinary, "")
	if err != nil {
		t.Fatal(err)
	}
	said := strings.Contains(stderr, "using software emulation (tcg): KVM cannot run a guest here")
	if said != (a.Why != "") {
		t.Errorf("accelerator %+v, but stderr:\n%s", a, stderr)
	}
}
