package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
	"github.com/bulkhead-dev/bulkhead/internal/update"
)

// TestUpdateOfMinimalMatchesRawEFI builds examples/minimal.yml as version
// 1.0.0 (raw-efi) and 1.1.0 (raw-efi and update), makes a host of the first
// disk (its ESP as a directory, its entry blessed, its root-b as a file),
// applies the bundle with the keys baked into the 1.0.0 root, and checks
// that the host then holds what the 1.1.0 disk holds: the same root image
// in the slot, the same kernel and initrd, the same entry but for the
// partition GUIDs. It needs the component images: set BULKHEAD_STORE (make
// images fills one).
func TestUpdateOfMinimalMatchesRawEFI(t *testing.T) {
	store := os.Getenv("BULKHEAD_STORE")
	if store == "" {
		t.Skip("needs the component images: set BULKHEAD_STORE")
	}
	dir := t.TempDir()
	priv, pub, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "update.key"), priv)
	writeTestFile(t, filepath.Join(dir, "update.pub"), pub)
	old := buildMinimal(t, dir, store, "1.0.0", "raw-efi")
	next := buildMinimal(t, dir, store, "1.1.0", "raw-efi,update")

	host, target := hostOf(t, old, "1.0.0")
	running := readTestFile(t, filepath.Join(target.ESP, "loader/entries", host.Entry))
	start := time.Now()
	res, err := apply.Apply(t.Context(), apply.File(filepath.Join(next, "minimal.bundle")), host, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("applied %s (root %d bytes) in %v", res.Manifest.Version, res.Manifest.Payloads[0].Size, time.Since(start))
	if bytes.Contains(running, []byte(res.Manifest.Verity)) {
		t.Fatal("both versions have the same root")
	}
	img := filepath.Join(next, "minimal.img")
	l, err := disk.ReadLayout(img)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := l.Partition("root-a")
	rootSize := res.Manifest.Payloads[0].Size
	if !bytes.Equal(readSection(t, img, a.Offset, rootSize), readSection(t, filepath.Join(dir, "slot"), 0, rootSize)) {
		t.Error("the slot differs from the 1.1.0 disk's root image")
	}
	for _, f := range []string{"bulkhead/1.1.0/linux", "bulkhead/1.1.0/initrd"} {
		want, err := disk.ReadESPFile(img, f)
		if err != nil {
			t.Fatal(err)
		}
		if got := readTestFile(t, filepath.Join(target.ESP, f)); !bytes.Equal(got, want) {
			t.Errorf("%s differs from the 1.1.0 disk's", f)
		}
	}
	want, err := disk.ReadESPFile(img, "loader/entries/bulkhead-1.1.0+3.conf")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := l.Partition("data")
	wantConf := strings.NewReplacer(a.GUID, target.SlotGUID, data.GUID, host.DataGUID).Replace(string(want))
	if got := string(readTestFile(t, filepath.Join(target.ESP, res.Entry))); got != wantConf {
		t.Errorf("entry:\n%s\nwant:\n%s", got, wantConf)
	}
}

func buildMinimal(t *testing.T, dir, store, version, formats string) string {
	t.Helper()
	spec, err := os.ReadFile("../../examples/minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The versions differ in their roots too: the host name carries it.
	spec = bytes.Replace(spec, []byte(`contents: "minimal"`), []byte(`contents: "minimal-`+version+`"`), 1)
	spec = append(spec, []byte("boot:\n  version: "+version+"\nupdate:\n  keys: [update.pub]\n")...)
	p := filepath.Join(dir, "minimal-"+version+".yml")
	writeTestFile(t, p, spec)
	out := filepath.Join(dir, version)
	var so, se bytes.Buffer
	args := []string{"build", "--offline", "--store", store, "--format", formats, "-o", out, "--name", "minimal",
		"--sign-key", filepath.Join(dir, "update.key"), "--expires", "2030-01-01", p}
	if code := run(context.Background(), args, &so, &se); code != 0 {
		t.Fatalf("build %s: exit %d\n%s", version, code, se.String())
	}
	return out
}

// hostOf makes a host running version from slot a of the raw-efi disk in
// out, blessed, with the keys baked into its root.
func hostOf(t *testing.T, out, version string) (apply.Host, apply.Target) {
	t.Helper()
	img := filepath.Join(out, "minimal.img")
	l, err := disk.ReadLayout(img)
	if err != nil {
		t.Fatal(err)
	}
	esp := filepath.Join(filepath.Dir(out), "esp")
	counted := "bulkhead-" + version + "+3.conf"
	for _, f := range []string{"loader/loader.conf", "loader/entries/" + counted, "bulkhead/" + version + "/linux", "bulkhead/" + version + "/initrd"} {
		b, err := disk.ReadESPFile(img, f)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(esp, strings.Replace(f, counted, "bulkhead-"+version+".conf", 1)), b) // blessed
	}
	a, _ := l.Partition("root-a")
	b, _ := l.Partition("root-b")
	data, _ := l.Partition("data")
	slot := filepath.Join(filepath.Dir(out), "slot")
	writeTestFile(t, slot, readSection(t, img, b.Offset, b.Size))
	s, size, err := apply.OpenSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return apply.Host{
			Name: "minimal", Arch: "amd64", Version: version, Entry: "bulkhead-" + version + ".conf",
			RootGUID: a.GUID, DataGUID: data.GUID, Keys: bakedKeys(t, img, a),
		}, apply.Target{
			Slot: s, SlotSize: size, SlotGUID: b.GUID, ESP: esp,
		}
}

// bakedKeys reads update.KeysPath from the root image in partition p.
func bakedKeys(t *testing.T, img string, p disk.Partition) []*update.PublicKey {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree, err := rootimg.Read(rootimg.Source{R: io.NewSectionReader(f, p.Offset, p.Size)}, "root")
	if err != nil {
		t.Fatal(err)
	}
	e := tree.Get(update.KeysPath)
	if e == nil {
		t.Fatalf("the root has no %s", update.KeysPath)
	}
	rc, err := e.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := update.ParsePublicKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func readSection(t *testing.T, path string, off, size int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, off, size), b); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTestFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
