// Package testfile changes files for tests of what damaged input does.
package testfile

import (
	"os"
	"testing"
)

// FlipByte inverts the byte at off of the file p (counted from the end
// when off is negative).
func FlipByte(tb testing.TB, p string, off int64) {
	tb.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		st, err := f.Stat()
		if err != nil {
			tb.Fatal(err)
		}
		off += st.Size()
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		tb.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		tb.Fatal(err)
	}
}
