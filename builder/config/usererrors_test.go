package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The mistakes a new user makes, each reported where it is.
func TestSyntaxErrorAtOffendingLine(t *testing.T) {
	base := "kernel:\n  image: k\ninit:\n  - i\nservices:\n  - name: hello\n    image: h\n"
	for _, tc := range []struct{ name, tail, want string }{
		{"dedented key", "   net: host\n", "t.yml:8:4: invalid YAML: did not find expected '-' indicator"},
		{"over-indented key", "      net: host\n", "t.yml:8:10: invalid YAML: mapping values are not allowed in this context"},
		{"tab", "    net: host\n\treadonly: true\n", "t.yml:9:1: invalid YAML: found a tab character that violates indentation"},
		{"key at the wrong level", "  net: host\n", "t.yml:8:3: invalid YAML: did not find expected '-' indicator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yml", []byte(base+tc.tail))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error = %v, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestEmptySpecIsAnError(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n", "---\n"} {
		_, err := Parse("e.yml", []byte(data))
		if err == nil || !strings.HasPrefix(err.Error(), "e.yml:1:1: empty spec") {
			t.Errorf("Parse(%q) = %v, want e.yml:1:1: empty spec", data, err)
		}
	}
}

func TestPolicyValuesChecked(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"policy:\n  kernel:\n    min_score: 120\n", "7:16: kernel.min_score: a percentage from 0 to 100, got 120"},
		{"policy:\n  kernel:\n    min_score: -1\n", "7:16: kernel.min_score: a percentage from 0 to 100, got -1"},
		{"policy:\n  kernel:\n    require: [containr]\n", `7:15: kernel.require: no kernel rule or category "containr" (did you mean "container"?)`},
		{"policy:\n  vulnerabilities:\n    fail_on: hgh\n", `7:14: vulnerabilities.fail_on: expected one of low, medium, high, critical, got "hgh" (did you mean "high"?)`},
		{"policy:\n  forbid: [shels]\n", `6:12: forbid: unknown class "shels" (did you mean "shells"?)`},
	} {
		_, err := Parse("t.yml", []byte(head+tc.yaml))
		if err == nil || !strings.HasPrefix(err.Error(), "t.yml:"+tc.want) {
			t.Errorf("%q: error = %v\nwant prefix t.yml:%s", tc.yaml, err, tc.want)
		}
	}
	ok := "policy:\n  kernel: {min_score: 100, require: [container, CONFIG_SECCOMP, SECCOMP_FILTER, init_on_free]}\n" +
		"  vulnerabilities: {fail_on: critical}\n  forbid: [shell, shells, outside-files]\n"
	if _, err := Parse("t.yml", []byte(head+ok)); err != nil {
		t.Errorf("valid policy refused: %v", err)
	}
}

func TestSysctlNeedsItsNamespace(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"onboot:\n  - name: a\n    image: x\n    sysctl: {net.ipv4.ip_forward: \"1\"}\n",
			`8:35: sysctl "net.ipv4.ip_forward" is not allowed in the host network namespace`},
		{"services:\n  - name: a\n    image: x\n    net: host\n    sysctl: {kernel.shmmax: \"1\"}\n",
			`9:29: sysctl "kernel.shmmax" is not allowed in the host's IPC namespace`},
		{"services:\n  - name: a\n    image: x\n    net: new\n    ipc: new\n    sysctl: {vm.swappiness: \"1\"}\n",
			`10:29: sysctl "vm.swappiness" is not in a namespace of the container's own`},
	} {
		_, err := Parse("t.yml", []byte(head+tc.yaml))
		if err == nil || !strings.HasPrefix(err.Error(), "t.yml:"+tc.want) {
			t.Errorf("%q: error = %v\nwant prefix t.yml:%s", tc.yaml, err, tc.want)
		}
	}
	ok := "services:\n  - name: a\n    image: x\n    net: new\n    ipc: new\n    uts: new\n" +
		"    sysctl: {net.ipv4.ip_forward: \"1\", kernel.shmmax: \"1\", fs.mqueue.msg_max: \"1\", kernel.domainname: x}\n"
	if _, err := Parse("t.yml", []byte(head+ok)); err != nil {
		t.Errorf("namespaced sysctls refused: %v", err)
	}
}

func TestCheckHost(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "h.yml")
	if err := os.WriteFile(filepath.Join(dir, "here.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := "kernel:\n  image: k\nfiles:\n  - path: etc/a\n    source: here.txt\n  - path: etc/b\n    source: missing.txt\n" +
		"  - path: etc/c\n    source: gone.txt\n    optional: true\n  - path: etc/d\n    source: .\n"
	s, err := Parse(spec, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckHost(s, dir)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("CheckHost = %v, want 3 problems", err)
	}
	for i, want := range []string{
		spec + ":2:10: no init: images",
		spec + ":6:5: files \"etc/b\": source \"missing.txt\" does not exist",
		spec + ":11:5: files \"etc/d\": source \".\" is not a regular file",
	} {
		if !strings.HasPrefix(errs[i].Error(), want) {
			t.Errorf("problem %d = %v, want prefix %q", i, errs[i], want)
		}
	}
	s, err = Parse(spec, []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHost(s, dir); err != nil {
		t.Errorf("CheckHost of a complete host = %v", err)
	}
}

func TestEncryptDataChecked(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"disk:\n  encrypt_data: luks\n", `6:17: encrypt_data: the one way to encrypt /var is "tpm", got "luks"`},
		{"disk:\n  encrypt_data: tpm\n  without_tpm: maybe\n", `7:16: without_tpm: expected fail or plain, got "maybe"`},
		{"disk:\n  without_tpm: plain\n", `6:16: without_tpm: only means something with encrypt_data: tpm`},
	} {
		_, err := Parse("t.yml", []byte(head+tc.yaml))
		if err == nil || !strings.HasPrefix(err.Error(), "t.yml:"+tc.want) {
			t.Errorf("%q: error = %v\nwant prefix t.yml:%s", tc.yaml, err, tc.want)
		}
	}
	// Without a UKI there is no signed PCR policy to seal /var to.
	s, err := Parse("t.yml", []byte(head+"disk:\n  encrypt_data: tpm\n  without_tpm: plain\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHost(s, t.TempDir()); err == nil || !strings.HasPrefix(err.Error(), "t.yml:6:3: disk: encrypt_data: tpm seals /var to the signed PCR policy of a unified kernel image: set boot.uki: true") {
		t.Errorf("CheckHost without boot.uki = %v", err)
	}
	s, err = Parse("t.yml", []byte(head+"disk:\n  encrypt_data: tpm\nboot:\n  uki: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHost(s, t.TempDir()); err != nil {
		t.Errorf("CheckHost with boot.uki = %v", err)
	}
}
