// Package stamp lets a build skip hashing a store file it verified
// before, when it can prove without SHA-256 that the file has not changed
// since: a stamp records the file's identity and state as the kernel
// keeps them (device, inode, size, change and modification times) and a
// checksum of its bytes (CRC-32C, at memory speed), under an HMAC whose key is this
// user's, outside the store.
//
// What each part stops:
//   - a write, a rename over the file, a copy or a restore of the store
//     (say from a shared CI cache) changes the inode or the change time,
//     which no unprivileged process can set back: the stamp no longer
//     holds and the file is hashed in full again;
//   - a bit flipped on the disk under an unchanged inode fails the
//     checksum, which is read over the whole file every time;
//   - a stamp written by anyone without the key fails the HMAC, so write
//     access to the store is not enough to vouch for a file.
//
// A stamp is recorded only for a file whose change time is older than
// the verification by a margin, so that a change in the same clock tick
// as the verification cannot keep the recorded time; and only on local
// file systems whose times the kernel keeps (not FUSE or network ones).
// A process running as the same user can read the key: it is trusted as
// it is for the user's other files.
package stamp

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	keySize = 32
	// settle is how much older than its verification a file's change
	// time must be for the file to be stamped.
	settle = 2 * time.Second
	// magic starts every stamp and the HMAC's input.
	magic = "bulkhead stamp 2\x00"
	// stampSize is a stamp file's size: magic, eight fields, the HMAC.
	stampSize = len(magic) + 8*8 + sha256.Size
)

// A Book keeps stamps in a directory. A nil *Book holds no stamps and
// records none: every file is verified in full.
type Book struct {
	dir string
	key []byte
	now func() time.Time
}

// Option configures Open.
type Option func(*Book)

// WithClock sets the clock the margin after a file's change time is
// measured with (tests).
func WithClock(now func() time.Time) Option { return func(b *Book) { b.now = now } }

// KeyPath is where a user's stamp key is kept: bulkhead/stamp.key in the
// user's configuration directory ($XDG_CONFIG_HOME, else ~/.config).
func KeyPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "bulkhead", "stamp.key"), nil
}

// Open returns the book of stamps in dir under the key at keyPath,
// making the key (random, mode 0600) when there is none. It returns nil,
// no stamps, when the key is not a private file of this user that can be
// read or made, or dir cannot be made: that costs time, never safety.
func Open(dir, keyPath string, opts ...Option) *Book {
	key, err := loadKey(keyPath)
	if err != nil || os.MkdirAll(dir, 0o700) != nil {
		return nil
	}
	b := &Book{dir: dir, key: key, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	return b
}

// loadKey reads the key at path, making it first when it is missing.
func loadKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".stamp.key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	key = make([]byte, keySize)
	rand.Read(key)
	_, err = tmp.Write(key)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	// A link, not a rename: another process's key made meanwhile wins,
	// and every process ends with the same key.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return readKey(path)
}

// readKey reads the key at path, which must be a regular file of keySize
// bytes that only this user owns and can read.
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != keySize || int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return nil, fmt.Errorf("stamp key %s is not a private %d-byte file of this user", path, keySize)
	}
	key := make([]byte, keySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, err
	}
	return key, nil
}

// state is what a stamp records of a file.
type state struct {
	dev, ino, size      uint64
	ctimeSec, ctimeNsec int64
	mtimeSec, mtimeNsec int64
	sum                 uint32 // CRC-32C of the bytes
}

// withSum is s with the checksum sum.
func (s state) withSum(sum uint32) state {
	s.sum = sum
	return s
}

// fields is s in the order a stamp holds them.
func (s state) fields() [8]uint64 {
	return [8]uint64{s.dev, s.ino, s.size, uint64(s.ctimeSec), uint64(s.ctimeNsec), uint64(s.mtimeSec), uint64(s.mtimeNsec), uint64(s.sum)}
}

// statOf is f's state without its checksum, or an error when f is not a
// regular file on a file system whose times the kernel keeps.
func statOf(f *os.File) (state, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return state{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return state{}, errors.New("not a regular file")
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil {
		return state{}, err
	}
	if !localFS(int64(fs.Type)) {
		return state{}, fmt.Errorf("file system %#x keeps no times stamps can rely on", fs.Type)
	}
	return state{
		dev: st.Dev, ino: st.Ino, size: uint64(st.Size),
		ctimeSec: st.Ctim.Sec, ctimeNsec: st.Ctim.Nsec, mtimeSec: st.Mtim.Sec, mtimeNsec: st.Mtim.Nsec,
	}, nil
}

// localFS reports whether a file system type (statfs f_type) is a local
// one whose inode times only the kernel sets.
func localFS(typ int64) bool {
	switch typ {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC,
		unix.F2FS_SUPER_MAGIC, unix.OVERLAYFS_SUPER_MAGIC:
		return true
	}
	return false
}

// castagnoli is CRC-32C's table: the CPU computes it (SSE 4.2), at
// memory speed.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bufs are the read buffers of checksum.
var bufs = sync.Pool{New: func() any { return new([1 << 20]byte) }}

// checksum is the CRC-32C of f's size bytes, read with ReadAt (f's offset
// is left alone).
func checksum(f *os.File, size uint64) (uint32, error) {
	buf := bufs.Get().(*[1 << 20]byte)
	defer bufs.Put(buf)
	h := crc32.New(castagnoli)
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, int64(size)), buf[:]); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}

// Check returns nil at once when f holds its stamp for subject (see
// holds). Otherwise it runs verify, which reads f whole and says whether
// it is right, and stamps f when it is (see record). A nil Book always
// runs verify.
func (b *Book) Check(f *os.File, subject string, verify func() error) error {
	if b.holds(f, subject) {
		return nil
	}
	p := b.begin(f)
	if err := verify(); err != nil {
		return err
	}
	b.record(p, subject)
	return nil
}

// holds reports whether f is the file stamped for subject: same device
// and inode, unchanged size and times, the recorded checksum over all
// its bytes now, and a stamp made with this user's key. It reads f with
// ReadAt, leaving its offset alone.
func (b *Book) holds(f *os.File, subject string) bool {
	if b == nil {
		return false
	}
	st, err := statOf(f)
	if err != nil {
		return false
	}
	raw, err := readStamp(b.path(subject))
	if err != nil {
		return false
	}
	rec, ok := b.open(raw, subject)
	if !ok || rec.withSum(0) != st {
		return false
	}
	sum, err := checksum(f, st.size)
	if err != nil || sum != rec.sum {
		return false
	}
	// Changed while being read: the bytes summed may not be the ones
	// stamped.
	after, err := statOf(f)
	return err == nil && after == st
}

// pending is a verification under way, begun with begin.
type pending struct {
	f     *os.File
	st    state
	start time.Time
	err   error
}

// begin notes f's state before a verification reads it, for record.
func (b *Book) begin(f *os.File) pending {
	if b == nil {
		return pending{err: errors.New("no stamps")}
	}
	st, err := statOf(f)
	return pending{f: f, st: st, start: b.now(), err: err}
}

// record stamps the file of p for subject once the verification begun
// with p has read it whole and found it right. It does nothing for a
// file changed since begin, or changed too shortly before it (within
// the settle margin). A stamp that cannot be written only costs the
// next build a verification.
func (b *Book) record(p pending, subject string) {
	if b == nil || p.err != nil || p.start.Sub(time.Unix(p.st.ctimeSec, p.st.ctimeNsec)) < settle {
		return
	}
	sum, err := checksum(p.f, p.st.size)
	if err != nil {
		return
	}
	if after, err := statOf(p.f); err != nil || after != p.st {
		return
	}
	b.write(subject, b.seal(p.st.withSum(sum), subject))
}

// Forget removes subject's stamp.
func (b *Book) Forget(subject string) {
	if b != nil {
		os.Remove(b.path(subject))
	}
}

func (b *Book) path(subject string) string {
	h := sha256.Sum256([]byte(subject))
	return filepath.Join(b.dir, hex.EncodeToString(h[:]))
}

// seal is the stamp of st for subject: magic, the fields, and the HMAC
// of the magic, the subject and the fields.
func (b *Book) seal(st state, subject string) []byte {
	out := []byte(magic)
	for _, v := range st.fields() {
		out = binary.LittleEndian.AppendUint64(out, v)
	}
	return append(out, b.mac(out, subject)...)
}

func (b *Book) mac(body []byte, subject string) []byte {
	m := hmac.New(sha256.New, b.key)
	m.Write(body[:len(magic)])
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(subject)))
	m.Write(n[:])
	m.Write([]byte(subject))
	m.Write(body[len(magic):])
	return m.Sum(nil)
}

// open checks a stamp's form and HMAC and returns what it records.
func (b *Book) open(raw []byte, subject string) (state, bool) {
	if len(raw) != stampSize || !bytes.HasPrefix(raw, []byte(magic)) {
		return state{}, false
	}
	body, sig := raw[:stampSize-sha256.Size], raw[stampSize-sha256.Size:]
	if !hmac.Equal(sig, b.mac(body, subject)) {
		return state{}, false
	}
	var v [8]uint64
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(body[len(magic)+8*i:])
	}
	return state{
		dev: v[0], ino: v[1], size: v[2], ctimeSec: int64(v[3]), ctimeNsec: int64(v[4]),
		mtimeSec: int64(v[5]), mtimeNsec: int64(v[6]), sum: uint32(v[7]),
	}, true
}

// readStamp reads a stamp file, refusing anything larger than a stamp.
func readStamp(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, int64(stampSize)+1))
	if err != nil {
		return nil, err
	}
	if len(raw) != stampSize {
		return nil, errors.New("not a stamp")
	}
	return raw, nil
}

// write puts a stamp in place atomically.
func (b *Book) write(subject string, raw []byte) {
	tmp, err := os.CreateTemp(b.dir, ".tmp-*")
	if err != nil {
		return
	}
	_, err = tmp.Write(raw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil || os.Rename(tmp.Name(), b.path(subject)) != nil {
		os.Remove(tmp.Name())
	}
}
