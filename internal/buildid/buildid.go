// Package buildid tells which build of bulkhead is running, for caches
// whose entries are only good for the program that wrote them.
package buildid

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// Program is the Go build ID of the running program, or, when it
// has none, the sha256 of its file. It is read once per process: a build
// asks for each of its caches.
var Program = sync.OnceValues(program)

func program() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if id, err := GoBuildID(exe); err == nil && id != "" {
		return "buildid:" + id, nil
	}
	sum, _, err := regfile.SHA256(exe)
	if err != nil {
		return "", err
	}
	return "sha256:" + sum, nil
}

// GoBuildID reads the Go build ID note of an ELF program: a note named
// "Go" of type 4 in section .note.go.buildid.
func GoBuildID(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil || s.Size > 1<<10 {
		return "", fmt.Errorf("no Go build ID")
	}
	b, err := s.Data()
	if err != nil {
		return "", err
	}
	if len(b) < 16 {
		return "", fmt.Errorf("short Go build ID note")
	}
	nameSize, descSize, typ := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
	if nameSize != 4 || typ != 4 || string(b[12:16]) != "Go\x00\x00" || uint64(descSize) > uint64(len(b)-16) {
		return "", fmt.Errorf("malformed Go build ID note")
	}
	return string(b[16 : 16+descSize]), nil
}
