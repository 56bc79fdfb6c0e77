package logline

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestPrefixesWholeLines(t *testing.T) {
	var a, b bytes.Buffer
	w := New("[web] ", &a, &b)
	for _, chunk := range []string{"hel", "lo\nwor", "ld\r\n", "\n", "tail"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	want := "[web] hello\n[web] world\n[web] \n"
	if a.String() != want {
		t.Fatalf("before flush got %q, want %q", a.String(), want)
	}
	w.Flush()
	want += "[web] tail\n"
	if a.String() != want || b.String() != want {
		t.Fatalf("got %q and %q, want %q", a.String(), b.String(), want)
	}
}

func TestCutsLongLines(t *testing.T) {
	var out bytes.Buffer
	w := New("p: ", &out)
	long := strings.Repeat("x", maxLine+10)
	w.Write([]byte(long + "\n"))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "p: "+long[:maxLine] || lines[1] != "p: "+long[maxLine:] {
		t.Fatalf("got %d lines: %q", len(lines), out.String())
	}
}

func TestSetSinks(t *testing.T) {
	var early, late bytes.Buffer
	w := New("i: ", &early)
	w.Write([]byte("one\n"))
	w.SetSinks(&late)
	w.Write([]byte("two\n"))
	if early.String() != "i: one\n" || late.String() != "i: two\n" {
		t.Fatalf("early %q, late %q", early.String(), late.String())
	}
}

func TestLockedKeepsLinesWhole(t *testing.T) {
	var out bytes.Buffer
	console := Locked(&out)
	var wg sync.WaitGroup
	for _, p := range []string{"[a] ", "[b] ", "[c] "} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := New(p, console)
			for range 200 {
				w.Write([]byte("0123456789"))
				w.Write([]byte("abcdef\n"))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 600 {
		t.Fatalf("got %d lines, want 600", len(lines))
	}
	for _, l := range lines {
		if len(l) != len("[a] 0123456789abcdef") || !strings.HasSuffix(l, "0123456789abcdef") {
			t.Fatalf("torn line %q", l)
		}
	}
}
