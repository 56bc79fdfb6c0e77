package scan

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
)

// TestReadVerifiedRootArtifacts builds the three artifacts that boot a
// verified root (a raw-efi disk, an iso-efi image and a stage-0 initrd)
// around one root image holding a private key and a setuid file: each
// reads back as the root image's tree, not the stage-0 initrd, and the
// secrets gate finds the key at its path.
func TestReadVerifiedRootArtifacts(t *testing.T) {
	dir := t.TempDir()
	root := rootfs.New()
	root.Put(&rootfs.Entry{Path: "etc/ssl/private/host.key", Kind: rootfs.KindFile, Mode: 0o600,
		Size: int64(len(testPrivateKey)), Content: rootfs.Content{Data: testPrivateKey}})
	root.Put(&rootfs.Entry{Path: "usr/bin/su", Kind: rootfs.KindFile, Mode: 0o4755, Size: 3, Content: rootfs.Content{Data: []byte("su!")}})
	root.Put(&rootfs.Entry{Path: "usr/bin/sudo", Kind: rootfs.KindHardlink, Link: "usr/bin/su"})
	root.Put(&rootfs.Entry{Path: "bin", Kind: rootfs.KindSymlink, Mode: 0o777, Link: "usr/bin"})
	root.Put(&rootfs.Entry{Path: "var/empty", Kind: rootfs.KindDir, Mode: 0o755})
	rootPath := filepath.Join(dir, "root.img")
	f, err := os.Create(rootPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := rootimg.Write(context.Background(), root, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}

	stage0 := rootfs.New()
	stage0.Put(&rootfs.Entry{Path: "init", Kind: rootfs.KindFile, Mode: 0o755, Size: 5, Content: rootfs.Content{Data: []byte("init!")}})
	stage0.Put(&rootfs.Entry{Path: RootImagePath, Kind: rootfs.KindFile, Mode: 0o444, Size: img.Size, Content: rootfs.Content{Blob: rootPath}})
	var initrd bytes.Buffer
	if err := output.WriteInitrd(context.Background(), &initrd, stage0); err != nil {
		t.Fatal(err)
	}
	initrdPath := filepath.Join(dir, "host-initrd.img")
	if err := os.WriteFile(initrdPath, initrd.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	entry := disk.Entry{Version: "1", Kernel: disk.FromBytes([]byte("kernel")), Initrd: disk.FromBytes(initrd.Bytes()), Options: "console=ttyS0", Slot: "a", Tries: 3}
	rawPath := filepath.Join(dir, "host.img")
	if _, err := disk.WriteRaw(context.Background(), rawPath, disk.RawInput{
		Bootloader: disk.FromBytes([]byte("systemd-boot")), Entries: []disk.Entry{entry},
		RootA: disk.FromFile(rootPath), Seed: []byte("scan test"),
	}); err != nil {
		t.Fatal(err)
	}
	isoPath := filepath.Join(dir, "host.iso")
	if err := disk.WriteISO(context.Background(), isoPath, disk.ISOInput{Bootloader: disk.FromBytes([]byte("systemd-boot")), Entry: entry}); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{initrdPath, rawPath, isoPath} {
		tr, err := ReadArtifact(p)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		if tr.Get("init") != nil || tr.Get(RootImagePath) != nil {
			t.Errorf("%s: read the stage-0 initrd instead of the root image", filepath.Base(p))
		}
		sameEntries(t, filepath.Base(p), root, tr)
		if su := tr.Get("usr/bin/su"); su == nil || su.Mode != 0o4755 {
			t.Errorf("%s: usr/bin/su = %+v, want mode 4755", filepath.Base(p), su)
		}
		r, err := Run(context.Background(), Input{Name: "host", Tree: tr, Now: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range r.Secrets {
			found = found || s.Rule == "private-key" && strings.Contains(s.Where, "etc/ssl/private/host.key")
		}
		if !found {
			t.Errorf("%s: no private-key finding at etc/ssl/private/host.key: %+v", filepath.Base(p), r.Secrets)
		}
	}
}

// TestReadArtifactErrors: what ReadArtifact cannot read, it names, with
// the artifact's path and what is wrong.
func TestReadArtifactErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.bin")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("junk"), 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadArtifact(junk)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), junk) {
		t.Errorf("junk: %v, want ErrUnsupported naming %s", err, junk)
	}
	// A disk whose GPT names root-a but which ends before it.
	root := rootfs.New()
	root.Put(&rootfs.Entry{Path: "etc/hostname", Kind: rootfs.KindFile, Mode: 0o644, Size: 2, Content: rootfs.Content{Data: []byte("h\n")}})
	rootPath := filepath.Join(dir, "root.img")
	f, err := os.Create(rootPath)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rootimg.Write(context.Background(), root, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	rawPath := filepath.Join(dir, "host.img")
	entry := disk.Entry{Version: "1", Kernel: disk.FromBytes([]byte("kernel")), Initrd: disk.FromBytes([]byte("initrd")), Slot: "a", Tries: 3}
	if _, err := disk.WriteRaw(context.Background(), rawPath, disk.RawInput{
		Bootloader: disk.FromBytes([]byte("systemd-boot")), Entries: []disk.Entry{entry},
		RootA: disk.FromFile(rootPath), Seed: []byte("scan test"),
	}); err != nil {
		t.Fatal(err)
	}
	l, err := disk.ReadLayout(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	part, ok := l.Partition("root-a")
	if !ok {
		t.Fatal("no root-a")
	}
	if err := os.Truncate(rawPath, part.Offset); err != nil {
		t.Fatal(err)
	}
	_, err = ReadArtifact(rawPath)
	if err == nil || !strings.Contains(err.Error(), rawPath) || !strings.Contains(err.Error(), "root-a") {
		t.Errorf("truncated disk: %v, want an error naming %s and root-a", err, rawPath)
	}
}

// sameEntries checks that every entry of want is in got with its kind,
// mode, link target and content.
func sameEntries(t *testing.T, name string, want, got *rootfs.Tree) {
	t.Helper()
	want.Walk(func(w *rootfs.Entry) error {
		e := got.Get(w.Path)
		if e == nil {
			t.Errorf("%s: %q missing", name, w.Path)
			return nil
		}
		if e.Kind != w.Kind || e.Link != w.Link || w.Kind != rootfs.KindHardlink && e.Mode != w.Mode {
			t.Errorf("%s: %q = %v %o %q, want %v %o %q", name, w.Path, e.Kind, e.Mode, e.Link, w.Kind, w.Mode, w.Link)
		}
		if w.Kind == rootfs.KindFile && !bytes.Equal(content(t, e), w.Content.Data) {
			t.Errorf("%s: %q content differs", name, w.Path)
		}
		return nil
	})
}

func content(t *testing.T, e *rootfs.Entry) []byte {
	t.Helper()
	rc, err := e.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
