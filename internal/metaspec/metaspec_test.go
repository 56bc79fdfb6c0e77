package metaspec

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKeysOf(t *testing.T) {
	for _, p := range []string{"fw_cfg", "ec2", "gcp", "configdrive"} {
		if k, err := KeysOf(p); err != nil || len(k) == 0 || k[0].Hostname == "" || k[0].UserData == "" {
			t.Errorf("%s: %v %v", p, k, err)
		}
	}
	if _, err := KeysOf("azure"); err == nil {
		t.Error("azure accepted")
	}
}

func TestReadRoundTrip(t *testing.T) {
	root := t.TempDir()
	if c, err := Read(root); c != nil || err != nil {
		t.Fatalf("none: %v %v", c, err)
	}
	b, err := Marshal(Config{Provider: "ec2", Hostname: true, Timeout: "3s"})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, Path)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Read(root)
	if err != nil || c.Provider != "ec2" || !c.Hostname || c.UserData || c.TimeoutOf() != 3*time.Second {
		t.Fatalf("read %+v %v", c, err)
	}
	if (Config{}).TimeoutOf() != DefaultTimeout {
		t.Fatal("default timeout")
	}
}
