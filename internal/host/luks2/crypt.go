package luks2

import (
	"fmt"
	"strings"

	"github.com/bulkhead-dev/bulkhead/internal/host/dm"
)

// Modules are the kernel modules dm-crypt with aes-xts-plain64 needs, in
// load order, for a kernel with them as modules and no modprobe helper
// (Debian's cloud kernel: CONFIG_DM_CRYPT, CONFIG_CRYPTO_XTS,
// CONFIG_CRYPTO_ECB and CONFIG_CRYPTO_AES_NI_INTEL are =m, the generic
// AES cipher is built in). The crypto API cannot load templates on demand
// there, so they are listed: aesni_intel registers xts(aes) itself where
// the CPU has AES-NI (it fails to load where not); elsewhere dm-crypt's
// xts(aes) is the xts template over ecb(aes) over the built-in aes. A
// caller loads them with their dependencies (dm_mod; crypto_simd and
// cryptd for aesni_intel) and passes over those that fail or are built in.
var Modules = []string{"dm_mod", "dm_crypt", "ecb", "xts", "aesni_intel"}

// CryptTarget is the dm-crypt table line mapping h's data segment on dev,
// a device of devSectors 512-byte sectors, with the volume key: cipher,
// hex key, IV offset, device, data offset in 512-byte sectors and the
// sector size when it is not 512. A dynamic segment runs to the device's
// last whole encryption sector.
func CryptTarget(h *Header, key []byte, dev string, devSectors uint64) (dm.Target, error) {
	s := h.Segment
	if len(key) != h.KeySize {
		return dm.Target{}, fmt.Errorf("volume key of %d bytes, not %d", len(key), h.KeySize)
	}
	if dev == "" || strings.ContainsAny(dev, " \t\n") {
		return dm.Target{}, fmt.Errorf("device name %q", dev)
	}
	start := s.Offset / 512
	per := uint64(s.SectorSize / 512)
	if devSectors < start+per {
		return dm.Target{}, fmt.Errorf("%s has %d sectors, no data after the %d-sector header", dev, devSectors, start)
	}
	length := (devSectors - start) / per * per
	if !s.Dynamic {
		if s.Size/512 > length {
			return dm.Target{}, fmt.Errorf("%s has %d sectors, fewer than the segment's %d from sector %d", dev, devSectors, s.Size/512, start)
		}
		length = s.Size / 512
	}
	params := fmt.Sprintf("%s %x %d %s %d", s.Encryption, key, s.IVTweak, dev, start)
	if s.SectorSize != 512 {
		params += fmt.Sprintf(" 1 sector_size:%d", s.SectorSize)
	}
	return dm.Target{Length: length, Type: "crypt", Params: params}, nil
}
