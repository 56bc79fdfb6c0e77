package uki

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/test/swtpmtest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/sdbootdeb"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sdbootdeb.Cleanup()
	os.Exit(code)
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testInput(t testing.TB) Input {
	return Input{
		Stub:    readFile(t, sdbootdeb.Path(t, sdbootdeb.Stub)),
		Linux:   readFile(t, testkernel.Path(t)),
		Initrd:  bytes.Repeat([]byte("initrd "), 1000),
		Cmdline: "console=ttyS0 bulkhead.verity=1:2:aa:bb root=PARTUUID=x",
		OSRel:   OSRelease("1.2.0"),
	}
}

// TestBuildSections checks the UKI with binutils as the oracle: objcopy
// extracts each section we added with the content we gave, objdump lists
// the stub's own sections, and the image is the same bytes twice.
func TestBuildSections(t *testing.T) {
	in := testInput(t)
	img, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(in)
	if err != nil || !bytes.Equal(img, again) {
		t.Fatalf("second build differs (%v)", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "uki.efi")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("objdump", "-h", p).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	for _, s := range []string{".text", ".sbat", ".sdmagic", ".osrel", ".cmdline", ".uname", ".initrd", ".linux"} {
		if !strings.Contains(string(out), " "+s+" ") {
			t.Errorf("objdump lists no %s:\n%s", s, out)
		}
	}
	uname, err := KernelRelease(in.Linux)
	if err != nil || !strings.Contains(uname, ".") {
		t.Fatalf("kernel release %q, %v", uname, err)
	}
	want := map[string][]byte{".osrel": []byte(in.OSRel), ".cmdline": []byte(in.Cmdline), ".uname": []byte(uname),
		".linux": in.Linux, ".initrd": in.Initrd}
	for name, content := range want {
		o := filepath.Join(dir, name[1:])
		if out, err := exec.Command("objcopy", "-O", "binary", "--only-section="+name, p, o).CombinedOutput(); err != nil {
			t.Fatalf("objcopy %s: %v\n%s", name, err, out)
		}
		if got := readFile(t, o); !bytes.Equal(got, content) {
			t.Errorf("%s: objcopy extracts %d bytes, want %d", name, len(got), len(content))
		}
	}
	secs, err := ReadSections(img)
	if err != nil || !bytes.Equal(secs[".cmdline"], []byte(in.Cmdline)) {
		t.Fatalf("ReadSections: %q, %v", secs[".cmdline"], err)
	}
}

// TestBuildRefuses covers inputs that must not make an image.
func TestBuildRefuses(t *testing.T) {
	in := testInput(t)
	for name, mut := range map[string]func(*Input){
		"no kernel":     func(in *Input) { in.Linux = nil },
		"not PE":        func(in *Input) { in.Stub = []byte("MZ nothing") },
		"duplicate":     func(in *Input) { in.Extra = []Section{{".sbat", []byte("x")}} },
		"long name":     func(in *Input) { in.Extra = []Section{{".toolongname", []byte("x")}} },
		"not bzImage":   func(in *Input) { in.Linux = []byte("plain") },
		"huge cmdline":  func(in *Input) { in.Cmdline = strings.Repeat("x", maxText+1) },
		"truncated hdr": func(in *Input) { in.Stub = in.Stub[:0x100] },
	} {
		c := in
		mut(&c)
		if _, err := Build(c); err == nil {
			t.Errorf("%s: built", name)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	in := testInput(b)
	in.Initrd = bytes.Repeat([]byte{1}, 16<<20)
	b.SetBytes(int64(len(in.Linux) + len(in.Initrd)))
	for b.Loop() {
		if _, err := Build(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPCR11AgreesWithSystemdMeasure predicts PCR 11 for a UKI and has
// systemd-measure (systemd 252's own calculator) compute it from the same
// sections: the values agree; a changed command line changes it.
func TestPCR11AgreesWithSystemdMeasure(t *testing.T) {
	const measure = "/usr/lib/systemd/systemd-measure"
	in := testInput(t)
	img, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := PCR11(img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{"calculate", "--bank=sha256", "--phase=:", "--json=short"}
	for flag, b := range map[string][]byte{"linux": in.Linux, "osrel": []byte(in.OSRel), "cmdline": []byte(in.Cmdline), "initrd": in.Initrd} {
		p := filepath.Join(dir, flag)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--"+flag+"="+p)
	}
	out, err := exec.Command(measure, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-measure: %v\n%s", err, out)
	}
	if want := fmt.Sprintf(`{"pcr":11,"hash":"%x"}`, got); !strings.Contains(string(out), want) {
		t.Fatalf("systemd-measure says %s; we predict %x", out, got)
	}
	in.Cmdline += " x"
	other, _ := Build(in)
	if p, _ := PCR11(other); bytes.Equal(p, got) {
		t.Fatal("a changed command line gives the same PCR 11")
	}
}

// TestPCRSigAgreesWithSystemdMeasure signs the PCR 11 policy of a UKI
// and has systemd-measure sign the same sections with the same key,
// against a software TPM (it computes the policy digest in a trial
// session): the .pcrsig sections are the same bytes, and CheckPCRSig
// accepts ours and refuses it on a UKI with another command line.
func TestPCRSigAgreesWithSystemdMeasure(t *testing.T) {
	in := testInput(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	img, err := BuildSigned(in, key)
	if err != nil {
		t.Fatal(err)
	}
	pcr, err := CheckPCRSig(img)
	if err != nil {
		t.Fatal(err)
	}
	secs, _ := ReadSections(img)
	dir := t.TempDir()
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	files := map[string][]byte{"linux": in.Linux, "osrel": []byte(in.OSRel), "cmdline": []byte(in.Cmdline), "initrd": in.Initrd,
		"pcrpkey": secs[SectionPCRPKey], "private-key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
	args := []string{"sign", "--bank=sha256", "--phase=:", "--public-key=" + filepath.Join(dir, "pcrpkey")}
	for flag, b := range files {
		p := filepath.Join(dir, flag)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--"+flag+"="+p)
	}
	port := swtpmtest.StartTCP(t, dir, "not-need-init")
	args = append(args, fmt.Sprintf("--tpm2-device=swtpm:host=127.0.0.1,port=%d", port))
	var out []byte
	for i := 0; i < 50; i++ { // until swtpm listens
		if out, err = exec.Command("/usr/lib/systemd/systemd-measure", args...).CombinedOutput(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("systemd-measure sign: %v\n%s", err, out)
	}
	if got := secs[SectionPCRSig]; !bytes.Equal(bytes.TrimSpace(out), got) {
		t.Fatalf(".pcrsig differs:\n ours %s\n systemd-measure %s", got, out)
	}
	if p, _ := PCR11(img); !bytes.Equal(p, pcr) {
		t.Fatal("CheckPCRSig returned another PCR 11")
	}
	// The same .pcrsig on a UKI with another command line is refused.
	in.Cmdline += " evil"
	in.Extra = []Section{{SectionPCRPKey, secs[SectionPCRPKey]}, {SectionPCRSig, secs[SectionPCRSig]}}
	other, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckPCRSig(other); err == nil {
		t.Fatal("a .pcrsig for another command line accepted")
	}
}
