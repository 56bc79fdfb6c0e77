package bless

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
)

// Variable contents as efivarfs shows them: attributes 0x6
// (BOOTSERVICE_ACCESS|RUNTIME_ACCESS), then the UTF-16LE string and its NUL.
var (
	// `\loader\entries\bulkhead-1.0+2-1.conf`
	countPathVar = []byte{0x06, 0x00, 0x00, 0x00, 0x5c, 0x00, 0x6c, 0x00, 0x6f, 0x00, 0x61, 0x00, 0x64, 0x00, 0x65, 0x00, 0x72, 0x00, 0x5c, 0x00, 0x65, 0x00, 0x6e, 0x00, 0x74, 0x00, 0x72, 0x00, 0x69, 0x00, 0x65, 0x00, 0x73, 0x00, 0x5c, 0x00, 0x62, 0x00, 0x75, 0x00, 0x6c, 0x00, 0x6b, 0x00, 0x68, 0x00, 0x65, 0x00, 0x61, 0x00, 0x64, 0x00, 0x2d, 0x00, 0x31, 0x00, 0x2e, 0x00, 0x30, 0x00, 0x2b, 0x00, 0x32, 0x00, 0x2d, 0x00, 0x31, 0x00, 0x2e, 0x00, 0x63, 0x00, 0x6f, 0x00, 0x6e, 0x00, 0x66, 0x00, 0x00, 0x00}
	// 6C3F1D1E-7A45-4F0B-9C39-2D6B0D0B5E11
	partUUIDVar = []byte{0x06, 0x00, 0x00, 0x00, 0x36, 0x00, 0x43, 0x00, 0x33, 0x00, 0x46, 0x00, 0x31, 0x00, 0x44, 0x00, 0x31, 0x00, 0x45, 0x00, 0x2d, 0x00, 0x37, 0x00, 0x41, 0x00, 0x34, 0x00, 0x35, 0x00, 0x2d, 0x00, 0x34, 0x00, 0x46, 0x00, 0x30, 0x00, 0x42, 0x00, 0x2d, 0x00, 0x39, 0x00, 0x43, 0x00, 0x33, 0x00, 0x39, 0x00, 0x2d, 0x00, 0x32, 0x00, 0x44, 0x00, 0x36, 0x00, 0x42, 0x00, 0x30, 0x00, 0x44, 0x00, 0x30, 0x00, 0x42, 0x00, 0x35, 0x00, 0x45, 0x00, 0x31, 0x00, 0x31, 0x00, 0x00, 0x00}
)

func efivars(t *testing.T, vars map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range vars {
		if err := os.WriteFile(filepath.Join(dir, name+"-"+LoaderGUID), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBootCountPath(t *testing.T) {
	dir := efivars(t, map[string][]byte{"LoaderBootCountPath": countPathVar})
	got, err := BootCountPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := `\loader\entries\bulkhead-1.0+2-1.conf`; got != want {
		t.Errorf("BootCountPath = %q, want %q", got, want)
	}
}

func TestBootCountPathAbsent(t *testing.T) {
	dir := efivars(t, map[string][]byte{"LoaderDevicePartUUID": partUUIDVar})
	if _, err := BootCountPath(dir); !errors.Is(err, ErrNotCounted) {
		t.Errorf("BootCountPath without the variable: %v, want ErrNotCounted", err)
	}
}

func TestESPPartUUID(t *testing.T) {
	dir := efivars(t, map[string][]byte{"LoaderDevicePartUUID": partUUIDVar})
	got, err := ESPPartUUID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "6c3f1d1e-7a45-4f0b-9c39-2d6b0d0b5e11"; got != want {
		t.Errorf("ESPPartUUID = %q, want %q", got, want)
	}
	if _, err := ESPPartUUID(t.TempDir()); err == nil {
		t.Error("ESPPartUUID without the variable succeeded")
	}
}

func TestMalformedVariable(t *testing.T) {
	for _, b := range [][]byte{{0x06, 0x00}, {0x06, 0x00, 0x00, 0x00, 0x41}} {
		dir := efivars(t, map[string][]byte{"LoaderBootCountPath": b})
		if s, err := BootCountPath(dir); err == nil {
			t.Errorf("BootCountPath(% x) = %q, want an error", b, s)
		}
	}
}

// esp returns an ESP tree with the given entry files.
func esp(t *testing.T, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "loader", "entries")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.WriteFile(filepath.Join(dir, e), []byte("title "+e+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func entries(t *testing.T, root string) []string {
	t.Helper()
	return testfile.Names(t, filepath.Join(root, "loader", "entries"))
}

func TestBless(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"bulkhead-1.0+2-1.conf", "bulkhead-1.0.conf"},
		{"bulkhead-1.0+3.conf", "bulkhead-1.0.conf"},
		{"bulkhead-1.0+0-3.conf", "bulkhead-1.0.conf"},
		{"a+b+1-2.conf", "a+b.conf"},
	} {
		root := esp(t, tc.file, "bulkhead-0.9.conf")
		got, err := Bless(root, `\loader\entries\`+tc.file)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if want := "/loader/entries/" + tc.want; got != want {
			t.Errorf("%s: Bless = %q, want %q", tc.file, got, want)
		}
		b, err := os.ReadFile(filepath.Join(root, "loader", "entries", tc.want))
		if err != nil || string(b) != "title "+tc.file+"\n" {
			t.Errorf("%s: blessed entry holds %q, %v", tc.file, b, err)
		}
		if names := entries(t, root); len(names) != 2 {
			t.Errorf("%s: entries after Bless: %q", tc.file, names)
		}
	}
}

func TestBlessAlreadyBlessed(t *testing.T) {
	root := esp(t, "bulkhead-1.0.conf")
	for _, p := range []string{`\loader\entries\bulkhead-1.0.conf`, `\loader\entries\bulkhead-1.0+2-1.conf`, "/loader/entries/bulkhead-1.0+x.conf"} {
		got, err := Bless(root, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got != "/loader/entries/bulkhead-1.0.conf" && got != "/loader/entries/bulkhead-1.0+x.conf" {
			t.Errorf("%s: Bless = %q", p, got)
		}
	}
	if names := entries(t, root); len(names) != 1 || names[0] != "bulkhead-1.0.conf" {
		t.Errorf("entries: %q", names)
	}
}

func TestBlessMissingEntry(t *testing.T) {
	root := esp(t)
	if _, err := Bless(root, `\loader\entries\bulkhead-1.0+2-1.conf`); err == nil {
		t.Error("Bless of a missing entry succeeded")
	}
}

func TestBlessRefusesOtherPaths(t *testing.T) {
	root := esp(t, "x+1.conf")
	if err := os.WriteFile(filepath.Join(root, "loader", "evil+1.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		`\loader\evil+1.conf`,
		`\loader\entries\..\evil+1.conf`,
		`\EFI\BOOT\x+1.conf`,
		`\loader\entries\sub\x+1.conf`,
		`\loader\entries\x+1.efi`,
		`\loader\entries\`,
		``,
	} {
		if got, err := Bless(root, p); err == nil {
			t.Errorf("Bless(%q) = %q, want an error", p, got)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "loader", "evil+1.conf")); err != nil {
		t.Errorf("file outside loader/entries touched: %v", err)
	}
}

func TestUncounted(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		counted  bool
	}{
		{"a+3.conf", "a.conf", true},
		{"a+2-1.conf", "a.conf", true},
		{"a.conf", "a.conf", false},
		{"+3.conf", "+3.conf", false},
		{"a+-1.conf", "a+-1.conf", false},
		{"a+1-.conf", "a+1-.conf", false},
		{"a+1-2-3.conf", "a+1-2-3.conf", false},
		{"a+3", "a+3", false},
	} {
		got, counted := Uncounted(tc.in)
		if got != tc.want || counted != tc.counted {
			t.Errorf("Uncounted(%q) = %q, %v; want %q, %v", tc.in, got, counted, tc.want, tc.counted)
		}
	}
}

func TestMarkBadAndFallbacks(t *testing.T) {
	esp := t.TempDir()
	dir := filepath.Join(esp, EntriesDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"bulkhead-2+2-1.conf", "bulkhead-1.conf", "bulkhead-0+0-3.conf", ".tmp-x.conf"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("title x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fb, err := Fallbacks(esp, `\loader\entries\bulkhead-2+2-1.conf`)
	if err != nil || len(fb) != 1 || fb[0] != "bulkhead-1.conf" {
		t.Fatalf("Fallbacks = %v, %v; want the blessed bulkhead-1 only", fb, err)
	}
	got, err := MarkBad(esp, `\loader\entries\bulkhead-2+2-1.conf`)
	if err != nil || got != "/loader/entries/bulkhead-2+0-1.conf" {
		t.Fatalf("MarkBad = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bulkhead-2+0-1.conf")); err != nil {
		t.Fatal(err)
	}
	if _, err := MarkBad(esp, "/loader/entries/bulkhead-1.conf"); err == nil {
		t.Fatal("MarkBad of a blessed entry succeeded")
	}
	if _, err := MarkBad(esp, "/EFI/boot/x.conf"); err == nil {
		t.Fatal("MarkBad outside loader/entries succeeded")
	}
	// Only the bad and the exhausted entry are left: no fallback.
	os.Remove(filepath.Join(dir, "bulkhead-1.conf"))
	if fb, err := Fallbacks(esp, "/loader/entries/bulkhead-2+0-1.conf"); err != nil || len(fb) != 0 {
		t.Fatalf("Fallbacks = %v, %v; want none", fb, err)
	}
}

// TestUKIEntries: unified kernel images in EFI/Linux carry the counter in
// their file name; blessing, marking bad and the fallbacks treat them as
// entries, beside the type #1 entries, and nothing else in EFI/Linux.
func TestUKIEntries(t *testing.T) {
	esp := t.TempDir()
	for _, p := range []string{"EFI/Linux/bulkhead-2+2-1.efi", "EFI/Linux/bulkhead-3+0-3.efi", "EFI/Linux/notes.txt",
		"loader/entries/bulkhead-1.conf", "loader/entries/bulkhead-9+1.efi"} {
		if err := os.MkdirAll(filepath.Join(esp, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(esp, p), []byte("MZ"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fb, err := Fallbacks(esp, `\EFI\Linux\bulkhead-2+2-1.efi`)
	if err != nil || strings.Join(fb, " ") != "bulkhead-1.conf" {
		t.Fatalf("Fallbacks = %v, %v; want bulkhead-1.conf", fb, err)
	}
	if got, err := MarkBad(esp, `\EFI\Linux\bulkhead-2+2-1.efi`); err != nil || got != "/EFI/Linux/bulkhead-2+0-1.efi" {
		t.Fatalf("MarkBad = %q, %v", got, err)
	}
	if got, err := Bless(esp, `\EFI\Linux\bulkhead-2+0-1.efi`); err != nil || got != "/EFI/Linux/bulkhead-2.efi" {
		t.Fatalf("Bless = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(esp, "EFI/Linux/bulkhead-2.efi")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{`\loader\entries\bulkhead-9+1.efi`, `\EFI\Linux\notes.txt`, `\EFI\Linux\x+1.conf`, `\EFI\BOOT\x+1.efi`} {
		if _, err := Bless(esp, p); err == nil {
			t.Errorf("Bless(%q) succeeded", p)
		}
	}
	if l, d, ok := Tries("bulkhead-2+2-1.efi"); !ok || l != 2 || d != 1 {
		t.Errorf("Tries = %d %d %v", l, d, ok)
	}
}
