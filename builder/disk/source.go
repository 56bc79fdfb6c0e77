package disk

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Source is the content of one input file: a file on the build machine
// (Path) or bytes (Data). The zero Source is empty.
type Source struct {
	Path string
	Data []byte
}

// FromFile is the content of the file at path.
func FromFile(path string) Source { return Source{Path: path} }

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
	return f, func() { f.Close() }, nil
}
