package build

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/kernelcheck"
	"github.com/bulkhead-dev/bulkhead/builder/secureboot"
)

// TestSecureBootChecks: signing and PCR policies need boot.uki; a key
// that does not match its certificate is refused; enrolling needs a key;
// good options load the signers, and a UKI spec resolves the stub.
func TestSecureBootChecks(t *testing.T) {
	ks, err := secureboot.GenerateKeys("t", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	other, err := secureboot.GenerateKeys("o", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, cert, otherCert := write("db.key", ks.DB.KeyPEM()), write("db.crt", ks.DB.CertPEM()), write("o.crt", other.DB.CertPEM())
	base := "kernel:\n  image: bulkhead/kernel:6.1-cloud\ninit:\n  - bulkhead/init:dev\n"
	uki := write("uki.yml", []byte(base+"boot:\n  uki: true\n  version: \"1\"\nupdate:\n  expires: 24h\n"))
	plain := write("plain.yml", []byte(base))
	sealed := write("sealed.yml", []byte(base+"boot:\n  uki: true\ndisk:\n  encrypt_data: tpm\n"))
	for _, tc := range []struct {
		name, spec, want string
		opts             []Option
	}{
		{"no boot.uki", plain, "boot.uki: true", []Option{WithSecureBoot(key, cert)}},
		{"pcr key without boot.uki", plain, "boot.uki: true", []Option{WithPCRKey(key)}},
		{"enroll without key", uki, "needs a Secure Boot key", []Option{WithSecureBootEnroll(dir)}},
		{"cert of another key", uki, "Secure Boot key " + key, []Option{WithSecureBoot(key, otherCert)}},
		{"encrypt_data without a PCR key", sealed, sealed + ":8:3: disk: encrypt_data: tpm seals /var to the PCR policy the UKI carries signed: build with --pcr-key", nil},
	} {
		b, err := New([]string{tc.spec}, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		l, err := b.Load()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Check(l); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if _, err := New([]string{uki}, WithSecureBoot(key, "")); err == nil {
		t.Error("a key without its certificate was taken")
	}
	b, err := New([]string{uki}, WithSecureBoot(key, cert), WithPCRKey(key), WithSecureBootEnroll(dir), WithFormats("raw-efi"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(l); err != nil || b.o.sbSigner == nil || b.o.pcrSigner == nil {
		t.Fatalf("good options: %v", err)
	}
	if refs := RefStrings(BuildRefs(l.Spec, []string{"raw-efi"})); !slices.Contains(refs, DefaultStub) {
		t.Errorf("a raw-efi UKI build resolves %v, without the stub", refs)
	}
}

// TestExpiredBundleWarns: a bundle that would be born expired (a duration
// counted from an unset SOURCE_DATE_EPOCH) is built with a warning at
// update.expires; one that expires after the clock is not.
func TestExpiredBundleWarns(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "h.yml")
	if err := os.WriteFile(spec, []byte("kernel:\n  image: k\ninit: [i]\nboot:\n  version: \"1\"\nupdate:\n  expires: 720h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		epoch int64
		warn  bool
	}{{0, true}, {time.Now().Unix(), false}} {
		var warnings []Event
		b, err := New([]string{spec}, WithEpoch(tc.epoch), WithProgress(ProgressFunc(func(e Event) {
			if e.Warning {
				warnings = append(warnings, e)
			}
		})))
		if err != nil {
			t.Fatal(err)
		}
		l, err := b.Load()
		if err != nil {
			t.Fatal(err)
		}
		expires, err := b.updateExpiry(l.Spec)
		if err != nil {
			t.Fatal(err)
		}
		b.warnExpired(l.Spec, expires)
		switch {
		case tc.warn && (len(warnings) != 1 || warnings[0].Pos.Line != 7 || !strings.Contains(warnings[0].Message, "which has passed")):
			t.Errorf("epoch %d: warnings %+v, want one at line 7 saying it has passed", tc.epoch, warnings)
		case !tc.warn && len(warnings) != 0:
			t.Errorf("epoch %d: warnings %+v, want none", tc.epoch, warnings)
		}
	}
}

// TestSealedDataNeedsDMCryptAndTPM: disk.encrypt_data is refused, at its
// place in the spec, on a kernel without dm-crypt, xts or a built-in TPM
// driver.
func TestSealedDataNeedsDMCryptAndTPM(t *testing.T) {
	spec := &config.Spec{Disk: &config.Disk{EncryptData: "tpm", Pos: config.Pos{File: "h.yml", Line: 9, Col: 3}}}
	spec.Kernel.Image = "k"
	good := "CONFIG_DM_CRYPT=m\nCONFIG_CRYPTO_XTS=m\nCONFIG_TCG_TPM=y\n"
	if err := checkSealedDataKernel(spec, kconfig(t, good)); err != nil {
		t.Errorf("Debian's cloud kernel options refused: %v", err)
	}
	for cfg, want := range map[string]string{
		"CONFIG_DM_CRYPT=y\nCONFIG_CRYPTO_XTS=y\nCONFIG_TCG_TPM=m\n":            "has no CONFIG_TCG_TPM",
		"# CONFIG_DM_CRYPT is not set\nCONFIG_CRYPTO_XTS=y\nCONFIG_TCG_TPM=y\n": "has no CONFIG_DM_CRYPT",
		"CONFIG_TCG_TPM=y\n": "has no CONFIG_DM_CRYPT, CONFIG_CRYPTO_XTS",
	} {
		err := checkSealedDataKernel(spec, kconfig(t, cfg))
		if err == nil || !strings.HasPrefix(err.Error(), "h.yml:9:3: disk: encrypt_data: tpm needs dm-crypt") || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%q: %v, want an error ending %q", cfg, err, want)
		}
	}
	spec.Disk.EncryptData = ""
	if err := checkSealedDataKernel(spec, kconfig(t, "CONFIG_X=y\n")); err != nil {
		t.Errorf("a spec without encrypt_data: %v", err)
	}
}

func kconfig(t *testing.T, text string) kernelcheck.Kconfig {
	t.Helper()
	k, err := kernelcheck.ParseKconfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
