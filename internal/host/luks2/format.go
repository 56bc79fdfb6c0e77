package luks2

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The volume Format writes.
const (
	// DataOffset is where the data segment starts: 16 MiB, as cryptsetup
	// puts it, leaving the headers and keyslots area before it.
	DataOffset = 16 << 20
	// Cipher encrypts the data segment and the keyslot.
	Cipher = "aes-xts-plain64"
	// KeySize is the bytes of the volume key: two AES-256 keys for XTS.
	KeySize = 64
	// SectorSize is the data segment's encryption sector (dm-crypt's
	// sector_size), the data file system's block size.
	SectorSize = 4096
	// DefaultIterations is the keyslot's pbkdf2-sha256 iteration count.
	// The passphrase Format is meant for is a random 32-byte secret, so
	// stretching it buys nothing; cryptsetup's minimum is 1000.
	DefaultIterations = 1000

	stripes      = 4000 // AF stripes, as LUKS1 and cryptsetup
	saltSize     = 32   // keyslot and digest salts (LUKS_SALTSIZE)
	digestIters  = 1000 // pbkdf2 iterations of the volume key digest
	keyslotStart = 2 * DefaultHeaderSize
	wipeChunk    = 1 << 20
)

// FormatOptions are Format's inputs. Passphrase is required.
type FormatOptions struct {
	Passphrase []byte
	// Tokens go into the metadata as tokens 0, 1, …; their keyslots
	// must be ["0"], the only keyslot.
	Tokens []Token
	Label  string // at most 47 bytes
	// Iterations of the keyslot's pbkdf2-sha256; 0 is DefaultIterations.
	Iterations int
	// Rand supplies the volume key, salts, UUID and AF stripes; nil is
	// crypto/rand. A fixed stream makes Format's output reproducible.
	Rand io.Reader
}

// Format writes a LUKS2 volume over the first size bytes of w: it zeroes
// the headers and keyslots area (so no earlier file system signature is
// left in them), writes the keyslot, the secondary header and last the
// primary header. It returns the header it wrote and the new volume key.
// The data segment is left as it was: whatever it held before reads as
// noise through dm-crypt.
func Format(w io.WriterAt, size int64, o FormatOptions) (*Header, []byte, error) {
	if len(o.Passphrase) == 0 {
		return nil, nil, errors.New("formatting LUKS2: no passphrase")
	}
	if size < DataOffset+SectorSize {
		return nil, nil, fmt.Errorf("formatting LUKS2: device of %d bytes is smaller than the %d-byte header and one sector", size, DataOffset)
	}
	if len(o.Label) >= labelLen {
		return nil, nil, fmt.Errorf("formatting LUKS2: label longer than %d bytes", labelLen-1)
	}
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	v, err := newVolume(rnd, o)
	if err != nil {
		return nil, nil, fmt.Errorf("formatting LUKS2: %w", err)
	}
	if err := v.write(w); err != nil {
		clear(v.key)
		return nil, nil, fmt.Errorf("formatting LUKS2: %w", err)
	}
	return v.header, v.key, nil
}

// volume is what Format writes, made before anything is written.
type volume struct {
	key     []byte
	area    []byte // the encrypted keyslot area
	primary []byte
	second  []byte
	header  *Header
}

func newVolume(rnd io.Reader, o FormatOptions) (*volume, error) {
	iters := o.Iterations
	if iters == 0 {
		iters = DefaultIterations
	}
	if iters < 0 || iters > maxIterations {
		return nil, fmt.Errorf("%d iterations", iters)
	}
	v := &volume{key: make([]byte, KeySize)}
	var slotSalt, digestSalt [saltSize]byte
	var uuid [16]byte
	var err error
	for _, b := range [][]byte{v.key, slotSalt[:], digestSalt[:], uuid[:]} {
		if _, err = io.ReadFull(rnd, b); err != nil {
			return nil, fmt.Errorf("reading random bytes: %w", err)
		}
	}
	slotKey, err := pbkdf2Key("sha256", o.Passphrase, slotSalt[:], iters, KeySize)
	if err != nil {
		return nil, err
	}
	defer clear(slotKey)
	split, err := afSplit(v.key, stripes, sha256.New, rnd)
	if err != nil {
		return nil, err
	}
	v.area = make([]byte, afSize(keyslot{KeySize: KeySize, AF: af{Stripes: stripes}}))
	copy(v.area, split)
	clear(split)
	if err := cryptArea(Cipher, slotKey, v.area, true); err != nil {
		return nil, err
	}
	sum, err := pbkdf2Key("sha256", v.key, digestSalt[:], digestIters, sha256.Size)
	if err != nil {
		return nil, err
	}
	m, err := newMetadata(o.Tokens, kdf{Type: "pbkdf2", Hash: "sha256", Iterations: iters, Salt: slotSalt[:]},
		digest{Type: "pbkdf2", Keyslots: []string{"0"}, Segments: []string{"0"}, Hash: "sha256", Iterations: digestIters, Salt: digestSalt[:], Digest: sum},
		uint64(len(v.area)))
	if err != nil {
		return nil, err
	}
	return v, v.encodeHeaders(rnd, m, uuidString(uuid), o.Label)
}

func newMetadata(tokens []Token, slotKDF kdf, d digest, areaSize uint64) (metadata, error) {
	m := metadata{
		Keyslots: map[string]keyslot{"0": {
			Type:    "luks2",
			KeySize: KeySize,
			AF:      af{Type: "luks1", Stripes: stripes, Hash: "sha256"},
			Area:    area{Type: "raw", Offset: keyslotStart, Size: (areaSize + 4095) &^ 4095, Encryption: Cipher, KeySize: KeySize},
			KDF:     slotKDF,
		}},
		Tokens: map[string]json.RawMessage{},
		Segments: map[string]segment{"0": {
			Type: "crypt", Offset: DataOffset, Size: "dynamic", Encryption: Cipher, SectorSize: SectorSize,
		}},
		Digests: map[string]digest{"0": d},
		Config:  config{JSONSize: DefaultHeaderSize - binHeaderSize, KeyslotsSize: DataOffset - keyslotStart},
	}
	if len(tokens) > maxObjects {
		return metadata{}, fmt.Errorf("%d tokens, more than %d", len(tokens), maxObjects)
	}
	for i, t := range tokens {
		pt, err := parseToken(t.JSON)
		if err != nil {
			return metadata{}, fmt.Errorf("token %d: %w", i, err)
		}
		for _, k := range pt.Keyslots {
			if _, ok := m.Keyslots[k]; !ok {
				return metadata{}, fmt.Errorf("token %d (%s): no keyslot %q", i, pt.Type, k)
			}
		}
		m.Tokens[strconv.Itoa(i)] = pt.JSON
	}
	return m, nil
}

// encodeHeaders makes both header copies of m (seqid 1, each with its own
// salt) and the Header they describe.
func (v *volume) encodeHeaders(rnd io.Reader, m metadata, uuid, label string) error {
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b := binHeader{size: DefaultHeaderSize, seqID: 1, label: label, checksumAlg: "sha256", uuid: uuid}
	for i, out := range []*[]byte{&v.primary, &v.second} {
		b.secondary = i == 1
		b.offset = uint64(i) * DefaultHeaderSize
		if _, err := io.ReadFull(rnd, b.salt[:]); err != nil {
			return fmt.Errorf("reading random bytes: %w", err)
		}
		if *out, err = b.encode(js); err != nil {
			return err
		}
	}
	b.offset, b.secondary = 0, false
	v.header, err = parseMetadata(headerCopy{bin: b, json: js})
	return err
}

// write zeroes the header region and writes the keyslot and the two
// headers, primary last, then syncs w if it can.
func (v *volume) write(w io.WriterAt) error {
	zero := make([]byte, wipeChunk)
	for off := int64(0); off < DataOffset; off += wipeChunk {
		if _, err := w.WriteAt(zero, off); err != nil {
			return fmt.Errorf("wiping header region: %w", err)
		}
	}
	for _, p := range []struct {
		b   []byte
		off int64
	}{{v.area, keyslotStart}, {v.second, DefaultHeaderSize}, {v.primary, 0}} {
		if _, err := w.WriteAt(p.b, p.off); err != nil {
			return fmt.Errorf("writing header: %w", err)
		}
	}
	if s, ok := w.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("syncing: %w", err)
		}
	}
	return nil
}

// uuidString formats 16 random bytes as a version 4 UUID.
func uuidString(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
