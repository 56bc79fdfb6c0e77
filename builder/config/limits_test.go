package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/test/memtest"
)

// loadErr loads paths with opts and returns the only problem reported.
func loadErr(t *testing.T, paths []string, opts ...Option) (*Error, uint64) {
	t.Helper()
	var err error
	alloc := memtest.Allocated(func() {
		var srcs []Source
		if srcs, err = ReadSources(paths, opts...); err == nil {
			_, err = LoadSources(srcs, opts...)
		}
	})
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("loading %v: error %v, want one problem", paths, err)
	}
	return es[0], alloc
}

func TestSpecNotRegularRefusedWithoutBlocking(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "host.yml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "/dev/zero:1:1: spec is not a regular file (a character device)"},
		{fifo, fifo + ":1:1: spec is not a regular file (a FIFO)"},
	} {
		start := time.Now()
		e, alloc := loadErr(t, []string{tc.path})
		if e.Error() != tc.want {
			t.Errorf("error = %q, want %q", e, tc.want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", tc.path, d)
		}
		if alloc > memtest.MiB {
			t.Errorf("%s: allocated %d bytes", tc.path, alloc)
		}
	}
}

func TestSpecFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.yml") // 200 MB, sparse: refused by its size
	if err := os.WriteFile(huge, []byte("kernel: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 200<<20); err != nil {
		t.Fatal(err)
	}
	e, alloc := loadErr(t, []string{huge})
	if want := huge + ":1:1: spec file is larger than the limit of 4 MiB"; e.Error() != want {
		t.Errorf("error = %q, want %q", e, want)
	}
	if alloc > memtest.MiB {
		t.Errorf("200 MB spec: allocated %d bytes", alloc)
	}

	small := filepath.Join(dir, "small.yml")
	if err := os.WriteFile(small, []byte("# "+strings.Repeat("x", 2000)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, _ = loadErr(t, []string{small}, WithMaxFileSize(1000))
	if want := small + ":1:1: spec file is larger than the limit of 1000 bytes"; e.Error() != want {
		t.Errorf("error = %q, want %q", e, want)
	}
	if _, err := ReadSources([]string{small}, WithMaxFileSize(2003)); err != nil {
		t.Errorf("a spec at the limit: %v", err)
	}
}

// mergedContents is the spec: one 1 MiB contents anchor merged into
// n files entries.
func mergedContents(n int) []byte {
	var b strings.Builder
	b.WriteString("files:\n  - &f\n    path: big\n    contents: " + strings.Repeat("a", 1<<20) + "\n")
	for i := 0; i < n; i++ {
		b.WriteString("  - {path: f" + itoa(i) + ", <<: *f}\n")
	}
	return []byte(b.String())
}

func TestSpecExpandedSizeLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "merge.yml")
	if err := os.WriteFile(p, mergedContents(3000), 0o600); err != nil {
		t.Fatal(err)
	}
	e, alloc := loadErr(t, []string{p})
	// The original and 31 merges (the last on line 35) pass 32 MiB.
	want := p + ":35:21: spec expands to more than the limit of 32 MiB once aliases and merge keys are expanded (alias *f passes it)"
	if e.Error() != want {
		t.Errorf("error = %q\nwant    %q", e, want)
	}
	// The file is 1.1 MB; reading and measuring it stays within a few times that.
	if alloc > 24*memtest.MiB {
		t.Errorf("allocated %d MiB", alloc/memtest.MiB)
	}
	t.Logf("allocated %.1f MiB", float64(alloc)/memtest.MiB)

	e, _ = loadErr(t, []string{p}, WithMaxExpandedSize(3<<20))
	if !strings.HasPrefix(e.Error(), p+":6:20: spec expands to more than the limit of 3 MiB") {
		t.Errorf("with a 3 MiB limit: %q", e)
	}
	if _, err := Parse("few.yml", mergedContents(3)); err != nil {
		t.Errorf("three merges of 1 MiB: %v", err)
	}
}

func TestFilesPathEscapeRefusedAtItsPosition(t *testing.T) {
	for _, p := range []string{"../x", "etc/../../x", "/.."} {
		_, err := Parse("f.yml", []byte("files:\n  - path: "+p+"\n    contents: x\n"))
		want := `f.yml:2:11: path "` + p + `" escapes the root: ".." is not allowed`
		if err == nil || err.Error() != want {
			t.Errorf("path %s: error %v, want %s", p, err, want)
		}
	}
	if _, err := Parse("f.yml", []byte("files:\n  - path: etc/..x/y\n    contents: x\n")); err != nil {
		t.Errorf("a name that starts with two dots: %v", err)
	}
}

func TestPolicyLimits(t *testing.T) {
	s, err := Parse("p.yml", []byte("policy:\n  limits:\n    file: 1M\n    host: 2G\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := s.Policy.Sizes()
	want := DefaultLimits
	want.File, want.Host = 1<<20, 2<<30
	if got != want {
		t.Errorf("Sizes() = %+v, want %+v", got, want)
	}
	if (*Policy)(nil).Sizes() != DefaultLimits {
		t.Error("nil policy: not the defaults")
	}
	_, err = Parse("p.yml", []byte("policy:\n  limits:\n    layer: 0\n    image: lots\n    hosts: 1G\n"))
	for _, want := range []string{
		`p.yml:3:12: limits.layer: a limit must be larger than 0`,
		`p.yml:4:12: limits.image: expected a size such as 512M or 2G, got "lots"`,
		`p.yml:5:5: unknown field "hosts" (did you mean "host"?)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to hold %s", err, want)
		}
	}
}
