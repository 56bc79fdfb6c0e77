package rootfs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
)

// TestAPICA: the operator CA certificate and the listen address land in
// the root over a files entry that tries to replace them; a CA key or a
// client certificate in the file fails the build at the ca's position.
func TestAPICA(t *testing.T) {
	dir := t.TempDir()
	caCert, caKey, err := hostapi.NewCA("ops", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	client, _, err := hostapi.IssueClient(caCert, caKey, "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", caCert)
	write("with-key.pem", append(append([]byte{}, caCert...), caKey...))
	write("client.pem", client)
	write("src.txt", []byte("x"))
	caPath := strings.TrimPrefix(hostapi.CAPath, "/")
	yaml := testSpec + "api:\n  ca: ca.pem\n  listen: \":8443\"\n"
	yaml = strings.Replace(yaml, "files:\n", "files:\n  - path: "+caPath+"\n    contents: forged\n", 1)
	write("host.yml", []byte(yaml))
	spec, err := config.Load(filepath.Join(dir, "host.yml"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Assemble(context.Background(), spec, testImages(t))
	if err != nil {
		t.Fatal(err)
	}
	if e := h.Tree.Get(caPath); e == nil || string(e.Content.Data) != string(caCert) || e.Mode != 0o644 {
		t.Fatalf("ca entry %+v", e)
	}
	if e := h.Tree.Get(strings.TrimPrefix(hostapi.ListenPath, "/")); e == nil || string(e.Content.Data) != ":8443\n" {
		t.Fatalf("listen entry %+v", e)
	}
	for file, want := range map[string]string{"with-key.pem": "PRIVATE KEY block", "client.pem": "not a CA certificate", "nope.pem": "no such file"} {
		spec.API.CA = file
		_, err := Assemble(context.Background(), spec, testImages(t))
		if err == nil || !strings.Contains(err.Error(), "host.yml:") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q at the spec position", file, err, want)
		}
	}
}
