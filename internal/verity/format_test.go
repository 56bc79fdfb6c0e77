package verity

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// veritysetup runs Debian's veritysetup, the oracle for the on-disk format.
func veritysetup(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("veritysetup"); err != nil {
		t.Fatalf("veritysetup is required (apt-get install cryptsetup-bin): %v", err)
	}
	out, err := exec.CommandContext(t.Context(), "veritysetup", args...).CombinedOutput()
	return string(out), err
}

func randomData(t *testing.T, dir string, size int64, seed uint64) string {
	t.Helper()
	b := randomBytes(size, seed)
	p := filepath.Join(dir, "data")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func formatFile(t *testing.T, dataPath, hashPath string, hashOffset int64, salt []byte) Params {
	t.Helper()
	data, err := os.Open(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	st, err := data.Stat()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := os.OpenFile(hashPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer hash.Close()
	size := st.Size()
	if hashPath == dataPath {
		size = hashOffset
	}
	p, err := Format(t.Context(), data, size, hash, hashOffset, salt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var sizes = []int64{1, 2, 127, 128, 129, 128*128 + 1, 1000}

func TestFormatSeparateMatchesVeritysetup(t *testing.T) {
	for _, blocks := range sizes {
		t.Run(fmt.Sprint(blocks), func(t *testing.T) {
			dir := t.TempDir()
			data := randomData(t, dir, blocks*BlockSize, uint64(blocks))
			salt := SaltFrom([]byte(fmt.Sprint(blocks)))
			p := formatFile(t, data, filepath.Join(dir, "ours"), 0, salt)
			if p.DataBlocks != uint64(blocks) || p.HashStart != 1 || !bytes.Equal(p.Salt, salt) {
				t.Fatalf("params %+v", p)
			}
			root := hex.EncodeToString(p.RootHash)
			if out, err := veritysetup(t, "verify", data, filepath.Join(dir, "ours"), root); err != nil {
				t.Fatalf("veritysetup verify: %v\n%s", err, out)
			}

			theirs := filepath.Join(dir, "theirs")
			out, err := veritysetup(t, "format", data, theirs, "--salt="+hex.EncodeToString(salt), "--uuid="+UUID(salt))
			if err != nil {
				t.Fatalf("veritysetup format: %v\n%s", err, out)
			}
			if got := rootFromOutput(t, out); got != root {
				t.Fatalf("root hash %s, veritysetup says %s", root, got)
			}
			ours, _ := os.ReadFile(filepath.Join(dir, "ours"))
			want, _ := os.ReadFile(theirs)
			if !bytes.Equal(ours, want) {
				t.Fatalf("hash area differs from veritysetup's (%d vs %d bytes)", len(ours), len(want))
			}
			if int64(len(ours)) != HashSize(blocks*BlockSize) {
				t.Fatalf("HashSize %d, wrote %d", HashSize(blocks*BlockSize), len(ours))
			}
		})
	}
}

func rootFromOutput(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`Root hash:\s+([0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no root hash in veritysetup output:\n%s", out)
	}
	return m[1]
}

func TestFormatOneFile(t *testing.T) {
	for _, blocks := range []int64{1, 2, 128, 129, 3 << 20 / BlockSize} {
		t.Run(fmt.Sprint(blocks), func(t *testing.T) {
			dir := t.TempDir()
			data := randomData(t, dir, blocks*BlockSize, uint64(blocks)+7)
			f, err := os.Open(data)
			if err != nil {
				t.Fatal(err)
			}
			salt, err := ContentSalt(t.Context(), f, blocks*BlockSize)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			off := blocks * BlockSize
			p := formatFile(t, data, data, off, salt)
			if p.HashStart != uint64(blocks)+1 {
				t.Fatalf("HashStart %d, want %d", p.HashStart, blocks+1)
			}
			st, _ := os.Stat(data)
			if st.Size() != off+HashSize(off) {
				t.Fatalf("file size %d, want %d", st.Size(), off+HashSize(off))
			}
			root := hex.EncodeToString(p.RootHash)
			verify := func() error {
				out, err := veritysetup(t, "verify", "--hash-offset="+fmt.Sprint(off), data, data, root)
				if err != nil {
					return fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
				}
				return nil
			}
			if err := verify(); err != nil {
				t.Fatalf("veritysetup verify: %v", err)
			}
			testfile.FlipByte(t, data, (blocks-1)*BlockSize+123)
			if err := verify(); err == nil {
				t.Fatal("veritysetup verify passed after a data byte was flipped")
			}
		})
	}
}

func TestContentSaltDeterministic(t *testing.T) {
	a := bytes.Repeat([]byte{1}, 5<<20)
	s1, err := ContentSalt(t.Context(), bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := ContentSalt(t.Context(), bytes.NewReader(a), int64(len(a)))
	if len(s1) != 32 || !bytes.Equal(s1, s2) {
		t.Fatalf("salts %x, %x", s1, s2)
	}
	a[len(a)-1] = 2
	s3, _ := ContentSalt(t.Context(), bytes.NewReader(a), int64(len(a)))
	if bytes.Equal(s1, s3) {
		t.Fatal("salt did not change with the content")
	}
}

func TestFormatRejectsBadInput(t *testing.T) {
	data := bytes.NewReader(make([]byte, 2*BlockSize))
	hash, _ := os.Create(filepath.Join(t.TempDir(), "h"))
	defer hash.Close()
	for _, c := range []struct {
		size, off int64
		salt      []byte
	}{
		{100, 0, nil},
		{0, 0, nil},
		{BlockSize, 10, nil},
		{BlockSize, 0, make([]byte, 257)},
		{3 * BlockSize, 0, nil}, // short data
	} {
		if _, err := Format(t.Context(), data, c.size, hash, c.off, c.salt); err == nil {
			t.Errorf("Format(size %d, offset %d, salt %d bytes) succeeded", c.size, c.off, len(c.salt))
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Format(ctx, data, BlockSize, hash, 0, nil); err == nil {
		t.Error("Format with a cancelled context succeeded")
	}
}

func BenchmarkFormat(b *testing.B) {
	const size = 64 << 20
	dir := b.TempDir()
	data := randomBytes(size, 1)
	p := filepath.Join(dir, "img")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	salt := SaltFrom([]byte("bench"))
	b.SetBytes(size)
	for b.Loop() {
		if _, err := Format(b.Context(), f, size, f, size, salt); err != nil {
			b.Fatal(err)
		}
	}
}

// randomBytes returns size (a multiple of 8) pseudo-random bytes.
func randomBytes(size int64, seed uint64) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 42))
	for i := int64(0); i < size; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// writerOnly hides an os.File's ReadAt, so Format keeps the tree in memory.
type writerOnly struct{ f *os.File }

func (w writerOnly) WriteAt(p []byte, off int64) (int, error) { return w.f.WriteAt(p, off) }

// TestFormatThroughFileMatchesMemory: a tree written level by level
// through a readable hash file (over stale bytes) is the tree built in
// memory, byte for byte, with the same root.
func TestFormatThroughFileMatchesMemory(t *testing.T) {
	dir := t.TempDir()
	blocks := int64(128*128 + 129) // three levels, each last block partial
	data := bytes.NewReader(randomBytes(blocks*BlockSize, 7))
	salt := []byte("through a file")
	var trees [][]byte
	var roots []string
	for i, name := range []string{"file", "memory"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte{0xa5}, int(HashSize(blocks*BlockSize)+3*BlockSize)), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var hash io.WriterAt = f
		if i == 1 {
			hash = writerOnly{f}
		}
		params, err := Format(t.Context(), data, blocks*BlockSize, hash, BlockSize, salt)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, b)
		roots = append(roots, hex.EncodeToString(params.RootHash))
	}
	if roots[0] != roots[1] {
		t.Errorf("root hash through a file %s, in memory %s", roots[0], roots[1])
	}
	if !bytes.Equal(trees[0], trees[1]) {
		t.Error("the tree written through a file differs from the one built in memory")
	}
}
