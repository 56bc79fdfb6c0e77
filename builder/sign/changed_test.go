package sign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestChangedContentSaysSo: an artifact changed after signing is reported
// as such, with both digests, whether SHA256SUMS is intact or gone.
func TestChangedContentSaysSo(t *testing.T) {
	dir, _, pub := signedDir(t, ECDSAP256)
	name := artifactNamesSorted()[0]
	path := filepath.Join(dir, name)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	changed := append(append([]byte{}, orig...), 'x')
	if err := os.WriteFile(path, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	want := "content changed (sha256 " + sum(changed) + ", signed " + sum(orig) + ")"
	check := func(what string) {
		results, _ := Verify(context.Background(), dir, pub)
		for _, r := range results {
			var ce *ChangedError
			if r.Name == name && (!errors.As(r.Err, &ce) || r.Err.Error() != want) {
				t.Errorf("%s: %s: %v, want %s", what, name, r.Err, want)
			}
		}
	}
	check("with SHA256SUMS")
	if err := os.Remove(filepath.Join(dir, SumsFile)); err != nil {
		t.Fatal(err)
	}
	check("without SHA256SUMS (the bundle's signed digest)")
}

// TestUnsigned lists the files no signature covers.
func TestUnsigned(t *testing.T) {
	dir, _, _ := signedDir(t, ECDSAP256)
	for _, n := range []string{"sbom.spdx.json", "extra.bin"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".bulkhead-build-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Unsigned(dir)
	if err != nil || !slices.Equal(got, []string{"extra.bin", "sbom.spdx.json"}) {
		t.Errorf("Unsigned = %v, %v", got, err)
	}
}
