package scan

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/scan/version"
)

const gatePolicy = `policy:
  vulnerabilities:
    fail_on: high
%s  forbid: [shells]
`

func run(t *testing.T, in Input) *Report {
	t.Helper()
	r, err := Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// bump returns a Go version one patch above v ("v1.2.3" -> "1.2.4").
func bump(v string) string {
	core := strings.TrimPrefix(v, "v")
	core, _, _ = strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	n := 0
	for _, c := range parts[2] {
		n = n*10 + int(c-'0')
	}
	parts[2] = strings.TrimLeft(strings.Repeat("0", 0)+itoa(n+1), "")
	return strings.Join(parts, ".")
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func containsLine(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestGatesFail(t *testing.T) {
	compress := goDep(t, "github.com/klauspost/compress")
	in := testHost(t, hostOpts{debVersion: "3.0.11-1~deb12u2", policy: strings.Replace(gatePolicy, "%s", "", 1)})
	in.VulnDB = writeVulnDB(t, bump(compress), "3.0.13-1~deb12u1")
	r := run(t, in)
	failed := r.Failed()
	for _, want := range [][]string{
		{"vulnerability GO-2099-0001 (unknown) in github.com/klauspost/compress " + compress, "fixed in " + bump(compress), "at init"},
		{"vulnerability DSA-9999-1 (critical) in libssl3 3.0.11-1~deb12u2", "fixed in 3.0.13-1~deb12u1", "containers/services/app/lower/var/lib/dpkg/status"},
		{"secret private-key at etc/ssl/private/host.key:1"},
		{"secret aws-access-key-id at root/.aws/credentials:2", "AKIA****"},
		{"secret aws-secret-access-key at root/.aws/credentials:3", "q8Hj****"},
		{"secret github-token at etc/app/token:1", "ghp_****"},
		{"secret github-token at image example.org/app:1: env GITHUB_TOKEN"},
		{"forbidden (shells): /containers/services/app/lower/bin/sh is shell"},
	} {
		if !containsLine(failed, want...) {
			t.Errorf("Failed() has no line with %q; got:\n%s", want, strings.Join(failed, "\n"))
		}
	}
	for _, l := range failed {
		if strings.Contains(l, fileToken[4:]) || strings.Contains(l, envToken[4:]) || strings.Contains(l, "q8Hj2kLm") {
			t.Errorf("a failure line leaks a secret: %s", l)
		}
	}
	// The token a files entry writes from the spec is one secret,
	// reported once, where the host carries it; not again in the spec.
	fp := ""
	for _, sec := range r.Secrets {
		if sec.Where == "etc/app/token" {
			fp = sec.Fingerprint
		}
	}
	var token []string
	for _, sec := range r.Secrets {
		if sec.Fingerprint == fp {
			token = append(token, sec.Where)
		}
	}
	if !slices.Equal(token, []string{"etc/app/token"}) {
		t.Errorf("the spec's file token is reported at %q, want once at etc/app/token", token)
	}
	m := r.Minimality
	if !slices.Contains(m.Vestigial, "containers/services/app/lower/usr/lib/x86_64-linux-gnu/libunused.so.1") {
		t.Errorf("unused library not vestigial: %v", m.Vestigial)
	}
	if slices.Contains(m.Vestigial, "init") || slices.Contains(m.Vestigial, "containers/services/app/lower/bin/sh") {
		t.Errorf("reached programs listed vestigial: %v", m.Vestigial)
	}
	if got := m.WithFlag("shell"); !slices.Equal(got, []string{"containers/services/app/lower/bin/sh"}) {
		t.Errorf("shells = %v", got)
	}
	for _, f := range m.Files {
		if f.Path == "init" && (!strings.HasPrefix(f.Origin, "example.org/init:1@sha256:") || !strings.Contains(f.Origin, "#layer sha256:")) {
			t.Errorf("init origin = %q", f.Origin)
		}
	}
}

func TestGatesPassWhenFixed(t *testing.T) {
	compress := goDep(t, "github.com/klauspost/compress")
	in := testHost(t, hostOpts{debVersion: "3.0.13-1~deb12u1", policy: strings.Replace(gatePolicy, "%s", "", 1)})
	in.VulnDB = writeVulnDB(t, strings.TrimPrefix(compress, "v"), "3.0.13-1~deb12u1")
	r := run(t, in)
	if len(r.Vulnerabilities) != 0 {
		t.Errorf("vulnerabilities in fixed versions: %+v", r.Vulnerabilities)
	}
	if !r.VulnDB {
		t.Error("database not consulted")
	}
}

func TestAllowlistUntilExpiry(t *testing.T) {
	compress := goDep(t, "github.com/klauspost/compress")
	allow := "    allow:\n      - {id: CVE-2099-1111, reason: not reachable, expires: \"2026-06-30\"}\n      - {id: DSA-9999-1, reason: no tls, expires: \"2026-06-30\"}\n"
	in := testHost(t, hostOpts{debVersion: "3.0.11-1~deb12u2", policy: strings.Replace(gatePolicy, "%s", allow, 1)})
	in.VulnDB = writeVulnDB(t, bump(compress), "3.0.13-1~deb12u1")
	r := run(t, in)
	if containsLine(r.Failed(), "vulnerability") {
		t.Errorf("allowed findings fail: %v", r.Failed())
	}
	for _, v := range r.Vulnerabilities {
		if v.Status != "allowed" || v.Reason == "" {
			t.Errorf("finding %s: status %q", v.ID, v.Status)
		}
	}
	in.Now = in.Now.AddDate(0, 1, 0)
	r = run(t, in)
	if !containsLine(r.Failed(), "GO-2099-0001", "allowance expired 2026-06-30") || !containsLine(r.Failed(), "DSA-9999-1", "allowance expired") {
		t.Errorf("expired allowances still pass: %v", r.Failed())
	}
}

func TestSecretsAllowlistByFingerprint(t *testing.T) {
	in := testHost(t, hostOpts{debVersion: "1", policy: ""})
	r := run(t, in)
	var fp string
	for _, s := range r.Secrets {
		if s.Rule == "private-key" {
			fp = s.Fingerprint
		}
	}
	if fp == "" {
		t.Fatal("private key not found")
	}
	in = testHost(t, hostOpts{debVersion: "1", policy: "policy:\n  secrets:\n    allow:\n      - {id: " + fp + ", reason: test key}\n"})
	r = run(t, in)
	if containsLine(r.Failed(), "private-key") {
		t.Errorf("allowed private key still fails: %v", r.Failed())
	}
	if !containsLine(r.Failed(), "github-token") {
		t.Errorf("other secrets no longer fail: %v", r.Failed())
	}
}

func TestInventory(t *testing.T) {
	in := testHost(t, hostOpts{debVersion: "3.0.11-1~deb12u2"})
	r := run(t, in)
	var kinds []string
	found := map[string]bool{}
	for _, p := range r.Packages {
		kinds = append(kinds, string(p.Kind))
		found[p.PURL()] = true
	}
	for _, purl := range []string{
		"pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
		"pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
		"pkg:golang/github.com/klauspost/compress@" + goDep(t, "github.com/klauspost/compress"),
		"pkg:generic/linux@6.1.0-test",
	} {
		if !found[purl] {
			t.Errorf("no package %s", purl)
		}
	}
	if found["pkg:deb/debian/removed-thing@1.0?distro=debian-12"] {
		t.Error("a removed package is listed")
	}
	if !slices.Contains(kinds, "image") || !slices.Contains(kinds, "go-stdlib") {
		t.Errorf("kinds = %v", kinds)
	}
	for _, p := range r.Packages {
		if p.Kind == "kernel" && (p.ConfigDigest == "" || p.Version != "6.1.0-test") {
			t.Errorf("kernel = %+v", p)
		}
		if p.Kind == "go-stdlib" && version.Semver(p.Version, "1.20.0") < 0 {
			t.Errorf("stdlib = %+v", p)
		}
	}
}
