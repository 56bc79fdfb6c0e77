package output

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

func TestInitrdDeterministic(t *testing.T) {
	for _, c := range []Compression{Zstd, Gzip, None} {
		t.Run(c.String(), func(t *testing.T) {
			a := writeInitrd(t, WithCompression(c))
			b := writeInitrd(t, WithCompression(c)) // a new tree, a new blob file
			if !bytes.Equal(a, b) {
				t.Fatalf("two writes differ (%d and %d bytes)", len(a), len(b))
			}
		})
	}
}

// TestZstdIndependentOfConcurrency checks that the pipelined encoder the
// writer uses gives the bytes of the sequential one, over many blocks.
func TestZstdIndependentOfConcurrency(t *testing.T) {
	in := compressibleBytes(20 << 20)
	for _, level := range []int{1, 3} {
		var outs [][]byte
		for _, conc := range []int{1, 2, 4} {
			var buf bytes.Buffer
			zw, err := newZstd(&buf, level, conc)
			if err != nil {
				t.Fatal(err)
			}
			// Odd-sized writes, as the cpio writer makes them.
			for r := bytes.NewReader(in); r.Len() > 0; {
				if _, err := io.CopyN(zw, r, 12345); err != nil && err != io.EOF {
					t.Fatal(err)
				}
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			outs = append(outs, buf.Bytes())
		}
		for i := 1; i < len(outs); i++ {
			if !bytes.Equal(outs[0], outs[i]) {
				t.Errorf("level %d: output with concurrency %d differs from sequential", level, []int{1, 2, 4}[i])
			}
		}
	}
}

// compressibleBytes is n bytes that compress roughly like executables.
func compressibleBytes(n int) []byte {
	b := make([]byte, n)
	x := uint32(1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		if x%4 == 0 {
			b[i] = byte(x >> 8)
		} else if i >= 64 {
			b[i] = b[i-int(x%61)-1]
		}
	}
	return b
}

// TestInitrdZstdFrame checks what the kernel's initramfs decompressor
// (lib/decompress_unzstd.c) needs: zstd frames whose window it can allocate.
func TestInitrdZstdFrame(t *testing.T) {
	for _, level := range []int{1, 3, 19} {
		raw := writeInitrd(t, WithZstdLevel(level))
		var h zstd.Header
		if err := h.Decode(raw); err != nil {
			t.Fatal(err)
		}
		if h.WindowSize == 0 || h.WindowSize > 8<<20 || !h.HasCheckSum {
			t.Errorf("level %d: window %d, checksum %v; want a window of at most 8 MiB and a checksum", level, h.WindowSize, h.HasCheckSum)
		}
		d, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(d)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, writeInitrd(t, WithCompression(None))) {
			t.Errorf("level %d: decompressed archive differs from the uncompressed one", level)
		}
	}
}

func TestInitrdGzipOracle(t *testing.T) {
	got := oracle(t, t.TempDir(), writeInitrd(t, WithCompression(Gzip)), "gzip", "-d", "-c")
	if !bytes.Equal(got, writeInitrd(t, WithCompression(None))) {
		t.Fatal("gzip -d output differs from the uncompressed archive")
	}
}

// TestInitrdUcode checks the early-microcode convention: the microcode cpio
// comes first, uncompressed, then the compressed root archive.
func TestInitrdUcode(t *testing.T) {
	var ucode bytes.Buffer
	rw := cpio.Newc.Writer(&ucode)
	for _, r := range []cpio.Record{
		cpio.Directory("kernel", 0o755),
		cpio.Directory("kernel/x86", 0o755),
		cpio.Directory("kernel/x86/microcode", 0o755),
		cpio.StaticFile("kernel/x86/microcode/GenuineIntel.bin", "microcode", 0o644),
	} {
		if err := rw.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		t.Fatal(err)
	}
	raw := writeInitrd(t, WithUcode(bytes.NewReader(ucode.Bytes())))
	if !bytes.HasPrefix(raw, ucode.Bytes()) {
		t.Fatal("initrd does not start with the microcode archive")
	}
	rest := raw[ucode.Len():]
	if !bytes.Equal(rest, writeInitrd(t)) {
		t.Fatal("what follows the microcode is not the plain compressed initrd")
	}
	list := oracle(t, t.TempDir(), ucode.Bytes(), "cpio", "-i", "-t", "--quiet")
	if !bytes.Contains(list, []byte("kernel/x86/microcode/GenuineIntel.bin")) {
		t.Fatalf("cpio lists %q", list)
	}
}

func TestInitrdErrors(t *testing.T) {
	blob := filepath.Join(t.TempDir(), "short.blob")
	if err := os.WriteFile(blob, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]rootfs.Entry{
		"blob shorter than size": {Path: "f", Kind: rootfs.KindFile, Size: 100, Content: rootfs.Content{Blob: blob, Offset: 2}},
		"missing blob":           {Path: "f", Kind: rootfs.KindFile, Size: 1, Content: rootfs.Content{Blob: blob + ".gone"}},
		"data size mismatch":     {Path: "f", Kind: rootfs.KindFile, Size: 3, Content: rootfs.Content{Data: []byte("ab")}},
		"hard link to dir":       {Path: "f", Kind: rootfs.KindHardlink, Link: "d"},
		"negative owner":         {Path: "f", Kind: rootfs.KindDir, UID: -1},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			tr := rootfs.New()
			tr.Put(&rootfs.Entry{Path: "d", Kind: rootfs.KindDir})
			tr.Put(&e)
			err := WriteInitrd(context.Background(), io.Discard, tr)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
		})
	}
}

func TestInitrdCanceled(t *testing.T) {
	tr, _ := testTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteInitrd(ctx, io.Discard, tr); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestParseCompression(t *testing.T) {
	for _, c := range []Compression{Zstd, Gzip, None} {
		if got, err := ParseCompression(c.String()); err != nil || got != c {
			t.Errorf("ParseCompression(%q) = %v, %v", c, got, err)
		}
	}
	if _, err := ParseCompression("xz"); err == nil {
		t.Error("xz accepted")
	}
}

// TestWriteKernelInitrdPrebuilt: an initrd already written is copied as
// it is, without a tree.
func TestWriteKernelInitrdPrebuilt(t *testing.T) {
	initrd := []byte("an initrd written before")
	file := filepath.Join(t.TempDir(), "initrd.img")
	if err := os.WriteFile(file, initrd, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, in := range []Inputs{{Initrd: initrd}, {InitrdPath: file}} {
		dir := t.TempDir()
		in.Kernel, in.KernelSize, in.Cmdline = bytes.NewReader([]byte("kernel")), 6, "console=ttyS0"
		ki, err := WriteKernelInitrd(context.Background(), dir, "host", in)
		if err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]string{ki.Kernel: "kernel", ki.Initrd: string(initrd), ki.Cmdline: "console=ttyS0"} {
			if b, err := os.ReadFile(p); err != nil || string(b) != want {
				t.Errorf("%s = %q, %v; want %q", p, b, err, want)
			}
		}
	}
	in := Inputs{Kernel: bytes.NewReader([]byte("kernel")), KernelSize: 6, Initrd: initrd, InitrdPath: file}
	if _, err := WriteKernelInitrd(context.Background(), t.TempDir(), "host", in); err == nil {
		t.Error("both initrd bytes and an initrd path accepted")
	}
}
