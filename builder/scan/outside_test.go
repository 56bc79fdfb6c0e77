package scan

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

func TestOutsideFilesListedAndForbidden(t *testing.T) {
	tr := rootfs.New()
	tr.Put(&rootfs.Entry{Path: "etc/shadow", Kind: rootfs.KindFile, Mode: 0o600, Content: rootfs.Content{Data: []byte("x")}, Size: 1})
	outside := []rootfs.OutsideFile{{Path: "etc/shadow", Source: "/etc/shadow", Spec: "host.yml:9:5"}}
	in := Input{Name: "h", Tree: tr, Outside: outside, Now: time.Unix(0, 0)}
	r := run(t, in)
	if len(r.OutsideFiles) != 1 || r.OutsideFiles[0] != outside[0] || len(r.Failed()) != 0 {
		t.Fatalf("report lists %+v, fails %v", r.OutsideFiles, r.Failed())
	}
	var sum bytes.Buffer
	r.Summary(&sum)
	if !strings.Contains(sum.String(), "files from outside the spec's directory: 1\n  /etc/shadow: /etc/shadow (host.yml:9:5)") {
		t.Errorf("summary:\n%s", sum.String())
	}
	js, err := r.JSON()
	if err != nil || !strings.Contains(string(js), `"outside_files"`) {
		t.Errorf("scan.json: %v\n%s", err, js)
	}
	in.Policy = &config.Policy{Forbid: []string{"outside-files", "devices"}}
	r = run(t, in)
	want := "forbidden (outside-files): /etc/shadow is read from /etc/shadow (host.yml:9:5)"
	if f := r.Failed(); len(f) != 1 || f[0] != want {
		t.Errorf("Failed() = %v, want %q", f, want)
	}
}

// The image: /dev/mem 0666, /dev/sda and a file with file
// capabilities come through a layer; the scan flags them and
// policy.forbid fails on them.
func TestDevicesAndCapabilitiesFlagged(t *testing.T) {
	tr := rootfs.New()
	tr.Put(&rootfs.Entry{Path: "dev/mem", Kind: rootfs.KindCharDev, Mode: 0o666, Major: 1, Minor: 1})
	tr.Put(&rootfs.Entry{Path: "dev/sda", Kind: rootfs.KindBlockDev, Mode: 0o660, Major: 8})
	tr.Put(&rootfs.Entry{Path: "usr/bin/ping", Kind: rootfs.KindFile, Mode: 0o755, Size: 1, Content: rootfs.Content{Data: []byte("x")},
		Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}})
	in := Input{Name: "h", Tree: tr, Now: time.Unix(0, 0), Policy: &config.Policy{Forbid: []string{"devices", "capabilities", "world-writable"}}}
	r := run(t, in)
	want := []string{
		"forbidden (devices): /dev/mem is device-node",
		"forbidden (devices): /dev/sda is device-node",
		"forbidden (capabilities): /usr/bin/ping is file-capabilities",
		"forbidden (world-writable): /dev/mem is world-writable",
	}
	if got := r.Failed(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Failed() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
