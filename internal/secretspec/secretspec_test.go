package secretspec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSource(t *testing.T) {
	for in, want := range map[string]string{
		"fw_cfg:opt/com.example/db":              "fw_cfg:opt/com.example/db",
		"ec2:meta-data/tags/instance/db":         "ec2:meta-data/tags/instance/db",
		"gcp:instance/attributes/db":             "gcp:instance/attributes/db",
		"configdrive:openstack/latest/user_data": "configdrive:openstack/latest/user_data",
	} {
		s, err := ParseSource(in)
		if err != nil || s.String() != want {
			t.Errorf("%s: %v %v", in, s, err)
		}
	}
	for _, in := range []string{"db", "vault:x", "fw_cfg:etc/boot-fail-wait", "ec2:/latest/x", "ec2:../x", "gcp:a/../b", "gcp:a?b=c", "configdrive:", "ec2:a b"} {
		if _, err := ParseSource(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestNamesAndPaths(t *testing.T) {
	for n, ok := range map[string]bool{"db-password": true, "a.b_c": true, "": false, ".hidden": false, "a/b": false, strings.Repeat("a", 129): false} {
		if ValidName(n) != ok {
			t.Errorf("ValidName(%q) = %v", n, !ok)
		}
	}
	for p, ok := range map[string]bool{"/run/secrets/db": true, "/etc/web/key": true, "/etc/key": false, "/run/key": false, "/key": false, "run/secrets/x": false, "/run/secrets/../x": false} {
		if (CheckPath(p) == nil) != ok {
			t.Errorf("CheckPath(%q) = %v", p, CheckPath(p))
		}
	}
	dirs := Dirs([]Use{{Path: "/run/secrets/a"}, {Path: "/etc/web/b"}, {Path: "/run/secrets/c"}})
	if strings.Join(dirs, " ") != "/run/secrets /etc/web" || HostDir("web", 1) != "/run/bulkhead/secrets/web/1" {
		t.Fatalf("dirs %v", dirs)
	}
}

func TestReadWrite(t *testing.T) {
	root := t.TempDir()
	if l, err := ReadList(root); err != nil || l != nil {
		t.Fatalf("no list: %v %v", l, err)
	}
	b, err := Marshal([]Secret{{Name: "db", Source: "gcp:x", Refresh: "1m"}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, ListPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := ReadList(root)
	if err != nil || len(l) != 1 || l[0].Name != "db" {
		t.Fatalf("list %v %v", l, err)
	}
	if timeout, refresh := l[0].Timing(); timeout != DefaultTimeout || refresh != time.Minute {
		t.Fatalf("timing %s %s", timeout, refresh)
	}
	if err := os.WriteFile(p, []byte(`[{"name": "db", "value": "x"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadList(root); err == nil {
		t.Fatal("an unknown field (a value) accepted")
	}
	if err := os.WriteFile(filepath.Join(root, FileName), []byte("["+strings.Repeat(" ", maxFile)+"]"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadUses(root); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversized list: %v", err)
	}
	if n, ok := Signal("SIGHUP"); !ok || n != 1 {
		t.Fatal("SIGHUP")
	}
	if _, ok := Signal("HUP"); ok {
		t.Fatal("HUP accepted")
	}
}
