package verity

import (
	"errors"
	"fmt"
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
					flipByte(t, data, off-1)
				case "tree":
					if blocks == 1 {
						t.Skip("a one-block device has no tree")
					}
					flipByte(t, data, off+BlockSize+5)
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
