package htmlreport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/scan"
)

// scanJSON is a scan.json as bulkhead writes it (trimmed to what the page
// uses): components, files, packages, a secret and a violation.
func scanJSON(t *testing.T) []byte {
	t.Helper()
	var files []string
	for i := 0; i < 450; i++ { // more than maxFileBoxes in one component
		files = append(files, fmt.Sprintf(`{"path":"lib/modules/m%d.ko","size":%d,"origin":"bulkhead/kernel:6.1-cloud@sha256:21f6"}`, i, 1000+i))
	}
	files = append(files,
		`{"path":"sbin/init","size":27000000,"origin":"bulkhead/init:dev@sha256:fd6b"}`,
		`{"path":"usr/lib/bulkhead/stage0","size":4000000,"origin":"bulkhead/init:dev@sha256:fd6b"}`,
		`{"path":"usr/bin/runc","size":9900000,"origin":"bulkhead/runc:v1.5.3"}`,
		`{"path":"etc/hostname","size":7,"origin":"spec"}`,
		`{"path":"etc/empty","size":0,"origin":"empty"}`)
	var kernel int64
	for i := 0; i < 450; i++ {
		kernel += int64(1000 + i)
	}
	total := kernel + 27000000 + 4000000 + 9900000 + 7
	return []byte(fmt.Sprintf(`{"name":"edge","packages":[{"kind":"go-module","name":"github.com/containerd/containerd/v2","version":"v2.4.2"},
{"kind":"deb","name":"linux-image-cloud-amd64","version":"6.1.1","ecosystem":"Debian:12"}],
"vulndb":false,"vulnerabilities":[],"secrets":[{"rule":"private-key","where":"etc/key.pem","line":1,"excerpt":"-----BEGIN <redacted>","fingerprint":"ab12","status":"fail"}],
"minimality":{"total_size":%d,"files":[%s],"flagged":[],"entrypoints":[],"vestigial":[],
"components":[{"origin":"bulkhead/init:dev@sha256:fd6b","files":2,"size":31000000},{"origin":"bulkhead/runc:v1.5.3","files":1,"size":9900000},
{"origin":"bulkhead/kernel:6.1-cloud@sha256:21f6","files":450,"size":%d},{"origin":"spec","files":1,"size":7},{"origin":"empty","files":1,"size":0}]},
"outside_files":[],"violations":["root is 40 MiB, over policy.max_size 32 MiB"]}`, total, strings.Join(files, ","), kernel))
}

// TestPageInChromium renders the page in a real headless browser and
// checks what it laid out against scan.json: one treemap element per
// component, the byte total, box areas in proportion to sizes, and every
// package and failed gate listed.
func TestPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is needed (scripts/install-deps)")
	}
	var r scan.Report
	if err := json.Unmarshal(scanJSON(t), &r); err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := Write(&page, &r); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(page.Bytes(), []byte("http://")) || bytes.Contains(page.Bytes(), []byte("https://")) || bytes.Contains(page.Bytes(), []byte(" src=")) {
		t.Error("the page refers to something outside itself")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "scan.html")
	if err := os.WriteFile(path, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--dump-dom", "file://"+path)
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	out := regexp.MustCompile(`<output id="rendered"[^>]*>`).Find(dom)
	if out == nil {
		t.Fatalf("the page's script did not run:\n%.2000s", dom)
	}
	attr := func(name string) string {
		m := regexp.MustCompile(name + `="([^"]*)"`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no %s in %s", name, out)
		}
		return string(m[1])
	}
	m := r.Minimality
	if got := attr("data-components"); got != strconv.Itoa(len(m.Components)) {
		t.Errorf("treemap elements %s, want one per component (%d)", got, len(m.Components))
	}
	if got := attr("data-bytes"); got != strconv.FormatInt(m.TotalSize, 10) {
		t.Errorf("treemap bytes %s, scan.json total_size %d", got, m.TotalSize)
	}
	if e, err := strconv.ParseFloat(attr("data-area-error"), 64); err != nil || e > 0.01 {
		t.Errorf("a component's box area is off its share by %v (%v)", e, err)
	}
	if w, _ := strconv.Atoi(attr("data-width")); w < 500 {
		t.Errorf("the treemap is %d px wide: not laid out", w)
	}
	for _, c := range m.Components {
		if !bytes.Contains(dom, []byte(fmt.Sprintf(`data-origin="%s" data-size="%d"`, c.Origin, c.Size))) {
			t.Errorf("no treemap element for %s", c.Origin)
		}
	}
	if n := bytes.Count(dom, []byte(`class="file"`)); n != maxFileBoxes+1+2+1+1 {
		t.Errorf("%d file boxes, want %d (the kernel's largest, one for the rest, the others' non-empty files)", n, maxFileBoxes+5)
	}
	for _, want := range []string{"github.com/containerd/containerd/v2", "linux-image-cloud-amd64", "root is 40 MiB, over policy.max_size 32 MiB",
		"secret private-key at etc/key.pem:1", "50 smaller files", "gates failed: 2"} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
}

// TestSquarify: the boxes tile the box exactly and keep their order.
func TestSquarify(t *testing.T) {
	items := []item{{"a", 6}, {"b", 6}, {"c", 4}, {"d", 3}, {"e", 2}, {"f", 2}, {"g", 1}, {"z", 0}}
	sorted, boxes := squarify(items, 1.5)
	var area float64
	for i, b := range boxes {
		area += b.W * b.H
		want := float64(sorted[i].Size) / 24 * 100 * 100
		if d := b.W*b.H - want; d > 1e-6 || d < -1e-6 {
			t.Errorf("%s: area %v, want %v", sorted[i].Label, b.W*b.H, want)
		}
		if b.X < -1e-9 || b.Y < -1e-9 || b.X+b.W > 100+1e-9 || b.Y+b.H > 100+1e-9 {
			t.Errorf("%s: %+v leaves the box", sorted[i].Label, b)
		}
	}
	if area < 100*100-1e-6 || area > 100*100+1e-6 {
		t.Errorf("the boxes cover %v of 10000", area)
	}
	again, boxes2 := squarify(items, 1.5)
	for i := range boxes {
		if boxes[i] != boxes2[i] || again[i] != sorted[i] {
			t.Fatal("two layouts of the same items differ")
		}
	}
}
