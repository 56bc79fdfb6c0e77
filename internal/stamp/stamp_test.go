package stamp

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// later is a clock past the settle margin of every file a test writes.
func later() time.Time { return time.Now().Add(time.Minute) }

// book opens a book in a fresh directory with a fresh key, on the clock
// later.
func book(t *testing.T) *Book {
	t.Helper()
	dir := t.TempDir()
	b := Open(filepath.Join(dir, "stamps"), filepath.Join(dir, "config", "stamp.key"), WithClock(later))
	if b == nil {
		t.Fatal("no book")
	}
	return b
}

// file writes content to a new file and opens it.
func file(t *testing.T, content string) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return reopen(t, path)
}

func reopen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// stamped records f for subject as a verification would.
func stamped(t *testing.T, b *Book, f *os.File, subject string) {
	t.Helper()
	b.record(b.begin(f), subject)
	if !b.holds(f, subject) {
		t.Fatal("a file just stamped does not hold its stamp")
	}
}

func TestStampHoldsForTheSameFile(t *testing.T) {
	b := book(t)
	f := file(t, "layer bytes")
	if b.holds(f, "layer x") {
		t.Fatal("holds before anything was recorded")
	}
	stamped(t, b, f, "layer x")
	// Another open of the same file, by another book on the same key.
	again := Open(b.dir, filepath.Join(filepath.Dir(b.dir), "config", "stamp.key"))
	if !again.holds(reopen(t, f.Name()), "layer x") {
		t.Fatal("the stamp does not hold for the file opened again")
	}
	if b.holds(f, "layer y") {
		t.Fatal("a stamp holds for another subject")
	}
	var none *Book
	if none.holds(f, "layer x") {
		t.Fatal("a nil book holds a stamp")
	}
}

func TestChangedFileLosesItsStamp(t *testing.T) {
	for _, tc := range []struct {
		what   string
		change func(t *testing.T, path string)
	}{
		{"rewritten with the same bytes", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("layer bytes"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"one byte changed", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("L"), 0)
			f.Close()
		}},
		{"replaced by a rename", func(t *testing.T, path string) {
			tmp := path + ".new"
			if err := os.WriteFile(tmp, []byte("layer bytes"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"copied with its times", func(t *testing.T, path string) {
			tmp := path + ".copy"
			if out, err := exec.Command("cp", "-a", path, tmp).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v: %s", err, out)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"times set back", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			b := book(t)
			f := file(t, "layer bytes")
			stamped(t, b, f, "layer x")
			tc.change(t, f.Name())
			if b.holds(reopen(t, f.Name()), "layer x") {
				t.Fatal("the stamp still holds")
			}
		})
	}
}

func TestStampIsRefusedWhenNotOurs(t *testing.T) {
	b := book(t)
	f := file(t, "layer bytes")
	stamped(t, b, f, "layer x")
	good, err := os.ReadFile(b.path("layer x"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := statOf(f)
	if err != nil {
		t.Fatal(err)
	}
	st.sum, _ = checksum(f, st.size)
	other := book(t) // another key
	wrongSum := st
	wrongSum.sum ^= 1
	for _, tc := range []struct {
		what  string
		stamp []byte
	}{
		{"made with another key", other.seal(st, "layer x")},
		{"made for another subject", b.seal(st, "layer y")},
		{"a checksum the bytes do not have", b.seal(wrongSum, "layer x")},
		{"a field changed after sealing", func() []byte {
			s := bytes.Clone(good)
			s[len(magic)+8] ^= 1 // the inode
			return s
		}()},
		{"cut short", good[:len(good)-1]},
		{"a byte too long", append(bytes.Clone(good), 0)},
		{"empty", nil},
	} {
		t.Run(tc.what, func(t *testing.T) {
			if err := os.WriteFile(b.path("layer x"), tc.stamp, 0o600); err != nil {
				t.Fatal(err)
			}
			if b.holds(f, "layer x") {
				t.Fatal("the stamp holds")
			}
		})
	}
	// The good stamp back: it holds again, so the cases above failed for
	// what they changed.
	if err := os.WriteFile(b.path("layer x"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if !b.holds(f, "layer x") {
		t.Fatal("the good stamp does not hold")
	}
}

func TestFreshFileIsNotStamped(t *testing.T) {
	// On the real clock a file written just now is within the settle
	// margin: a change in the same clock tick could keep its times.
	dir := t.TempDir()
	b := Open(filepath.Join(dir, "stamps"), filepath.Join(dir, "stamp.key"))
	f := file(t, "layer bytes")
	b.record(b.begin(f), "layer x")
	if b.holds(f, "layer x") {
		t.Fatal("a file changed within the margin was stamped")
	}
}

func TestFileChangedDuringVerificationIsNotStamped(t *testing.T) {
	b := book(t)
	f := file(t, "layer bytes")
	p := b.begin(f)
	if err := os.WriteFile(f.Name(), []byte("other bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.record(p, "layer x")
	if _, err := os.Stat(b.path("layer x")); !os.IsNotExist(err) {
		t.Fatalf("a stamp was written for a file that changed: %v", err)
	}
}

func TestForgetRemovesTheStamp(t *testing.T) {
	b := book(t)
	f := file(t, "layer bytes")
	stamped(t, b, f, "layer x")
	b.Forget("layer x")
	if b.holds(f, "layer x") {
		t.Fatal("a forgotten stamp holds")
	}
}

func TestKeyMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "stamp.key")
	if Open(filepath.Join(dir, "stamps"), key) == nil {
		t.Fatal("no book with a new key")
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != keySize {
		t.Fatalf("key made as %v, %v", fi.Mode(), err)
	}
	first, _ := os.ReadFile(key)
	if Open(filepath.Join(dir, "stamps"), key) == nil {
		t.Fatal("no book with the key made before")
	}
	if again, _ := os.ReadFile(key); !bytes.Equal(first, again) {
		t.Fatal("the key changed when opened again")
	}
	for _, tc := range []struct {
		what  string
		spoil func() error
	}{
		{"readable by others", func() error { return os.Chmod(key, 0o644) }},
		{"of another user", func() error {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the key to another user")
			}
			return os.Chown(key, 4242, 4242)
		}},
		{"short", func() error { return os.WriteFile(key, first[:keySize-1], 0o600) }},
		{"a directory", func() error {
			if err := os.Remove(key); err != nil {
				return err
			}
			return os.Mkdir(key, 0o700)
		}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			os.RemoveAll(key)
			if err := os.WriteFile(key, first, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := tc.spoil(); err != nil {
				t.Fatal(err)
			}
			if Open(filepath.Join(dir, "stamps"), key) != nil {
				t.Fatal("a book was opened with the key")
			}
		})
	}
}

func TestOnlyLocalFileSystems(t *testing.T) {
	const (
		nfs  = 0x6969
		fuse = 0x65735546
		ext4 = 0xef53
	)
	if localFS(nfs) || localFS(fuse) || !localFS(ext4) {
		t.Fatal("wrong file system verdicts")
	}
}

func TestCheckVerifiesOnceThenTakesTheStamp(t *testing.T) {
	b := book(t)
	f := file(t, "layer bytes")
	runs := 0
	verify := func() error { runs++; return nil }
	for range 3 {
		if err := b.Check(f, "layer x", verify); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 1 {
		t.Fatalf("verified %d times, want once", runs)
	}
	// A failed verification stamps nothing and is returned.
	g := file(t, "other bytes")
	bad := errors.New("hashes to something else")
	for range 2 {
		if err := b.Check(g, "layer y", func() error { runs++; return bad }); err != bad {
			t.Fatalf("got %v, want the verification's error", err)
		}
	}
	if runs != 3 {
		t.Fatalf("a refused file was not verified each time (%d runs)", runs)
	}
	// No book: every check verifies.
	var none *Book
	for range 2 {
		none.Check(f, "layer x", verify)
	}
	if runs != 5 {
		t.Fatalf("without a book %d runs, want 5", runs)
	}
}
