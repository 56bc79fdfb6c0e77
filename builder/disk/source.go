package disk

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Source is the content of one input file: a file on the build machine
// (Path), a section of one (Path, Offset and Size, Section set) or bytes
// (Data). The zero Source is empty.
type Source struct {
	Path    string
	Data    []byte
	Section bool
	Offset  int64
	Size    int64
}

// FromFile is the content of the file at path.
func FromFile(path string) Source { return Source{Path: path} }

// FromFileSection is size bytes of the file at path from offset: a file
// inside a layer blob of the store.
func FromFileSection(path string, offset, size int64) Source {
	return Source{Path: path, Section: true, Offset: offset, Size: size}
}

// FromBytes is the content b.
func FromBytes(b []byte) Source { return Source{Data: b} }

// IsZero reports whether s names no content.
func (s Source) IsZero() bool { return s.Path == "" && s.Data == nil }

// String names s in messages.
func (s Source) String() string {
	if s.Path != "" {
		return s.Path
	}
	return fmt.Sprintf("<%d bytes>", len(s.Data))
}

// read returns the whole content.
func (s Source) read() ([]byte, error) {
	if s.Path == "" {
		return s.Data, nil
	}
	if s.Section {
		r, done, err := s.open()
		if err != nil {
			return nil, err
		}
		defer done()
		return io.ReadAll(r)
	}
	return os.ReadFile(s.Path)
}

// size returns the content's length.
func (s Source) size() (int64, error) {
	if s.Path == "" {
		return int64(len(s.Data)), nil
	}
	st, err := os.Stat(s.Path)
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", s.Path)
	}
	if s.Section {
		if s.Offset < 0 || s.Size < 0 || s.Offset+s.Size > st.Size() {
			return 0, fmt.Errorf("%s: %d bytes at %d lie outside its %d", s.Path, s.Size, s.Offset, st.Size())
		}
		return s.Size, nil
	}
	return st.Size(), nil
}

// open returns a reader of the content and a function that releases it.
func (s Source) open() (io.Reader, func(), error) {
	if s.Path == "" {
		return bytes.NewReader(s.Data), func() {}, nil
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, nil, err
	}
	if s.Section {
		return io.NewSectionReader(f, s.Offset, s.Size), func() { f.Close() }, nil
	}
	return f, func() { f.Close() }, nil
}
