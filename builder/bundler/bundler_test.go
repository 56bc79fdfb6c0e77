package bundler

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
	"github.com/bulkhead-dev/bulkhead/internal/update"
)

// fixedKey is an Ed25519 key from a fixed seed: its signatures, and so
// the bundles it signs, never change.
func fixedKey(t *testing.T) *sign.PrivateKey {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func fixedInput(t *testing.T) Input {
	t.Helper()
	tr := rootfs.New()
	data := []byte(strings.Repeat("bulkhead update bundle\n", 10000))
	tr.Put(&rootfs.Entry{Path: "etc/motd", Kind: rootfs.KindFile, Mode: 0o644, Size: int64(len(data)), Content: rootfs.Content{Data: data}})
	root := filepath.Join(t.TempDir(), "root.img")
	f, err := os.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := rootimg.Write(t.Context(), tr, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return Input{
		Host: "golden", Version: "1.0.0", Arch: "amd64", From: "0.9.0",
		Created: time.Unix(0, 0), Expires: time.Unix(0, 0).Add(720 * time.Hour),
		Root: root, Verity: img.Verity, Kernel: []byte("kernel"), Initrd: []byte("initrd"),
		Options: "console=ttyS0 " + img.Verity.Cmdline(), Tries: 3,
	}
}

// goldenBundle is the SHA-256 of the fixed bundle. A change here changes
// every bundle: make it on purpose.
const goldenBundle = "f73adbc00ca8a73df5ea478a0aab2f5e6a7144b95116699b0b7503a00eaf7b08"

func TestWriteReproducible(t *testing.T) {
	in, key := fixedInput(t), fixedKey(t)
	dir := t.TempDir()
	var sums []string
	for _, name := range []string{"a.bundle", "b.bundle"} {
		m, err := Write(t.Context(), filepath.Join(dir, name), in, key)
		if err != nil {
			t.Fatal(err)
		}
		if m.Version != "1.0.0" || m.From != "0.9.0" || m.Payloads[0].Encoding != update.EncodingZstd {
			t.Fatalf("manifest %+v", m)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		sums = append(sums, hex.EncodeToString(s[:]))
	}
	if sums[0] != sums[1] {
		t.Fatal("two bundles of the same input differ")
	}
	if sums[0] != goldenBundle {
		t.Errorf("bundle sha256 %s, golden %s", sums[0], goldenBundle)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("stray files beside the bundles: %v", entries)
	}
}

func TestWriteRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	for name, edit := range map[string]func(*Input){
		"no expiry":           func(in *Input) { in.Expires = time.Time{} },
		"options lack verity": func(in *Input) { in.Options = "console=ttyS0" },
		"bad version":         func(in *Input) { in.Version = "1/2" },
		"no kernel":           func(in *Input) { in.Kernel = nil },
		"no root":             func(in *Input) { in.Root = filepath.Join(dir, "missing") },
	} {
		in := fixedInput(t)
		edit(&in)
		p := filepath.Join(dir, "x.bundle")
		if _, err := Write(t.Context(), p, in, fixedKey(t)); err == nil {
			t.Errorf("%s: written", name)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%s: left %v", name, entries)
		}
	}
	if _, err := Write(t.Context(), filepath.Join(dir, "x.bundle"), fixedInput(t), nil); err == nil {
		t.Error("written without a key")
	}
}
