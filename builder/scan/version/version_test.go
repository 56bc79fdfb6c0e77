package version

import (
	"os/exec"
	"testing"
)

var dpkgCases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "1.1", -1},
	{"1.0~rc1", "1.0", -1},
	{"1.0", "1.0+b1", -1},
	{"1:0.9", "2.0", 1},
	{"1.0-1", "1.0-1~deb12u1", 1},
	{"3.0.11-1~deb12u2", "3.0.13-1~deb12u1", -1},
	{"3.0.13-1~deb12u1", "3.0.13-1~deb12u1", 0},
	{"1.2a", "1.2", 1},
	{"1.2.10", "1.2.9", 1},
	{"0:1.0", "1.0", 0},
	{"1.0-2", "1.0-10", -1},
	{"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
	{"1.0~~", "1.0~", -1},
	{"1.0.a", "1.0+", 1},
}

func TestDpkg(t *testing.T) {
	for _, c := range dpkgCases {
		if got := Dpkg(c.a, c.b); got != c.want {
			t.Errorf("Dpkg(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Dpkg(c.b, c.a); got != -c.want {
			t.Errorf("Dpkg(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// TestDpkgOracle checks the table against dpkg itself.
func TestDpkgOracle(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not installed")
	}
	ops := map[int]string{-1: "lt", 0: "eq", 1: "gt"}
	for _, c := range dpkgCases {
		if err := exec.Command(dpkg, "--compare-versions", c.a, ops[c.want], c.b).Run(); err != nil {
			t.Errorf("dpkg disagrees: %s %s %s", c.a, ops[c.want], c.b)
		}
	}
}

func TestApk(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.2.3-r0", "1.2.3-r0", 0},
		{"1.2.3-r0", "1.2.3-r1", -1},
		{"1.2.3-r10", "1.2.3-r9", 1},
		{"1.2.3_rc1-r0", "1.2.3-r0", -1},
		{"1.2.3_alpha", "1.2.3_beta", -1},
		{"1.2.3_beta2", "1.2.3_pre1", -1},
		{"1.2.3_pre1", "1.2.3_rc1", -1},
		{"1.2.3_p1", "1.2.3", 1},
		{"1.2.3a", "1.2.3", 1},
		{"1.2.3a", "1.2.3b", -1},
		{"1.2.10", "1.2.9", 1},
		{"1.2", "1.2.0", -1},
		{"3.1.4-r5", "3.1.4-r6", -1},
		{"3.0.8-r0", "3.1.0-r0", -1},
	} {
		if got := Apk(c.a, c.b); got != c.want {
			t.Errorf("Apk(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Apk(c.b, c.a); got != -c.want {
			t.Errorf("Apk(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestSemver(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"v1.2.3", "1.2.3", 0},
		{"1.2.3", "1.2.4", -1},
		{"1.10.0", "1.9.9", 1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
		{"1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"v0.0.0-20240101000000-abcdef123456", "v0.1.0", -1},
		{"v0.17.0", "v0.0.0-20240101000000-abcdef123456", 1},
		{"1.0.0+meta", "1.0.0", 0},
	} {
		if got := Semver(c.a, c.b); got != c.want {
			t.Errorf("Semver(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Semver(c.b, c.a); got != -c.want {
			t.Errorf("Semver(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestGoToolchain(t *testing.T) {
	for in, want := range map[string]string{
		"go1.22.3":                "1.22.3",
		"go1.22":                  "1.22.0",
		"go1.21rc2":               "1.21.0-rc.2",
		"go1.22.3 X:boringcrypto": "1.22.3",
		"devel go1.23-abc":        "",
		"gox":                     "",
	} {
		if got := GoToolchain(in); got != want {
			t.Errorf("GoToolchain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCompareDispatch(t *testing.T) {
	if Compare("Debian:12", "1.0~rc1", "1.0") != -1 {
		t.Error("Debian did not use dpkg order")
	}
	if Compare("Alpine:v3.20", "1.0_rc1", "1.0") != -1 {
		t.Error("Alpine did not use apk order")
	}
	if Compare("Go", "1.0.0-rc.1", "1.0.0") != -1 {
		t.Error("Go did not use semver order")
	}
}
