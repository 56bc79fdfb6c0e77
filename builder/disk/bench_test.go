package disk

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkWriteRaw writes a raw image of about 100 MB of inputs.
func BenchmarkWriteRaw(b *testing.B) {
	in := RawInput{
		Bootloader: FromBytes(pseudo(120_000, "systemd-boot")),
		Entries: []Entry{
			{Version: "1", Kernel: FromBytes(pseudo(8*MiB, "kernel")), Initrd: FromBytes(pseudo(20*MiB, "initrd")), Slot: "a"},
		},
		RootA: FromBytes(pseudo(72*MiB, "root")),
		Seed:  []byte("bench"),
	}
	dir := b.TempDir()
	b.SetBytes(100 * MiB)
	for b.Loop() {
		if _, err := WriteRaw(context.Background(), filepath.Join(dir, "disk.img"), in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteISO writes an ISO of about 30 MB of inputs.
func BenchmarkWriteISO(b *testing.B) {
	in := ISOInput{
		Bootloader: FromBytes(pseudo(120_000, "systemd-boot")),
		Entry:      Entry{Version: "1", Kernel: FromBytes(pseudo(8*MiB, "kernel")), Initrd: FromBytes(pseudo(20*MiB, "initrd"))},
	}
	dir := b.TempDir()
	b.SetBytes(28 * MiB)
	for b.Loop() {
		if err := WriteISO(context.Background(), filepath.Join(dir, "host.iso"), in); err != nil {
			b.Fatal(err)
		}
	}
}
