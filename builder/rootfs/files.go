package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// Default modes of files entries (LinuxKit).
const (
	defaultFileMode = 0o600
	defaultDirMode  = 0o700
)

// files applies the files section, in order, over everything else.
func (a *assembler) files() error {
	for i := range a.spec.Files {
		f := &a.spec.Files[i]
		if err := a.file(f); err != nil {
			return config.Errorf(f.Pos, "files %q: %w", f.Path, err)
		}
	}
	return nil
}

func (a *assembler) file(f *config.File) error {
	p, ok := Clean(f.Path)
	if !ok {
		return errEscape
	}
	if p == "" {
		return errors.New("path names the root directory")
	}
	e, skip, err := a.fileEntry(f)
	if err != nil || skip {
		return err
	}
	e.Path = p
	if e.Mode, err = fileMode(f); err != nil {
		return err
	}
	if e.UID, err = a.fileID(f.UID); err != nil {
		return fmt.Errorf("uid: %w", err)
	}
	if e.GID, err = a.fileID(f.GID); err != nil {
		return fmt.Errorf("gid: %w", err)
	}
	e.ModTime = a.o.epoch
	e.Origin = "spec:" + f.Pos.String()
	a.fileParents(e)
	if old := a.t.entries[p]; old != nil && old.Kind == KindDir && e.Kind == KindDir {
		a.t.entries[p] = e // a directory keeps its contents
		return nil
	}
	a.t.Put(e)
	return nil
}

// fileEntry builds the entry's kind and content; skip is true for an
// optional source that is missing.
func (a *assembler) fileEntry(f *config.File) (e *Entry, skip bool, err error) {
	set := 0
	for _, b := range []bool{f.Directory, f.Symlink != "", f.Contents != nil, f.Source != "", f.Metadata != ""} {
		if b {
			set++
		}
	}
	if set > 1 {
		return nil, false, errors.New("directory, symlink, contents, source and metadata are mutually exclusive")
	}
	switch {
	case f.Directory:
		return &Entry{Kind: KindDir}, false, nil
	case f.Symlink != "":
		return &Entry{Kind: KindSymlink, Link: f.Symlink}, false, nil
	case f.Contents != nil:
		return dataEntry([]byte(*f.Contents)), false, nil
	case f.Metadata != "":
		data, err := a.metadata(f.Metadata)
		return dataEntry(data), false, err
	case f.Source != "":
		if err := a.checkOutside(f); err != nil {
			return nil, false, err
		}
		data, err := regfile.ReadFile(a.sourcePath(f), a.o.limits.File)
		if err != nil && f.Optional && errors.Is(err, fs.ErrNotExist) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("reading source: %w", err)
		}
		return dataEntry(data), false, nil
	}
	return nil, false, errors.New("no contents, source, metadata, symlink or directory given")
}

func dataEntry(data []byte) *Entry {
	return &Entry{Kind: KindFile, Size: int64(len(data)), Content: Content{Data: data}}
}

// sourcePath expands "~/" and makes a relative source relative to the
// directory of the spec file that declared it.
func (a *assembler) sourcePath(f *config.File) string {
	src := f.Source
	if rest, ok := strings.CutPrefix(src, "~/"); ok {
		home := a.o.homeDir
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		return filepath.Join(home, rest)
	}
	if filepath.IsAbs(src) {
		return src
	}
	base := a.o.baseDir
	if f.Pos.File != "" {
		base = filepath.Dir(f.Pos.File)
	}
	return filepath.Join(base, src)
}

// metadata renders the spec itself, as yaml or json.
func (a *assembler) metadata(format string) ([]byte, error) {
	switch format {
	case "yaml":
		return a.spec.YAML()
	case "json":
		return a.spec.JSON()
	}
	return nil, fmt.Errorf("unsupported metadata format %q (want yaml or json)", format)
}

// fileMode is the entry's mode, or LinuxKit's default: 0600 for files
// (and symlinks), 0700 for directories.
func fileMode(f *config.File) (uint32, error) {
	if f.Mode != "" {
		return config.ParseMode(f.Mode)
	}
	if f.Directory {
		return defaultDirMode, nil
	}
	return defaultFileMode, nil
}

// fileID resolves a files entry's uid or gid: a number, or a container's
// name (LinuxKit's ids by container name). Unset is 0.
func (a *assembler) fileID(id *config.ID) (int, error) {
	switch {
	case id == nil:
		return 0, nil
	case id.Num != nil:
		return int(*id.Num), nil
	case id.Name == "root":
		return 0, nil
	}
	n, ok := a.ids[id.Name]
	if !ok {
		return 0, fmt.Errorf("unknown container %q", id.Name)
	}
	return int(n), nil
}

// fileParents creates the missing parent directories of a files entry as
// LinuxKit does: the entry's owner, and its mode with search permission
// added wherever it grants any. Directories that exist stay as they are.
func (a *assembler) fileParents(e *Entry) {
	mode := e.Mode & 0o777
	for _, bits := range []uint32{0o700, 0o070, 0o007} {
		if mode&bits != 0 {
			mode |= bits & 0o111
		}
	}
	for _, d := range parents(e.Path) {
		if old := a.t.entries[d]; old != nil && old.Kind == KindDir {
			continue
		}
		a.t.Put(&Entry{Path: d, Kind: KindDir, Mode: mode, UID: e.UID, GID: e.GID, ModTime: e.ModTime, Origin: e.Origin})
	}
}

// checkOutside records a source outside the spec's directory, or refuses
// it when the policy forbids such files (WithRefuseOutside). A source that
// does not exist is left to the read that follows.
func (a *assembler) checkOutside(f *config.File) error {
	src, err := filepath.EvalSymlinks(a.sourcePath(f))
	if err != nil {
		return nil
	}
	if src, err = filepath.Abs(src); err != nil {
		return nil
	}
	if within(src, a.specDir(f)) {
		return nil
	}
	if a.o.refuseOutside {
		return fmt.Errorf("source %s is outside the spec's directory (policy.forbid: outside-files)", src)
	}
	p, _ := Clean(f.Path)
	a.host.Outside = append(a.host.Outside, OutsideFile{Path: p, Source: src, Spec: f.Pos.String()})
	return nil
}

// specDir is the directory of the spec that declared f, absolute, with
// symbolic links resolved.
func (a *assembler) specDir(f *config.File) string {
	dir := a.o.baseDir
	if f.Pos.File != "" {
		dir = filepath.Dir(f.Pos.File)
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	if d, err := filepath.Abs(dir); err == nil {
		dir = d
	}
	return dir
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
