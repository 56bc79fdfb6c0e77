package scan

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// TestSBOMParsesAndIsReproducible builds the host twice (two trees, two
// stores) and checks the SBOMs are the same bytes and parse with the SPDX
// and CycloneDX libraries.
func TestSBOMParsesAndIsReproducible(t *testing.T) {
	opts := hostOpts{debVersion: "3.0.11-1~deb12u2"}
	a := run(t, testHost(t, opts))
	b := run(t, testHost(t, opts))
	if !bytes.Equal(a.SPDX, b.SPDX) || !bytes.Equal(a.CycloneDX, b.CycloneDX) {
		t.Fatal("SBOMs differ between two builds of the same host")
	}

	doc, err := spdxjson.Read(bytes.NewReader(a.SPDX))
	if err != nil {
		t.Fatalf("SPDX does not parse: %v", err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("SPDX is not valid: %v", err)
	}
	if len(doc.Packages) != len(a.Packages)+1 {
		t.Errorf("SPDX has %d packages, want %d", len(doc.Packages), len(a.Packages)+1)
	}
	purls := map[string]bool{}
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			if r.RefType == "purl" {
				purls[r.Locator] = true
			}
		}
	}
	if !purls["pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"] {
		t.Errorf("SPDX lacks libssl3's purl: %v", purls)
	}

	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(a.CycloneDX), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("CycloneDX does not parse: %v", err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.Components == nil || len(*bom.Components) != len(a.Packages) {
		t.Errorf("CycloneDX BOM = %+v", bom)
	}
	found := false
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeOS && c.Name == "linux" && c.Version == "6.1.0-test" {
			found = true
		}
	}
	if !found {
		t.Error("CycloneDX lacks the kernel")
	}
}

func TestWriteFilesAndEmbed(t *testing.T) {
	in := testHost(t, hostOpts{debVersion: "1"})
	r := run(t, in)
	dir := t.TempDir()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{SPDXFile, CycloneDXFile, JSONFile, TextFile} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	txt := readFile(t, filepath.Join(dir, TextFile))
	if !bytes.Contains(txt, []byte("result: FAIL")) || !bytes.Contains(txt, []byte("etc/app/token:1")) {
		t.Errorf("summary:\n%s", txt)
	}
	in.Tree.Put(r.Entry(in.Epoch))
	e := in.Tree.Get(EmbedPath)
	if e == nil || !bytes.Equal(e.Content.Data, r.SPDX) || e.Mode != 0o644 {
		t.Fatalf("embedded sbom = %+v", e)
	}
	// The SBOM lists packages, not files: embedding it changes nothing.
	r2 := run(t, in)
	if !bytes.Equal(r2.SPDX, r.SPDX) {
		t.Error("the SBOM changed once embedded")
	}
}

// TestScanArtifacts writes the host as a tar and as an initrd (zstd, with a
// microcode archive in front) and scans them back.
func TestScanArtifacts(t *testing.T) {
	in := testHost(t, hostOpts{debVersion: "3.0.11-1~deb12u2"})
	want := run(t, in)
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "host.tar")
	f, _ := os.Create(tarPath)
	if err := output.WriteTar(context.Background(), f, in.Tree); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var uc bytes.Buffer
	ut := rootfs.New()
	ut.Put(&rootfs.Entry{Path: "kernel/x86/microcode/GenuineIntel.bin", Kind: rootfs.KindFile, Mode: 0o644, Size: 4, Content: rootfs.Content{Data: []byte("ucod")}})
	if err := output.WriteInitrd(context.Background(), &uc, ut, output.WithCompression(output.None)); err != nil {
		t.Fatal(err)
	}
	initrdPath := filepath.Join(dir, "host-initrd.img")
	f, _ = os.Create(initrdPath)
	if err := output.WriteInitrd(context.Background(), f, in.Tree, output.WithUcode(bytes.NewReader(uc.Bytes()))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, p := range []string{tarPath, initrdPath} {
		tree, err := ReadArtifact(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		r, err := Run(context.Background(), Input{Name: "host", Tree: tree, Now: in.Now})
		if err != nil {
			t.Fatal(err)
		}
		if got, wantN := fileSecrets(r), fileSecrets(want); got != wantN {
			t.Errorf("%s: %d secrets in files, want %d", filepath.Base(p), got, wantN)
		}
		if len(r.Minimality.Vestigial) != len(want.Minimality.Vestigial) {
			t.Errorf("%s: vestigial %v, want %v", filepath.Base(p), r.Minimality.Vestigial, want.Minimality.Vestigial)
		}
		if len(r.Packages) != len(want.Packages)-4 { // no images, no kernel
			t.Errorf("%s: %d packages, want %d", filepath.Base(p), len(r.Packages), len(want.Packages)-4)
		}
	}
	disk := filepath.Join(dir, "disk.img")
	img := make([]byte, 4096)
	img[510], img[511] = 0x55, 0xaa
	os.WriteFile(disk, img, 0o644)
	if _, err := ReadArtifact(disk); err == nil {
		t.Error("a disk image was accepted")
	}
}

func fileSecrets(r *Report) int {
	n := 0
	for _, s := range r.Secrets {
		if s.Line > 0 && !strings.HasPrefix(s.Where, "spec ") {
			n++
		}
	}
	return n
}
