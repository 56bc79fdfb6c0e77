package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Partition type GUIDs of the UAPI Discoverable Partitions Specification.
const (
	TypeESP     = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	TypeRootX86 = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
	TypeVar     = "4d21b016-b534-45c2-a9fb-5c16e091fd2d"
)

// derive hashes the seed and a name.
func derive(seed []byte, name string) [32]byte {
	h := sha256.New()
	h.Write(seed)
	h.Write([]byte{0})
	h.Write([]byte(name))
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// guid derives a version-4-shaped GUID from the seed and a name.
func guid(seed []byte, name string) string {
	b := derive(seed, name)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// volumeID derives a FAT volume serial number.
func volumeID(seed []byte, name string) uint32 {
	b := derive(seed, name)
	return binary.LittleEndian.Uint32(b[:4])
}
