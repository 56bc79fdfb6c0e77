package luks2

import (
	"crypto/aes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/xts"
)

// ErrPassphrase is Unlock's error when no keyslot takes the passphrase.
var ErrPassphrase = errors.New("no keyslot accepts the passphrase")

// keyslotSector is the sector size of keyslot encryption: the IV is the
// 512-byte sector's number from the start of the keyslot's area.
const keyslotSector = 512

func hashFunc(name string) (func() hash.Hash, error) {
	switch name {
	case "sha1":
		return sha1.New, nil
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("unsupported hash %q", name)
}

// Unlock tries the passphrase on the keyslots (higher priority first, a
// priority 0 keyslot never) and returns the volume key of the first one
// it opens whose digest matches. A wrong passphrase is ErrPassphrase.
func (h *Header) Unlock(r io.ReaderAt, passphrase []byte) ([]byte, error) {
	for _, id := range h.keyslotOrder() {
		key, err := h.unlockKeyslot(r, id, passphrase)
		if errors.Is(err, ErrPassphrase) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keyslot %s: %w", id, err)
		}
		return key, nil
	}
	return nil, ErrPassphrase
}

// keyslotOrder is the keyslots to try: priority 2 (high), then 1 (normal,
// and the default), each in id order.
func (h *Header) keyslotOrder() []string {
	ids := slices.Collect(maps.Keys(h.meta.Keyslots))
	prio := func(id string) int {
		if p := h.meta.Keyslots[id].Priority; p != nil {
			return *p
		}
		return 1
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return prio(id) <= 0 })
	slices.SortFunc(ids, func(a, b string) int {
		if pa, pb := prio(a), prio(b); pa != pb {
			return pb - pa
		}
		return atoi(a) - atoi(b)
	})
	return ids
}

func (h *Header) unlockKeyslot(r io.ReaderAt, id string, passphrase []byte) ([]byte, error) {
	k := h.meta.Keyslots[id]
	digests := h.digestsOf(id)
	if len(digests) == 0 {
		return nil, ErrPassphrase // an unbound keyslot opens no segment
	}
	dk, err := deriveKey(k.KDF, passphrase, k.Area.KeySize)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	split := make([]byte, afSize(k))
	defer clear(split)
	if _, err := r.ReadAt(split, int64(k.Area.Offset)); err != nil {
		return nil, fmt.Errorf("reading area: %w", err)
	}
	if err := cryptArea(k.Area.Encryption, dk, split, false); err != nil {
		return nil, err
	}
	hf, _ := hashFunc(k.AF.Hash)
	key := afMerge(split[:k.KeySize*k.AF.Stripes], k.KeySize, k.AF.Stripes, hf)
	for _, d := range digests {
		ok, err := d.matches(key)
		if err != nil {
			return nil, err
		}
		if ok {
			return key, nil
		}
	}
	clear(key)
	return nil, ErrPassphrase
}

// digestsOf is the digests that cover keyslot id and segment 0.
func (h *Header) digestsOf(id string) []digest {
	var ds []digest
	for _, d := range h.meta.Digests {
		if slices.Contains(d.Keyslots, id) && slices.Contains(d.Segments, "0") {
			ds = append(ds, d)
		}
	}
	return ds
}

// matches reports whether key is the volume key d is a digest of.
func (d digest) matches(key []byte) (bool, error) {
	got, err := pbkdf2Key(d.Hash, key, d.Salt, d.Iterations, len(d.Digest))
	if err != nil {
		return false, fmt.Errorf("digest: %w", err)
	}
	return subtle.ConstantTimeCompare(got, d.Digest) == 1, nil
}

// deriveKey runs a keyslot's KDF over the passphrase.
func deriveKey(k kdf, passphrase []byte, size int) ([]byte, error) {
	switch k.Type {
	case "pbkdf2":
		return pbkdf2Key(k.Hash, passphrase, k.Salt, k.Iterations, size)
	case "argon2i":
		return argon2.Key(passphrase, k.Salt, uint32(k.Time), uint32(k.Memory), uint8(k.CPUs), uint32(size)), nil
	case "argon2id":
		return argon2.IDKey(passphrase, k.Salt, uint32(k.Time), uint32(k.Memory), uint8(k.CPUs), uint32(size)), nil
	}
	return nil, fmt.Errorf("unsupported kdf %q", k.Type)
}

func pbkdf2Key(hashName string, password, salt []byte, iter, size int) ([]byte, error) {
	hf, err := hashFunc(hashName)
	if err != nil {
		return nil, err
	}
	return pbkdf2.Key(hf, string(password), salt, iter, size)
}

// cryptArea encrypts or decrypts a keyslot area in place: cipher
// aes-xts-plain64 over 512-byte sectors numbered from the area's start.
func cryptArea(cipher string, key, b []byte, encrypt bool) error {
	if cipher != "aes-xts-plain64" {
		return fmt.Errorf("unsupported keyslot encryption %q", cipher)
	}
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		return fmt.Errorf("keyslot encryption: %w", err)
	}
	for i := 0; i < len(b); i += keyslotSector {
		s := b[i : i+keyslotSector]
		if encrypt {
			c.Encrypt(s, s, uint64(i/keyslotSector))
		} else {
			c.Decrypt(s, s, uint64(i/keyslotSector))
		}
	}
	return nil
}

// afSplit spreads key over stripes blocks (the LUKS anti-forensic
// splitter): stripes-1 random blocks, each folded into a running block
// that is diffused by hashing, and a last block that is the key XOR that
// running block. Losing any part of the result loses the key.
func afSplit(key []byte, stripes int, hf func() hash.Hash, rand io.Reader) ([]byte, error) {
	n := len(key)
	out := make([]byte, n*stripes)
	if _, err := io.ReadFull(rand, out[:n*(stripes-1)]); err != nil {
		return nil, fmt.Errorf("reading random stripes: %w", err)
	}
	acc := make([]byte, n)
	d := newDiffuser(hf)
	for i := range stripes - 1 {
		subtle.XORBytes(acc, acc, out[i*n:(i+1)*n])
		d.diffuse(acc)
	}
	subtle.XORBytes(out[(stripes-1)*n:], acc, key)
	return out, nil
}

// afMerge undoes afSplit.
func afMerge(split []byte, n, stripes int, hf func() hash.Hash) []byte {
	acc := make([]byte, n)
	d := newDiffuser(hf)
	for i := range stripes - 1 {
		subtle.XORBytes(acc, acc, split[i*n:(i+1)*n])
		d.diffuse(acc)
	}
	subtle.XORBytes(acc, acc, split[(stripes-1)*n:])
	return acc
}

// diffuser is the AF hash and a buffer for its sums.
type diffuser struct {
	h   hash.Hash
	sum []byte
	iv  []byte
}

func newDiffuser(hf func() hash.Hash) *diffuser {
	h := hf()
	return &diffuser{h: h, sum: make([]byte, 0, h.Size()), iv: make([]byte, 4)}
}

// diffuse replaces each digest-sized piece of b (the last may be shorter)
// with the hash of its big-endian 32-bit index and itself.
func (d *diffuser) diffuse(b []byte) {
	size := d.h.Size()
	for i, off := 0, 0; off < len(b); i, off = i+1, off+size {
		end := min(off+size, len(b))
		binary.BigEndian.PutUint32(d.iv, uint32(i))
		d.h.Reset()
		d.h.Write(d.iv)
		d.h.Write(b[off:end])
		d.sum = d.h.Sum(d.sum[:0])
		copy(b[off:end], d.sum)
	}
}
