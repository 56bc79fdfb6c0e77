package output

import "os"

// File is the open temporary file, for writers that need random access
// (WriteAt, Truncate) such as disk image writers. Do not close it or rename
// it: Commit and Abort do. After File, Digest reports no digest.
func (a *AtomicFile) File() *os.File {
	a.raw = true
	return a.f
}
