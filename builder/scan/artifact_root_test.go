package scan

import (
	"bytes"
	"context"
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
