package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

// TestReadmeCommands runs every command of the README's "Using it" block
// as written, in order, in a scratch directory holding a copy of examples/
// (the image builds run in the repository, where the recipes are), and
// checks each one's exit status and output shape. A command the README
// gains without an expectation here fails the test, so the README cannot
// drift from the binary. Boots are cut short (--timeout 3s): the boot
// itself is TestMinimalBootsAndServes' and TestRawEFI's.
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := readmeCommands(t, string(readme))
	work := t.TempDir()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bulkhead, filepath.Join(work, "bin", "bulkhead")); err != nil {
		t.Fatal(err)
	}
	copyDir(t, filepath.Join(repo, "examples"), filepath.Join(work, "examples"))
	for _, l := range lines {
		if strings.HasPrefix(l.cmd, "make ") {
			// make build made the binary under test; make demo and make
			// test run this suite and the boots.
			t.Logf("%s: not run here", l.cmd)
			continue
		}
		t.Run(l.cmd, func(t *testing.T) {
			exp, ok := expectFor(l.cmd)
			if !ok {
				t.Fatalf("README command %q has no expectation in e2e/readme_test.go: add one", l.cmd)
			}
			cmdline, dir := l.cmd, work
			if strings.Contains(cmdline, "images/*/") {
				dir = repo // the recipes live in the repository
				cmdline = strings.Replace(cmdline, "bin/bulkhead", bulkhead, 1)
				cmdline = strings.ReplaceAll(cmdline, "examples/", filepath.Join(work, "examples")+"/")
			}
			if strings.Contains(cmdline, "host.yml") {
				writeHostSpec(t, string(readme), work)
			}
			port := 0
			if strings.Contains(cmdline, " run ") {
				if port, err = qemu.FreePort(); err != nil {
					t.Fatal(err)
				}
				// The README's 8080 may be taken here; the boot is cut short.
				cmdline = strings.Replace(cmdline, "-p 8080:", "-p "+strconv.Itoa(port)+":", 1) + " --timeout 3s"
			}
			cmd := exec.Command("sh", "-c", cmdline)
			cmd.Dir = dir
			if strings.Contains(cmdline, "host.") {
				// A bundle expires a duration after SOURCE_DATE_EPOCH
				// (default 0): a release build sets it, or its bundle is
				// born expired. Only here: the image recipes' cache keys
				// hold it, and a new one would rebuild the kernel.
				cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", time.Now().Unix()))
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if !exp.codes[code] {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			out := stdout.String()
			if exp.stderr {
				out = stderr.String()
			}
			if port != 0 {
				out = strings.ReplaceAll(out, strconv.Itoa(port), "PORT")
			}
			for _, re := range exp.match {
				if !re.MatchString(out) {
					t.Errorf("output does not match %s:\n%s", re, out)
				}
			}
			for _, p := range l.files {
				if _, err := os.Stat(filepath.Join(work, p)); err != nil {
					t.Errorf("the README says it writes %s: %v", p, err)
				}
			}
		})
	}
}

// readmeLine is one command of the README and the files its comment names.
type readmeLine struct {
	cmd   string
	files []string
}

var fileRE = regexp.MustCompile(`(?:out|examples)/[\w.+-]+|\b[\w-]+\.(?:key|pub|bundle)\b`)

// readmeCommands returns the commands of the README's sh blocks before
// "## What a build does" (the first block, and "Using it").
func readmeCommands(t *testing.T, readme string) []readmeLine {
	t.Helper()
	head, _, ok := strings.Cut(readme, "\n## What a build does")
	if !ok {
		t.Fatal(`README has no "## What a build does" heading`)
	}
	var out []readmeLine
	in := false
	for _, l := range strings.Split(head, "\n") {
		switch {
		case l == "```sh":
			in = true
		case strings.HasPrefix(l, "```"):
			in = false
		case in && strings.TrimSpace(l) != "":
			cmd, comment, _ := strings.Cut(l, " #")
			rl := readmeLine{cmd: strings.TrimSpace(cmd)}
			rl.files = fileRE.FindAllString(comment, -1)
			out = append(out, rl)
		}
	}
	if len(out) < 10 {
		t.Fatalf("found %d README commands: the parse is off", len(out))
	}
	return out
}

// expectation is what a README command must do.
type expectation struct {
	codes  map[int]bool
	stderr bool // match stderr, not stdout
	match  []*regexp.Regexp
}

const (
	hexDigest   = `sha256:[0-9a-f]{64}`  // lock, keygen and verify print digests whole
	shortDigest = `sha256:[0-9a-f]{12}…` // build, scan and image build cut them to 12 hex digits
	size        = `[0-9.]+ [kMGT]?B`     // and sizes for people
)

// expectFor matches a command by its verb (longest prefix first).
func expectFor(cmd string) (expectation, bool) {
	ok0 := map[int]bool{0: true}
	m := func(res ...string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for _, r := range res {
			out = append(out, regexp.MustCompile(r))
		}
		return out
	}
	table := []struct {
		prefix string
		exp    expectation
	}{
		{"bin/bulkhead image build", expectation{ok0, false, m(`(?m)\A(bulkhead/\S+ +` + shortDigest + ` +[\d.]+ [kMG]?B +\S+\n)+\z`)}},
		{"bin/bulkhead validate", expectation{ok0, false, m(`\Aexamples/minimal.yml: ok\n\z`)}},
		{"bin/bulkhead lock", expectation{ok0, false, m(`\A(\S+ ` + hexDigest + `\n){5}\z`)}},
		{"bin/bulkhead build --format update", expectation{ok0, false, m(`(?m)^out/host\.bundle +`+size+` +`+shortDigest+`$`, `(?m)^root 1\.1\.0 `)}},
		{"bin/bulkhead build --format raw-efi,iso-efi", expectation{ok0, false, m(`(?m)^out/minimal\.img +`+size+` +`+shortDigest+`$`, `(?m)^out/minimal\.iso +`)}},
		{"bin/bulkhead build", expectation{ok0, false, m(`(?m)\A(out/\S+ +` + size + ` +` + shortDigest + `\n)+root [0-9a-f]{12} +` + size + ` +root hash [0-9a-f]{12}…\n\z`)}},
		{"bin/bulkhead run qemu", expectation{map[int]bool{124: true}, true, m(
			`(?m)^bulkhead run: booting out/minimal\S* .*under (kvm|tcg)$`,
			`(?m)^bulkhead run: published 127\.0\.0\.1:PORT -> guest port 8080/tcp$`,
			`(?m)^bulkhead run: Ctrl-C powers the guest off; a second Ctrl-C kills it$`,
			`(?m)^bulkhead run: guest ended: timeout`)}},
		{"bin/bulkhead kernel check", expectation{map[int]bool{0: true, 1: true}, false, m(`(?m)^\S+: .*: \d+%$`, `(?m)^score \d+%`)}},
		{"bin/bulkhead scan", expectation{ok0, false, m(`\Aminimal: \d+ packages, \d+ files, `+size+`\n`, `(?m)^result: pass$`)}},
		{"bin/bulkhead keygen", expectation{ok0, false, m(`\Aprivate key release\.key, public key release\.pub, key id ` + hexDigest + `\n\z`)}},
		{"bin/bulkhead verify", expectation{ok0, false, m(`\A(ok    \S+ `+hexDigest+`\n)+(unsigned \S+: no signature covers it \(not in SHA256SUMS\)\n)*\z`, `(?m)^ok    SHA256SUMS `)}},
		{"bin/bulkhead update inspect", expectation{ok0, false, m(`(?m)^version +1\.1\.0$`, `(?m)^payload root +\d+ bytes`)}},
		{"bin/bulkhead update verify", expectation{ok0, false, m(`(?m)^ok +out/host\.bundle`)}},
	}
	for _, e := range table {
		if strings.HasPrefix(cmd, e.prefix) {
			return e.exp, true
		}
	}
	return expectation{}, false
}

// writeHostSpec makes host.yml as the README's update section says:
// examples/minimal.yml plus its boot: and update: lines, with the key
// those lines name.
func writeHostSpec(t *testing.T, readme, work string) {
	t.Helper()
	_, sec, _ := strings.Cut(readme, "\n## Update bundles")
	_, block, ok := strings.Cut(sec, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || !strings.Contains(block, "update:") {
		t.Fatal("README's update section has no yaml block")
	}
	base, err := os.ReadFile(filepath.Join(work, "examples", "minimal.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "host.yml"), append(base, block...), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(work, "release.pub"))
	if err != nil {
		t.Fatalf("host.yml's update.keys names the key bulkhead keygen wrote: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(work, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "keys", "release.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}
