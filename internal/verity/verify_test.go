package verity

import (
	"errors"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
	"os"
	"testing"
)

// TestVerifyAgreesWithVeritysetup formats one-file devices and checks that
// Verify accepts them as veritysetup does, and refuses them, as
// veritysetup does, once a data byte or a tree byte is flipped.
func TestVerifyAgreesWithVeritysetup(t *testing.T) {
	for _, blocks := range []int64{1, 2, 129} {
		for _, flip := range []string{"none", "data", "tree"} {
			t.Run(fmt.Sprint(blocks, flip), func(t *testing.T) {
				dir := t.TempDir()
				data := randomData(t, dir, blocks*BlockSize, uint64(blocks))
				off := blocks * BlockSize
				p := formatFile(t, data, data, off, SaltFrom([]byte("verify")))
				switch flip {
				case "data":
					testfile.FlipByte(t, data, off-1)
				case "tree":
					if blocks == 1 {
						t.Skip("a one-block device has no tree")
					}
					testfile.FlipByte(t, data, off+BlockSize+5)
				}
				_, oracle := veritysetup(t, "verify", fmt.Sprintf("--hash-offset=%d", off), data, data, fmt.Sprintf("%x", p.RootHash))
				err := verifyFile(t, data, p)
				if (oracle == nil) != (err == nil) {
					t.Fatalf("Verify: %v; veritysetup: %v", err, oracle)
				}
				if err != nil && !errors.Is(err, ErrMismatch) {
					t.Fatalf("Verify: %v, want ErrMismatch", err)
				}
			})
		}
	}
}

func TestVerifyRefusesOtherParams(t *testing.T) {
	dir := t.TempDir()
	data := randomData(t, dir, 4*BlockSize, 1)
	p := formatFile(t, data, data, 4*BlockSize, SaltFrom([]byte("x")))
	other := p
	other.Salt = SaltFrom([]byte("y"))
	if err := verifyFile(t, data, other); !errors.Is(err, ErrMismatch) {
		t.Fatalf("other salt: %v", err)
	}
	other = p
	other.RootHash = make([]byte, 32)
	if err := verifyFile(t, data, other); !errors.Is(err, ErrMismatch) {
		t.Fatalf("other root hash: %v", err)
	}
	other = p
	other.HashStart = 2
	if err := verifyFile(t, data, other); err == nil {
		t.Fatal("overlapping hash area accepted")
	}
}

func verifyFile(t *testing.T, path string, p Params) error {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(t.Context(), f, p)
}

// TestHolds: a device holds the parameters it was formatted with (trees
// of zero, one and two levels), and not another root hash, another salt,
// another device's parameters, or its own once the tree's top changed.
func TestHolds(t *testing.T) {
	holds := func(path string, p Params) bool {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ok, err := Holds(f, p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, blocks := range []int64{1, 2, 129} {
		t.Run(fmt.Sprint(blocks), func(t *testing.T) {
			a := randomData(t, t.TempDir(), blocks*BlockSize, uint64(blocks))
			b := randomData(t, t.TempDir(), blocks*BlockSize, uint64(blocks)+100)
			off := blocks * BlockSize
			pa := formatFile(t, a, a, off, SaltFrom([]byte("slot")))
			pb := formatFile(t, b, b, off, SaltFrom([]byte("slot")))
			if !holds(a, pa) || !holds(b, pb) {
				t.Fatal("a device does not hold its own parameters")
			}
			if holds(a, pb) || holds(b, pa) {
				t.Fatal("a device holds the other's parameters")
			}
			other := pa
			other.Salt = SaltFrom([]byte("other"))
			if holds(a, other) {
				t.Fatal("holds another salt")
			}
			other = pa
			other.RootHash = make([]byte, 32)
			if holds(a, other) {
				t.Fatal("holds another root hash")
			}
			top := off + BlockSize // the tree's top level
			if blocks == 1 {
				top = 0 // no tree: the data block is the root
			}
			testfile.FlipByte(t, a, top+7)
			if holds(a, pa) {
				t.Fatal("holds its parameters with the tree's top changed")
			}
		})
	}
}
