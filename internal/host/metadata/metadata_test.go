package metadata

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/host/metadata/metadatatest"
)

func TestEC2(t *testing.T) {
	md := metadatatest.New()
	srv := httptest.NewServer(md)
	defer srv.Close()
	md.SetEC2("meta-data/tags/instance/db", []byte("s3cr3t"))
	e := &EC2{Endpoint: srv.URL}
	v, err := e.Fetch(context.Background(), "meta-data/tags/instance/db")
	if err != nil || string(v) != "s3cr3t" {
		t.Fatalf("fetch: %q %v", v, err)
	}
	if md.Hits("/latest/api/token") != 1 {
		t.Fatalf("token requests: %d", md.Hits("/latest/api/token"))
	}
	if _, err := e.Fetch(context.Background(), "user-data"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	md.SetDown(true)
	if _, err := e.Fetch(context.Background(), "meta-data/tags/instance/db"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("down: %v", err)
	}
	// IMDSv1 (a GET without a token) is refused by the emulator, as it is
	// on a host that requires v2.
	md.SetDown(false)
	resp, err := http.Get(srv.URL + "/latest/meta-data/tags/instance/db")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("v1 request: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestGCP(t *testing.T) {
	md := metadatatest.New()
	srv := httptest.NewServer(md)
	defer srv.Close()
	md.SetGCP("instance/attributes/db", []byte("g-secret"))
	g := &GCP{Endpoint: srv.URL}
	v, err := g.Fetch(context.Background(), "instance/attributes/db")
	if err != nil || string(v) != "g-secret" {
		t.Fatalf("fetch: %q %v", v, err)
	}
	if _, err := g.Fetch(context.Background(), "instance/attributes/nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	// A server that does not say it is Google's is not believed.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("x")) }))
	defer plain.Close()
	if _, err := (&GCP{Endpoint: plain.URL}).Fetch(context.Background(), "instance/attributes/db"); err == nil {
		t.Fatal("answer without Metadata-Flavor accepted")
	}
}

func TestFwCfg(t *testing.T) {
	dir := t.TempDir()
	entry := filepath.Join(dir, "by_name", "opt", "bulkhead", "db")
	if err := os.MkdirAll(entry, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(entry, "raw"), []byte("fw"), 0o400); err != nil {
		t.Fatal(err)
	}
	f := FwCfg{Dir: dir}
	if v, err := f.Fetch(context.Background(), "opt/bulkhead/db"); err != nil || string(v) != "fw" {
		t.Fatalf("fetch: %q %v", v, err)
	}
	if _, err := f.Fetch(context.Background(), "opt/other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := (FwCfg{Dir: filepath.Join(dir, "none")}).Fetch(context.Background(), "opt/x"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("no fw_cfg: %v", err)
	}
}

func TestLabel(t *testing.T) {
	iso := make([]byte, 34816)
	iso[32768] = 1
	copy(iso[32769:], "CD001")
	copy(iso[32768+40:], "config-2                        ")
	if l, typ := Label(bytes.NewReader(iso)); l != "config-2" || typ != "iso9660" || !isDriveLabel(l) {
		t.Fatalf("iso: %q %q", l, typ)
	}
	fat := make([]byte, 512)
	fat[510], fat[511] = 0x55, 0xaa
	fat[66] = 0x29
	copy(fat[71:], "CIDATA     FAT32   ")
	if l, typ := Label(bytes.NewReader(fat)); l != "CIDATA" || typ != "vfat" || !isDriveLabel(l) {
		t.Fatalf("fat32: %q %q", l, typ)
	}
	if _, typ := Label(bytes.NewReader(make([]byte, 40000))); typ != "" {
		t.Fatalf("zeros: %q", typ)
	}
}

// TestLabelMkfs reads the label mkfs.vfat writes (the oracle), FAT16 and
// FAT32.
func TestLabelMkfs(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.vfat")
	if err != nil {
		t.Skip("mkfs.vfat not installed")
	}
	for _, fat := range []string{"16", "32"} {
		img := filepath.Join(t.TempDir(), "drive.img")
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 40<<20); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(mkfs, "-F", fat, "-n", "CIDATA", img).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.vfat: %v\n%s", err, out)
		}
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		l, typ := Label(f)
		f.Close()
		if l != "CIDATA" || typ != "vfat" {
			t.Errorf("FAT%s: label %q type %q", fat, l, typ)
		}
	}
}
