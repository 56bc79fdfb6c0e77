package luks2

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzReadHeader: no metadata (in header copies with right checksums)
// makes ReadHeader, CryptTarget or Unlock panic, and what ReadHeader
// accepts keeps its areas inside the header and gives a one-line table.
func FuzzReadHeader(f *testing.F) {
	dev := mem(make([]byte, DataOffset+SectorSize))
	h, _, err := Format(dev, int64(len(dev)), FormatOptions{Passphrase: []byte("p"), Rand: seeded(13)})
	if err != nil {
		f.Fatal(err)
	}
	good, err := json.Marshal(h.meta)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"keyslots":{},"tokens":{"0":{"type":"x","keyslots":[]}},"segments":{},"digests":{},"config":{}}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		dev := mem(make([]byte, 3*DefaultHeaderSize))
		b := binHeader{size: DefaultHeaderSize, seqID: 1, checksumAlg: "sha256"}
		for _, off := range []uint64{0, DefaultHeaderSize} {
			b.offset, b.secondary = off, off != 0
			buf, err := b.encode(js)
			if err != nil {
				return
			}
			copy(dev[off:], buf)
		}
		h, err := ReadHeader(dev)
		if err != nil {
			return
		}
		start, end := h.keyslotsArea()
		for id, k := range h.meta.Keyslots {
			if k.Area.Offset < start || k.Area.Offset+k.Area.Size > end || afSize(k) > k.Area.Size {
				t.Fatalf("keyslot %s area %+v outside %d-%d", id, k.Area, start, end)
			}
		}
		if h.Segment.Offset < end || len(h.Tokens) > maxObjects {
			t.Fatalf("segment at %d, keyslots end at %d; %d tokens", h.Segment.Offset, end, len(h.Tokens))
		}
		tg, err := CryptTarget(h, make([]byte, h.KeySize), "/dev/vdb", 1<<40)
		if err == nil && (strings.ContainsAny(tg.Params, "\n\x00") || len(strings.Fields(tg.Params)) > 7) {
			t.Fatalf("table line %q", tg.Params)
		}
		for _, k := range h.meta.Keyslots {
			if k.KDF.Iterations > 1000 || k.KDF.Time > 2 || k.KDF.Memory > 1024 {
				return // too slow to try
			}
		}
		_, _ = h.Unlock(dev, []byte("p"))
	})
}
