package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

// TestServiceWatch feeds the init's console lines (as
// internal/host/supervise writes them, split across writes) and expects one
// line at the third restart, with the last reason.
func TestServiceWatch(t *testing.T) {
	var out bytes.Buffer
	w := newServiceWatch(&out)
	console := "bulkhead-init: service web started\n" +
		strings.Repeat("bulkhead-init: service web exited with status 1\nbulkhead-init: service web restarting in 1s\n", 2) +
		"bulkhead-init: service db restarting in 1s\n" +
		"bulkhead-init: service web failed to start: mkdirat /containers/services/web/rootfs/etc/nginx: read-only file system\n" +
		"bulkhead-init: service web not started, retrying in 4s\n" +
		"bulkhead-init: service web crashed 4 times, backing off 8s\n"
	for i := 0; i < len(console); i += 7 {
		w.Write([]byte(console[i:min(i+7, len(console))]))
	}
	want := "bulkhead run: service web keeps restarting (3 restarts; last: failed to start: mkdirat /containers/services/web/rootfs/etc/nginx: read-only file system)\n"
	if out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
}

// TestRunArgErrors: what users type wrong gets a sentence, not a stat error.
func TestRunArgErrors(t *testing.T) {
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "minimal.tar")
	os.WriteFile(tarPath, []byte("x"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"qemu", tarPath}, "is a tar (--format tar), which does not boot"},
		{[]string{filepath.Join(dir, "minimal")}, filepath.Join(dir, "minimal") + "-kernel does not exist: PREFIX names what build --format kernel+initrd writes"},
	} {
		_, err := parseRunArgs(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
	prefix := writePrefix(t, "")
	opts, err := parseRunArgs([]string{prefix, "--snapshot"}, io.Discard)
	if err != nil || opts.cfg.Kernel != prefix+"-kernel" || !opts.cfg.Snapshot {
		t.Errorf("run PREFIX --snapshot: %+v, %v", opts.cfg, err)
	}
}

// TestRunBanner names the disk, the snapshot and each published port.
func TestRunBanner(t *testing.T) {
	var b bytes.Buffer
	printBanner(&b, qemu.Config{Disk: "out/minimal.img", Snapshot: true, DiskSize: 1 << 30, Forwards: []qemu.Forward{{HostPort: 8080, GuestPort: 80}}}, "tcg")
	want := "bulkhead run: booting out/minimal.img as a disk of at least 1 GiB (snapshot: the image stays unchanged) under tcg\n" +
		"bulkhead run: published 127.0.0.1:8080 -> guest port 80/tcp\n" +
		"bulkhead run: Ctrl-C powers the guest off; a second Ctrl-C kills it\n"
	if b.String() != want {
		t.Errorf("banner\n%s\nwant\n%s", b.String(), want)
	}
}
