package secureboot

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/uki"
	"github.com/bulkhead-dev/bulkhead/internal/sdbootdeb"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sdbootdeb.Cleanup()
	os.Exit(code)
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func keys(t testing.TB) *Keys {
	t.Helper()
	ks, err := GenerateKeys("bulkhead test", epoch)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func write(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignVerifiedByPeers signs Debian's systemd-boot with a db key and
// has sbverify and osslsigncode, the peer tools, check it: both accept
// the signature for our certificate; sbverify refuses it for another
// certificate and refuses the image once one byte of it changes.
func TestSignVerifiedByPeers(t *testing.T) {
	ks, other := keys(t), keys(t)
	img, err := os.ReadFile(sdbootdeb.Path(t, sdbootdeb.Bootloader))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSigner(ks.DB.KeyPEM(), ks.DB.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	signed, err := s.Sign(img)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Sign(img); !bytes.Equal(again, signed) {
		t.Fatal("signing twice gives different bytes")
	}
	if err := Verify(signed, ks.DB.Cert); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := Verify(signed, other.DB.Cert); err == nil {
		t.Fatal("Verify accepted another certificate")
	}
	dir := t.TempDir()
	efi := write(t, dir, "signed.efi", signed)
	crt := write(t, dir, "db.crt", ks.DB.CertPEM())
	otherCrt := write(t, dir, "other.crt", other.DB.CertPEM())
	run := func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Logf("%s %s: %s", name, strings.Join(args, " "), out)
		}
		return err
	}
	if err := run("sbverify", "--cert", crt, efi); err != nil {
		t.Fatalf("sbverify refused our signature: %v", err)
	}
	if err := run("osslsigncode", "verify", "-in", efi, "-CAfile", crt); err != nil {
		t.Fatalf("osslsigncode refused our signature: %v", err)
	}
	if run("sbverify", "--cert", otherCrt, efi) == nil {
		t.Fatal("sbverify accepted the signature for another certificate")
	}
	tampered := bytes.Clone(signed)
	tampered[0x1000] ^= 1
	if run("sbverify", "--cert", crt, write(t, dir, "tampered.efi", tampered)) == nil {
		t.Fatal("sbverify accepted an image changed by one byte")
	}
	if Verify(tampered, ks.DB.Cert) == nil {
		t.Fatal("Verify accepted an image changed by one byte")
	}
	resigned, err := s.Sign(signed)
	if err != nil || run("sbverify", "--cert", crt, write(t, dir, "resigned.efi", resigned)) != nil {
		t.Fatalf("re-signing a signed image: %v", err)
	}
}

func TestParseSignerRefuses(t *testing.T) {
	a, b := keys(t), keys(t)
	if _, err := ParseSigner(a.DB.KeyPEM(), b.DB.CertPEM()); err == nil {
		t.Error("a key with another key's certificate accepted")
	}
	if _, err := ParseSigner([]byte("junk"), a.DB.CertPEM()); err == nil {
		t.Error("junk key accepted")
	}
	if _, err := ParseSigner(a.DB.KeyPEM(), a.DB.KeyPEM()); err == nil {
		t.Error("a key as certificate accepted")
	}
}

// TestEnrollFiles checks the layout of the .auth files: EFI_TIME, the
// WIN_CERTIFICATE header whose length covers the PKCS #7 signature, then
// an EFI_SIGNATURE_LIST of the certificate. (OVMF enrolling them is the
// real check: e2e's TestSecureBoot.)
func TestEnrollFiles(t *testing.T) {
	ks := keys(t)
	files, err := EnrollFiles(ks, epoch)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]*Key{"PK.auth": ks.PK, "KEK.auth": ks.KEK, "db.auth": ks.DB} {
		b := files[name]
		if len(b) < 40 || binary.LittleEndian.Uint16(b) != 2026 || b[2] != 1 || b[3] != 2 {
			t.Fatalf("%s: bad EFI_TIME % x", name, b[:16])
		}
		n := int(binary.LittleEndian.Uint32(b[16:]))
		if binary.LittleEndian.Uint16(b[20:]) != 0x200 || binary.LittleEndian.Uint16(b[22:]) != 0xef1 || 16+n > len(b) {
			t.Fatalf("%s: bad WIN_CERTIFICATE header", name)
		}
		// EDK II's check: a bare SignedData, two-byte length, SHA-256's
		// OID at offset 13.
		sd := b[40 : 16+n]
		if sd[0] != 0x30 || sd[1] != 0x82 || !bytes.Equal(sd[13:13+9], []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}) {
			t.Fatalf("%s: signature is not a bare SignedData with SHA-256 at offset 13: % x", name, sd[:24])
		}
		if esl := b[16+n:]; !bytes.Equal(esl, SignatureList(k.Cert, Owner)) {
			t.Fatalf("%s: payload is not the certificate's signature list", name)
		}
	}
	if g := guid(GlobalVariable); !bytes.Equal(g, []byte{0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c}) {
		t.Fatalf("EFI_GLOBAL_VARIABLE encodes as % x", g)
	}
}

// BenchmarkUKIAssembleAndSign is what a build does per UKI: assemble
// Debian's stub, kernel and a 16 MiB initrd, and sign the result.
func BenchmarkUKIAssembleAndSign(b *testing.B) {
	ks := keys(b)
	s := &Signer{Cert: ks.DB.Cert, Key: ks.DB.Key}
	stub, err1 := os.ReadFile(sdbootdeb.Path(b, sdbootdeb.Stub))
	kernel, err2 := os.ReadFile(testkernel.Path(b))
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	in := uki.Input{Stub: stub, Linux: kernel, Initrd: bytes.Repeat([]byte{7}, 16<<20), Cmdline: "console=ttyS0", OSRel: uki.OSRelease("1")}
	b.SetBytes(int64(len(kernel) + len(in.Initrd)))
	b.ResetTimer()
	for b.Loop() {
		img, err := uki.Build(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Sign(img); err != nil {
			b.Fatal(err)
		}
	}
}
