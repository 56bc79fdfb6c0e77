package apply_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/bundler"
	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
)

// benchContent is about what examples/minimal.yml's root holds.
const benchContent = 48 << 20

// benchVersion is a version whose root holds benchContent bytes of files
// that compress about as binaries do (half random, half repeated).
func benchVersion(b *testing.B, dir, name string) version {
	b.Helper()
	v := buildVersion(b, dir, name) // kernel, initrd; its root is replaced below
	rng := rand.New(rand.NewPCG(1, uint64(len(name))))
	tr := rootfs.New()
	const fileSize = 1 << 20
	for i := range benchContent / fileSize {
		data := make([]byte, fileSize)
		for j := 0; j < fileSize/2; j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		copy(data[fileSize/2:], []byte(fmt.Sprintf("%s file %d ", name, i)))
		tr.Put(&rootfs.Entry{Path: fmt.Sprintf("usr/lib/f%03d", i), Kind: rootfs.KindFile, Mode: 0o644,
			Size: fileSize, ModTime: epoch, Content: rootfs.Content{Data: data}})
	}
	root := filepath.Join(dir, name+".root")
	f, err := os.Create(root)
	if err != nil {
		b.Fatal(err)
	}
	img, err := rootimg.Write(b.Context(), tr, f, rootimg.WithEpoch(epoch))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	v.root, v.img = root, img
	v.options = "console=ttyS0 " + img.Verity.Cmdline()
	return v
}

// BenchmarkApply applies a bundle of a ~50 MB root to a slot file on this
// machine's disk and compares the time with dd writing the same root
// image to the same file with fsync (the floor for any apply: the bytes
// must reach the disk). The apply also decompresses, hashes every
// payload, and reads the slot back against the verity tree.
func BenchmarkApply(b *testing.B) {
	dir := b.TempDir()
	old, neu := benchVersion(b, dir, oldVersion), benchVersion(b, dir, newVersion)
	img := filepath.Join(dir, "old.img")
	l := writeRaw(b, img, []disk.Entry{old.entry("a", 0)}, old.root, "")
	esp := filepath.Join(dir, "esp")
	key := newKey(b)
	bundle := filepath.Join(dir, "new.bundle")
	if _, err := bundler.Write(b.Context(), bundle, neu.input(), key); err != nil {
		b.Fatal(err)
	}
	a, _ := l.Partition("root-a")
	pb, _ := l.Partition("root-b")
	data, _ := l.Partition("data")
	host := apply.Host{Name: "test", Arch: "amd64", Version: oldVersion, Entry: "bulkhead-" + oldVersion + ".conf",
		RootGUID: a.GUID, DataGUID: data.GUID, Keys: hostKeys(b, key)}
	slot := filepath.Join(dir, "root-b")
	rootBytes := fileSize(b, neu.root)
	var applyTime, ddTime time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		os.RemoveAll(esp)
		extractESP(b, img, esp, oldVersion)
		writeFile(b, slot, make([]byte, pb.Size))
		s, size, err := apply.OpenSlot(slot)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		_, err = apply.Apply(b.Context(), apply.File(bundle), host,
			apply.Target{Slot: s, SlotSize: size, SlotGUID: pb.GUID, ESP: esp}, apply.WithClock(clock))
		applyTime += time.Since(start)
		b.StopTimer()
		s.Close()
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		out, err := exec.Command("dd", "if="+neu.root, "of="+slot, "bs=4M", "conv=notrunc,fsync", "status=none").CombinedOutput()
		ddTime += time.Since(start)
		if err != nil {
			b.Fatalf("dd: %v\n%s", err, out)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(rootBytes)/(1<<20), "MiB-root")
	b.ReportMetric(float64(applyTime.Milliseconds())/float64(b.N), "ms-apply")
	b.ReportMetric(float64(ddTime.Milliseconds())/float64(b.N), "ms-dd")
	b.ReportMetric(float64(applyTime)/float64(ddTime), "x-dd")
}
