package luks2

import (
	"testing"
)

// BenchmarkFormat formats a volume in memory: 16 MiB of header region
// zeroed, pbkdf2-sha256 (1000 iterations) twice, 4000 AF stripes split
// and encrypted, two header copies.
func BenchmarkFormat(b *testing.B) {
	dev := mem(make([]byte, DataOffset+SectorSize))
	pass := passphrase(12)
	for b.Loop() {
		if _, _, err := Format(dev, int64(len(dev)), FormatOptions{Passphrase: pass}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnlock reads both header copies and unlocks the keyslot, what
// the init does on every boot before Open.
func BenchmarkUnlock(b *testing.B) {
	dev := mem(make([]byte, DataOffset+SectorSize))
	pass := passphrase(12)
	if _, _, err := Format(dev, int64(len(dev)), FormatOptions{Passphrase: pass}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		h, err := ReadHeader(dev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.Unlock(dev, pass); err != nil {
			b.Fatal(err)
		}
	}
}
