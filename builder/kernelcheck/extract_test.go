package kernelcheck

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const sampleConfig = "#\n# Linux/x86 6.1.0 Kernel Configuration\n#\nCONFIG_KEXEC=y\n# CONFIG_HIBERNATION is not set\nCONFIG_OVERLAY_FS=m\n"

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeVmlinux is an ELF-looking kernel holding the config as
// CONFIG_IKCONFIG does, after a stray marker the way kernel/configs.c's own
// code has one.
func fakeVmlinux(t *testing.T, cfg string) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("\x7fELF\x02\x01\x01")
	b.Write(bytes.Repeat([]byte{0x90}, 5000))
	b.WriteString("code mentions IKCFG_ST here\x00")
	b.Write(bytes.Repeat([]byte{0xcc}, 3000))
	b.WriteString("IKCFG_ST")
	b.Write(gzipped(t, []byte(cfg)))
	b.WriteString("IKCFG_ED")
	b.Write(bytes.Repeat([]byte{0}, 4000))
	return b.Bytes()
}

// compressTool compresses data with a real tool, the way the kernel's
// build compresses its payload, and appends the uncompressed size as the
// kernel's size_append does.
func compressTool(t *testing.T, data []byte, tool ...string) []byte {
	t.Helper()
	cmd := exec.Command(tool[0], tool[1:]...)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(tool, " "), err, stderr.String())
	}
	return binary.LittleEndian.AppendUint32(out, uint32(len(data)))
}

// fakeBzImage wraps a compressed payload in an x86 boot header (protocol
// 2.15) with 3 setup sectors and some decompressor code before the payload.
func fakeBzImage(payload []byte) []byte {
	const setupSects, codeBefore = 3, 0x3a0
	img := make([]byte, (setupSects+1)*512+codeBefore, (setupSects+1)*512+codeBefore+len(payload)+512)
	img[0x1f1] = setupSects
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x020f)
	binary.LittleEndian.PutUint32(img[0x248:], codeBefore)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(payload)))
	img = append(img, payload...)
	return append(img, make([]byte, 512)...)
}

func TestReadConfigFromBzImage(t *testing.T) {
	vmlinux := fakeVmlinux(t, sampleConfig)
	for _, tool := range [][]string{
		{"gzip", "-9n"},
		{"zstd", "-3", "-q", "-c"},
		{"lz4", "-l", "-9", "-q", "-c"}, // the legacy format the kernel uses
		{"bzip2", "-9", "-c"},
	} {
		t.Run(tool[0], func(t *testing.T) {
			cfg, src, err := ReadConfig(fakeBzImage(compressTool(t, vmlinux, tool...)))
			if err != nil || src != SourceBzImage || string(cfg) != sampleConfig {
				t.Fatalf("source %q, err %v, config %q", src, err, cfg)
			}
		})
	}
	_, _, err := ReadConfig(fakeBzImage(compressTool(t, vmlinux, "xz", "--check=crc32", "--x86", "--lzma2=preset=6", "-c")))
	if err == nil || !strings.Contains(err.Error(), "xz-compressed kernels are not supported") {
		t.Errorf("xz: %v", err)
	}
}

func TestReadConfigOtherInputs(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		src  Source
	}{
		{"config", []byte(sampleConfig), SourceConfig},
		{"config.gz", gzipped(t, []byte(sampleConfig)), SourceConfigGz},
		{"vmlinux", fakeVmlinux(t, sampleConfig), SourceVmlinux},
	}
	for _, tc := range cases {
		cfg, src, err := ReadConfig(tc.data)
		if err != nil || src != tc.src || string(cfg) != sampleConfig {
			t.Errorf("%s: source %q, err %v, config %q", tc.name, src, err, cfg)
		}
	}
	if _, _, err := ReadConfig(fakeBzImage(compressTool(t, []byte("\x7fELF no config here"), "gzip", "-9n"))); !errors.Is(err, ErrNoIKConfig) {
		t.Errorf("kernel without IKCONFIG: %v", err)
	}
	if _, _, err := ReadConfig([]byte("just text\n")); err == nil {
		t.Error("plain text read as a config")
	}
}

// TestDebianKernelImage reads Debian's real cloud kernel: its LZ4 payload
// decompresses to the ELF vmlinux whose size the kernel appended, and it
// has no embedded config.
func TestDebianKernelImage(t *testing.T) {
	data, err := os.ReadFile(debianFile(t, "vmlinuz-"))
	if err != nil {
		t.Fatal(err)
	}
	vmlinux, err := bzImagePayload(data)
	if err != nil {
		t.Fatal(err)
	}
	setup := (int(data[0x1f1]) + 1) * 512
	off, n := binary.LittleEndian.Uint32(data[0x248:]), binary.LittleEndian.Uint32(data[0x24c:])
	want := binary.LittleEndian.Uint32(data[setup+int(off)+int(n)-4:])
	if !bytes.HasPrefix(vmlinux, []byte("\x7fELF")) || uint32(len(vmlinux)) != want {
		t.Fatalf("vmlinux: %d bytes (want %d), starts %q", len(vmlinux), want, vmlinux[:4])
	}
	if _, src, err := ReadConfig(data); src != SourceBzImage || !errors.Is(err, ErrNoIKConfig) {
		t.Fatalf("source %q, err %v", src, err)
	}
}
