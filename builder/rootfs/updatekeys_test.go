package rootfs

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/update"
)

// TestUpdateKeys: the update section's keys land at update.KeysPath, over
// a files entry that tries to replace them; a file that is not a public
// key fails the build at the key's position.
func TestUpdateKeys(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	key := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("k.pub", "\n"+string(key))
	write("bad.pub", "not a key")
	write("src.txt", "x")
	yaml := testSpec + "update:\n  keys: [k.pub]\n"
	yaml = strings.Replace(yaml, "files:\n", "files:\n  - path: "+update.KeysPath+"\n    contents: forged\n", 1)
	spec, err := config.Load(write("host.yml", yaml))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Assemble(context.Background(), spec, testImages(t))
	if err != nil {
		t.Fatal(err)
	}
	e := h.Tree.Get(update.KeysPath)
	if e == nil || string(e.Content.Data) != string(key) || e.Mode != 0o644 {
		t.Fatalf("keys entry %+v", e)
	}
	spec.Update.Keys = []string{"bad.pub"}
	if _, err := Assemble(context.Background(), spec, testImages(t)); err == nil || !strings.Contains(err.Error(), "host.yml:") {
		t.Fatalf("bad key: %v", err)
	}
}
