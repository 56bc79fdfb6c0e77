package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBashCompletion sources the generated script in a real bash and
// asks it what it completes.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed (scripts/install-deps)")
	}
	out, errOut, code := runCLI("completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, errOut)
	}
	script := filepath.Join(t.TempDir(), "bulkhead.bash")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		words string
		want  string
	}{
		{"bulkhead ima", "image"},
		{"bulkhead image ''", "build ls rm prune save load push pull bump"},
		{"bulkhead build --fo", "--format"},
		{"bulkhead validate --js", "--json"},
		{"bulkhead image ls --st", "--store"},
		{"bulkhead kernel check --min", "--min-score"},
		{"bulkhead completion ''", "bash zsh fish"},
	} {
		words := strings.Fields(tc.words)
		cword := len(words) - 1
		cmd := exec.Command("bash", "-c", `source "$1"; COMP_WORDS=(`+tc.words+`); COMP_CWORD=`+itoa(cword)+`; _bulkhead; echo "${COMPREPLY[*]}"`, "bash", script)
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", tc.words, err)
		}
		if strings.TrimSpace(string(got)) != tc.want {
			t.Errorf("%s: completes %q, want %q", tc.words, strings.TrimSpace(string(got)), tc.want)
		}
	}
	for _, shell := range []string{"zsh", "fish"} {
		if out, _, code := runCLI("completion", shell); code != 0 || !strings.Contains(out, "bulkhead") {
			t.Errorf("completion %s: exit %d", shell, code)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestManPage renders the generated page with groff, warnings on: it must
// be clean troff and hold every command's help.
func TestManPage(t *testing.T) {
	out, errOut, code := runCLI("man")
	if code != 0 {
		t.Fatalf("man: exit %d: %s", code, errOut)
	}
	if _, err := exec.LookPath("groff"); err != nil {
		t.Fatal("groff is needed (scripts/install-deps: groff-base)")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww")
	cmd.Stdin = strings.NewReader(out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	page, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("groff: %v: %s", err, stderr.String())
	}
	text := stripOverstrike(string(page))
	for _, c := range commands() {
		if !strings.Contains(text, "Usage: bulkhead "+c.name) && c.name != "host" {
			t.Errorf("the page lacks %s's usage", c.name)
		}
	}
	for _, want := range []string{"image ls", "-max-spec-size SIZE", "BULKHEAD_STORE"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	var again bytes.Buffer
	run(context.Background(), []string{"man"}, &again, &again)
	if again.String() != out {
		t.Error("two runs of man differ")
	}
}

// stripOverstrike removes groff's bold and underline (X\bX, _\bX).
func stripOverstrike(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i := 0; i < len(r); i++ {
		if i+1 < len(r) && r[i+1] == '\b' {
			i++
			continue
		}
		b.WriteRune(r[i])
	}
	return b.String()
}
