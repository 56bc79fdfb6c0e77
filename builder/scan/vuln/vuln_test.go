package vuln

import (
	"archive/zip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/scan/sbom"
)

const goRecord = `{"id":"GO-2024-0001","aliases":["CVE-2024-0001"],"summary":"bad parse",
 "affected":[{"package":{"ecosystem":"Go","name":"example.com/lib"},
  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.4"},{"introduced":"1.3.0"},{"fixed":"1.3.1"}]}]}]}`

const debRecord = `{"id":"DSA-0001-1","aliases":["CVE-2024-0002"],
 "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
 "affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.13-1~deb12u1"}]}]}]}`

const apkRecord = `{"id":"ALPINE-CVE-2024-0003","database_specific":{"severity":"MODERATE"},
 "affected":[{"package":{"ecosystem":"Alpine:v3.20","name":"busybox"},
  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.36.1-r29"}]}]}]}`

func writeDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "GO-2024-0001.json"), []byte(goRecord), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "all.zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range map[string]string{"DSA-0001-1.json": debRecord, "ALPINE-CVE-2024-0003.json": apkRecord} {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return dir
}

func pkgs(goVer, debVer, apkVer string) []sbom.Package {
	return []sbom.Package{
		{Kind: sbom.KindGoModule, Name: "example.com/lib", Version: goVer, Ecosystem: "Go", Locations: []string{"usr/bin/app"}},
		{Kind: sbom.KindDeb, Name: "libssl3", Source: "openssl", Version: debVer, Ecosystem: "Debian:12", Locations: []string{"var/lib/dpkg/status"}},
		{Kind: sbom.KindApk, Name: "busybox", Version: apkVer, Ecosystem: "Alpine:v3.20", Locations: []string{"lib/apk/db/installed"}},
	}
}

func match(t *testing.T, ps []sbom.Package) []Finding {
	t.Helper()
	db, err := Load(writeDB(t), Wants(ps))
	if err != nil {
		t.Fatal(err)
	}
	return db.Match(ps)
}

func TestMatchVulnerable(t *testing.T) {
	fs := match(t, pkgs("v1.2.3", "3.0.11-1~deb12u2", "1.36.1-r28"))
	want := map[string]Finding{
		"busybox":         {ID: "ALPINE-CVE-2024-0003", Severity: "medium", Fixed: "1.36.1-r29"},
		"example.com/lib": {ID: "GO-2024-0001", Severity: "unknown", Fixed: "1.2.4"},
		"libssl3":         {ID: "DSA-0001-1", Severity: "critical", Fixed: "3.0.13-1~deb12u1"},
	}
	if len(fs) != len(want) {
		t.Fatalf("findings = %+v", fs)
	}
	for _, f := range fs {
		w := want[f.Package]
		if f.ID != w.ID || f.Severity != w.Severity || f.Fixed != w.Fixed || len(f.Locations) != 1 {
			t.Errorf("finding %+v, want %+v", f, w)
		}
	}
}

func TestMatchFixed(t *testing.T) {
	for _, ps := range [][]sbom.Package{
		pkgs("v1.2.4", "3.0.13-1~deb12u1", "1.36.1-r29"),
		pkgs("v1.3.1", "3.0.13-1~deb12u2", "1.36.2-r0"),
	} {
		if fs := match(t, ps); len(fs) != 0 {
			t.Errorf("findings for fixed versions: %+v", fs)
		}
	}
	// The second range opens again at 1.3.0.
	if fs := match(t, pkgs("v1.3.0", "3.0.13-1~deb12u1", "1.36.1-r29")); len(fs) != 1 || fs[0].Fixed != "1.3.1" {
		t.Errorf("findings = %+v", fs)
	}
	// Another Debian release is not matched.
	ps := pkgs("v1.2.4", "3.0.11-1", "1.36.1-r29")
	ps[1].Ecosystem = "Debian:11"
	if fs := match(t, ps); len(fs) != 0 {
		t.Errorf("Debian:12 record matched Debian:11: %+v", fs)
	}
}

func TestApply(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	fs := match(t, pkgs("v1.2.3", "3.0.11-1~deb12u2", "1.36.1-r28"))
	p := &config.VulnerabilityPolicy{FailOn: "high", Allow: []config.Allowance{
		{ID: "CVE-2024-0001", Reason: "not reachable", Expires: "2026-06-01"},
		{ID: "DSA-0001-1", Reason: "old", Expires: "2026-05-31"},
	}}
	if err := Apply(fs, p, now); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs {
		got[f.ID] = f.Status
	}
	want := map[string]string{"GO-2024-0001": "allowed", "DSA-0001-1": "expired", "ALPINE-CVE-2024-0003": "below-threshold"}
	for id, s := range want {
		if got[id] != s {
			t.Errorf("%s: status %q, want %q", id, got[id], s)
		}
	}
	if err := Apply(fs, &config.VulnerabilityPolicy{FailOn: "severe"}, now); err == nil {
		t.Error("unknown fail_on accepted")
	}
}

// TestCVSS checks base scores against the examples of each specification
// and NVD's published scores.
func TestCVSS(t *testing.T) {
	for v, want := range map[string]float64{
		"AV:N/AC:L/Au:N/C:P/I:P/A:P":                                      7.5,
		"AV:N/AC:M/Au:N/C:N/I:P/A:N":                                      4.3,
		"AV:N/AC:L/Au:N/C:C/I:C/A:C":                                      10,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H":                    9.8,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H":                    10,
		"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N":                    5.5,
		"CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N":                    3.1,
		"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N":                    6.4,
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N": 9.3,
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N": 0,
	} {
		if got, err := CVSS(v); err != nil || got != want {
			t.Errorf("CVSS(%s) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, bad := range []string{"", "CVSS:3.1/AV:N", "CVSS:5.0/AV:N", "AV:X/AC:L/Au:N/C:P/I:P/A:P"} {
		if _, err := CVSS(bad); err == nil {
			t.Errorf("CVSS(%q): want error", bad)
		}
	}
}

// TestRecordSeverity: a v4 vector outranks an older one, v2 has no
// critical, and an unreadable vector falls through to the next.
func TestRecordSeverity(t *testing.T) {
	v2 := severity{Type: "CVSS_V2", Score: "AV:N/AC:L/Au:N/C:C/I:C/A:C"}
	v3 := severity{Type: "CVSS_V3", Score: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"}
	v4 := severity{Type: "CVSS_V4", Score: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}
	bad := severity{Type: "CVSS_V4", Score: "CVSS:4.0/AV:N"}
	for _, c := range []struct {
		sev  []severity
		want string
	}{
		{[]severity{v2}, "high"},
		{[]severity{v2, v3}, "medium"},
		{[]severity{v3, v4}, "critical"},
		{[]severity{bad, v3}, "medium"},
		{nil, ""},
	} {
		if got := recordSeverity(&record{Severity: c.sev}, &affected{}); got != c.want {
			t.Errorf("recordSeverity(%v) = %q, want %q", c.sev, got, c.want)
		}
	}
}
