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
