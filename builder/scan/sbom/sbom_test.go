package sbom

import (
	"slices"
	"testing"
)

func TestParseDpkgStatus(t *testing.T) {
	status := `Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2+b1
Description: TLS
 continuation: not a field

Package: gone
Status: deinstall ok config-files
Version: 1

Package: tzdata
Architecture: all
Version: 2024a-0+deb12u1
`
	got := ParseDpkgStatus([]byte(status), "var/lib/dpkg/status", Distro{ID: "debian", VersionID: "12"})
	if len(got) != 2 {
		t.Fatalf("packages = %+v", got)
	}
	p := got[0]
	if p.Name != "libssl3" || p.MatchName() != "openssl" || p.MatchVersion() != "3.0.11-1~deb12u2" || p.Ecosystem != "Debian:12" {
		t.Errorf("libssl3 = %+v", p)
	}
	if want := "pkg:deb/debian/libssl3@3.0.11-1~deb12u2%2Bb1?arch=amd64&distro=debian-12"; p.PURL() != want {
		t.Errorf("purl = %s, want %s", p.PURL(), want)
	}
	if got[1].MatchName() != "tzdata" || got[1].MatchVersion() != "2024a-0+deb12u1" {
		t.Errorf("tzdata = %+v", got[1])
	}
}

func TestParseApkInstalled(t *testing.T) {
	db := "C:Q1abc=\nP:libcrypto3\nV:3.3.2-r0\nA:x86_64\no:openssl\n\nP:busybox\nV:1.36.1-r29\nA:x86_64\no:busybox\n"
	d := ParseOSRelease([]byte("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n"))
	got := ParseApkInstalled([]byte(db), "lib/apk/db/installed", d)
	if len(got) != 2 || got[0].MatchName() != "openssl" || got[0].Ecosystem != "Alpine:v3.20" || got[1].Source != "" {
		t.Fatalf("packages = %+v", got)
	}
	if want := "pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&distro=alpine-3.20.3"; got[0].PURL() != want {
		t.Errorf("purl = %s", got[0].PURL())
	}
}

func TestNormalize(t *testing.T) {
	in := []Package{
		{Kind: KindGoModule, Name: "b", Version: "v1", Locations: []string{"y"}},
		{Kind: KindDeb, Name: "a", Version: "1", Locations: []string{"s"}},
		{Kind: KindGoModule, Name: "b", Version: "v1", Locations: []string{"x", "y"}},
		{Kind: KindKernel, Name: "linux", Version: "6.1"},
	}
	got := Normalize(in)
	if len(got) != 3 || got[0].Kind != KindKernel || got[1].Name != "b" || !slices.Equal(got[1].Locations, []string{"x", "y"}) || got[0].Locations == nil {
		t.Errorf("Normalize = %+v", got)
	}
	if p := (Package{Kind: KindGoModule, Name: "github.com/a/b", Version: "v1.2.3"}); p.PURL() != "pkg:golang/github.com/a/b@v1.2.3" {
		t.Errorf("purl = %s", p.PURL())
	}
	if p := (Package{Kind: KindImage, Name: "x", Repository: "docker.io/library/alpine", Digest: "sha256:ab"}); p.PURL() != "pkg:oci/alpine@sha256%3Aab?repository_url=docker.io/library/alpine" {
		t.Errorf("purl = %s", p.PURL())
	}
}
