package rootfs

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/update"
)

// TestUpdateCredentialsPath: update.credentials bakes only its path into
// the root, at update.CredentialsPathFile.
func TestUpdateCredentialsPath(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	if err := os.WriteFile(filepath.Join(dir, "k.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "host.yml")
	yaml := testSpec + "update:\n  keys: [k.pub]\n  credentials: /var/lib/bulkhead/pull.json\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Assemble(context.Background(), spec, testImages(t))
	if err != nil {
		t.Fatal(err)
	}
	if e := h.Tree.Get(update.CredentialsPathFile); e == nil || string(e.Content.Data) != "/var/lib/bulkhead/pull.json\n" {
		t.Fatalf("credentials path entry %+v", e)
	}
}
