package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/secureboot"
)

func ukiSpec(t *testing.T, boot string) *config.Spec {
	t.Helper()
	p := filepath.Join(t.TempDir(), "h.yml")
	text := "kernel:\n  image: bulkhead/kernel:6.1-cloud\ninit:\n  - bulkhead/init:dev\n" + boot
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestSecureBootFlags: signing needs boot.uki and both halves of the key;
// a key that does not match its certificate is refused; enroll needs a key;
// a UKI spec builds no update bundle (yet), and says where.
func TestSecureBootFlags(t *testing.T) {
	ks, err := secureboot.GenerateKeys("t", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := secureboot.GenerateKeys("o", time.Unix(1700000000, 0))
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	key, cert, otherCert := write("db.key", ks.DB.KeyPEM()), write("db.crt", ks.DB.CertPEM()), write("o.crt", other.DB.CertPEM())
	uki, plain := ukiSpec(t, "boot:\n  uki: true\n  version: \"1\"\n"), ukiSpec(t, "")
	for _, tc := range []struct {
		name  string
		f     secureBootFlags
		spec  *config.Spec
		usage bool
	}{
		{"key without cert", secureBootFlags{key: key}, uki, true},
		{"no boot.uki", secureBootFlags{key: key, cert: cert}, plain, true},
		{"enroll without key", secureBootFlags{enroll: dir}, uki, true},
		{"cert of another key", secureBootFlags{key: key, cert: otherCert}, uki, false},
	} {
		err := tc.f.check(tc.spec)
		if err == nil || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("%s: %v (usage error wanted: %v)", tc.name, err, tc.usage)
		}
	}
	f := secureBootFlags{key: key, cert: cert}
	if err := f.check(uki); err != nil || f.signer == nil {
		t.Fatalf("good flags: %v", err)
	}
	err = checkUpdate([]string{"update"}, uki, buildFlags{signKey: "x"}, 0)
	if err == nil || !strings.Contains(err.Error(), "boot.uki") || !strings.Contains(err.Error(), "h.yml:") {
		t.Fatalf("update of a UKI spec: %v", err)
	}
}
