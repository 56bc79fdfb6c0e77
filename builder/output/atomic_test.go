package output

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
)

func TestAtomicFileCommit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.img")
	f, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	names := testfile.Names(t, dir)
	if len(names) != 1 || !strings.HasPrefix(names[0], ".out.img.tmp-") {
		t.Fatalf("while writing, directory holds %q, want one .out.img.tmp-*", names)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Abort(); err != nil {
		t.Fatalf("abort after commit: %v", err)
	}
	if got := testfile.Names(t, dir); !slices.Equal(got, []string{"out.img"}) {
		t.Fatalf("after commit, directory holds %q", got)
	}
	data, err := os.ReadFile(p)
	if err != nil || string(data) != "hello" {
		t.Fatalf("read %q, %v", data, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode())
	}
}

func TestAtomicFileAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.img")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("commit after abort succeeded")
	}
	if got := testfile.Names(t, dir); !slices.Equal(got, []string{"out.img"}) {
		t.Fatalf("after abort, directory holds %q", got)
	}
	if data, _ := os.ReadFile(p); string(data) != "old" {
		t.Fatalf("abort changed the existing file to %q", data)
	}
}

func TestWriteKernelInitrd(t *testing.T) {
	dir := t.TempDir()
	tr, _ := testTree(t)
	kernel := bytes.Repeat([]byte("bzImage"), 10000)
	got, err := WriteKernelInitrd(context.Background(), dir, "host", Inputs{
		Kernel: bytes.NewReader(kernel), KernelSize: int64(len(kernel)),
		Cmdline: "console=ttyS0 root=/dev/vda", Tree: tr,
	}, WithCompression(Gzip))
	if err != nil {
		t.Fatal(err)
	}
	if want := KernelInitrdPaths(dir, "host"); got.Kernel != want.Kernel || got.Initrd != want.Initrd || got.Cmdline != want.Cmdline {
		t.Errorf("paths %+v, want %+v", got, want)
	}
	// Each file's digest, hashed while written, is the file's.
	for _, p := range []string{got.Kernel, got.Initrd, got.Cmdline} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); got.Digests[p] != "sha256:"+hex.EncodeToString(sum[:]) {
			t.Errorf("%s: digest %q, the file's %x", p, got.Digests[p], sum)
		}
	}
	if names := testfile.Names(t, dir); !slices.Equal(names, []string{"host-cmdline", "host-initrd.img", "host-kernel"}) {
		t.Fatalf("directory holds %q", names)
	}
	checkFile(t, got.Kernel, kernel)
	checkFile(t, got.Cmdline, []byte("console=ttyS0 root=/dev/vda"))
	checkFile(t, got.Initrd, writeInitrd(t, WithCompression(Gzip)))

	// The same from a kernel file.
	dir2 := t.TempDir()
	kpath := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(kpath, kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	got2, err := WriteKernelInitrd(context.Background(), dir2, "host", Inputs{KernelPath: kpath, Tree: tr})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, got2.Kernel, kernel)
	checkFile(t, got2.Cmdline, nil)
}

func checkFile(t *testing.T, p string, want []byte) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(data, want) {
		t.Errorf("%s: %d bytes (%v), want %d", p, len(data), err, len(want))
	}
}

// TestWriteKernelInitrdAllOrNothing fails each part in turn and checks that
// the directory stays as it was: no output, no temporary files.
func TestWriteKernelInitrdAllOrNothing(t *testing.T) {
	good, _ := testTree(t)
	bad := rootfs.New()
	bad.Put(&rootfs.Entry{Path: "f", Kind: rootfs.KindFile, Size: 1, Content: rootfs.Content{Blob: "/nonexistent/blob"}})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := map[string]struct {
		ctx context.Context
		in  Inputs
	}{
		"bad tree":       {context.Background(), Inputs{Kernel: bytes.NewReader([]byte("k")), KernelSize: 1, Tree: bad}},
		"missing kernel": {context.Background(), Inputs{KernelPath: "/nonexistent/vmlinuz", Tree: good}},
		"short kernel":   {context.Background(), Inputs{Kernel: bytes.NewReader([]byte("k")), KernelSize: 2, Tree: good}},
		"no tree":        {context.Background(), Inputs{Kernel: bytes.NewReader([]byte("k")), KernelSize: 1}},
		"canceled":       {canceled, Inputs{Kernel: bytes.NewReader([]byte("k")), KernelSize: 1, Tree: good}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := WriteKernelInitrd(c.ctx, dir, "host", c.in); err == nil {
				t.Fatal("no error")
			}
			if names := testfile.Names(t, dir); len(names) != 0 {
				t.Fatalf("failed write left %q", names)
			}
		})
	}
}

// TestWriteKernelInitrdLinksInitrd: an initrd written before, with its
// digest, is hard-linked into place (same file, not a copy) with mode
// 0644 and that digest; the source stays. Without the digest it is
// copied.
func TestWriteKernelInitrdLinksInitrd(t *testing.T) {
	dir := t.TempDir()
	initrd := bytes.Repeat([]byte("initrd"), 50000)
	src := filepath.Join(dir, ".host-initrd-tmp.img")
	if err := os.WriteFile(src, initrd, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(initrd)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	kernel := []byte("bzImage")
	in := Inputs{Kernel: bytes.NewReader(kernel), KernelSize: int64(len(kernel)), InitrdPath: src, InitrdDigest: digest}
	got, err := WriteKernelInitrd(context.Background(), dir, "host", in)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, got.Initrd, initrd)
	a, _ := os.Stat(src)
	b, err := os.Stat(got.Initrd)
	if err != nil || !os.SameFile(a, b) {
		t.Fatalf("the initrd is not the linked source: %v", err)
	}
	if b.Mode().Perm() != 0o644 || got.Digests[got.Initrd] != digest {
		t.Fatalf("linked initrd: mode %v, digest %q", b.Mode().Perm(), got.Digests[got.Initrd])
	}
	if names := testfile.Names(t, dir); !slices.Equal(names, []string{".host-initrd-tmp.img", "host-cmdline", "host-initrd.img", "host-kernel"}) {
		t.Fatalf("directory holds %q", names)
	}
	// Without the digest: a copy, hashed on the way.
	dir2 := t.TempDir()
	in.InitrdDigest, in.Kernel = "", bytes.NewReader(kernel)
	got2, err := WriteKernelInitrd(context.Background(), dir2, "host", in)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := os.Stat(got2.Initrd); os.SameFile(a, c) || got2.Digests[got2.Initrd] != digest {
		t.Fatalf("without a digest: linked, or digest %q", got2.Digests[got2.Initrd])
	}
	checkFile(t, got2.Initrd, initrd)
}

// TestLinkedFileAbort: an aborted linked file leaves its source and
// nothing else.
func TestLinkedFileAbort(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Link(filepath.Join(dir, "out"), src, "sha256:x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("more")); err == nil {
		t.Error("a linked file took a write")
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := testfile.Names(t, dir); !slices.Equal(names, []string{"src"}) {
		t.Fatalf("directory holds %q", names)
	}
	checkFile(t, src, []byte("data"))
}
