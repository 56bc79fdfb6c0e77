package metadata

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/host/metadata/metadatatest"
	"github.com/bulkhead-dev/bulkhead/internal/metaspec"
)

func TestHostFromEC2AndGCP(t *testing.T) {
	md := metadatatest.New()
	srv := httptest.NewServer(md)
	defer srv.Close()
	md.SetEC2("meta-data/local-hostname", []byte("ip-10-0-0-7.ec2.internal\n"))
	md.SetEC2("user-data", []byte("#cloud-config\n"))
	md.SetGCP("instance/hostname", []byte("vm-1.c.proj.internal"))
	ec2Keys, _ := metaspec.KeysOf("ec2")
	name, from, err := Hostname(context.Background(), &EC2{Endpoint: srv.URL}, ec2Keys)
	if err != nil || name != "ip-10-0-0-7.ec2.internal" || from != "meta-data/local-hostname" {
		t.Fatalf("ec2 hostname %q %q %v", name, from, err)
	}
	data, _, err := UserData(context.Background(), &EC2{Endpoint: srv.URL}, ec2Keys)
	if err != nil || string(data) != "#cloud-config\n" {
		t.Fatalf("ec2 user data %q %v", data, err)
	}
	gcpKeys, _ := metaspec.KeysOf("gcp")
	if name, _, err := Hostname(context.Background(), &GCP{Endpoint: srv.URL}, gcpKeys); err != nil || name != "vm-1.c.proj.internal" {
		t.Fatalf("gcp hostname %q %v", name, err)
	}
	if _, _, err := UserData(context.Background(), &GCP{Endpoint: srv.URL}, gcpKeys); err != ErrNotFound {
		t.Fatalf("gcp user data: %v", err)
	}
	md.SetEC2("meta-data/local-hostname", []byte("bad name; rm -rf"))
	if _, _, err := Hostname(context.Background(), &EC2{Endpoint: srv.URL}, ec2Keys); err == nil {
		t.Fatal("invalid host name accepted")
	}
}

// TestHostFromDrives reads OpenStack's meta_data.json and NoCloud's
// meta-data, through a provider over a directory (a mounted drive).
func TestHostFromDrives(t *testing.T) {
	keys, _ := metaspec.KeysOf("configdrive")
	for files, want := range map[string]string{
		"openstack/latest/meta_data.json": `{"uuid": "x", "hostname": "web-1.novalocal"}`,
		"meta-data":                       "instance-id: i-1\nlocal-hostname: cidata-host\n",
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, files)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		name, from, err := Hostname(context.Background(), dirProvider(dir), keys)
		if err != nil || from != files || (name != "web-1.novalocal" && name != "cidata-host") {
			t.Errorf("%s: %q %q %v", files, name, from, err)
		}
	}
}

type dirProvider string

func (d dirProvider) Fetch(_ context.Context, key string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(string(d), key))
	if os.IsNotExist(err) {
		return nil, ErrNotFound
	}
	return b, err
}
