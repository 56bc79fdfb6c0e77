// Package bless confirms a good boot to systemd-boot's boot counting: it
// reads from the EFI variables which counted entry file the running system
// was started from (LoaderBootCountPath) and on which partition that entry
// lives (LoaderDevicePartUUID), and renames the entry to drop its counter,
// so that systemd-boot stops counting its tries down.
//
// It never sets a default entry: a pinned default would defeat the
// fallback to the other slot.
package bless

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf16"
)

// LoaderGUID is the vendor GUID of systemd-boot's EFI variables.
const LoaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// DefaultEfivars is where efivarfs is mounted.
const DefaultEfivars = "/sys/firmware/efi/efivars"

// EntriesDir is the directory of Boot Loader Specification type #1 entries
// on the ESP, LinuxDir the one of type #2 entries (unified kernel images,
// whose file names carry the boot counter the same way).
const (
	EntriesDir = "loader/entries"
	LinuxDir   = "EFI/Linux"
)

// entryDirs pairs each entry directory with its file extension.
var entryDirs = [...][2]string{{EntriesDir, ".conf"}, {LinuxDir, ".efi"}}

// cutExt splits an entry file name into its base and its extension
// (.conf or .efi, as lower case); ok is false for any other name.
func cutExt(file string) (base, ext string, ok bool) {
	for _, d := range entryDirs {
		if len(file) > len(d[1]) && strings.EqualFold(file[len(file)-len(d[1]):], d[1]) {
			return file[:len(file)-len(d[1])], d[1], true
		}
	}
	return file, "", false
}

// EntryDir is the ESP directory of an entry file name: loader/entries for
// NAME.conf, EFI/Linux for NAME.efi.
func EntryDir(file string) string {
	if _, ext, _ := cutExt(file); ext == ".efi" {
		return LinuxDir
	}
	return EntriesDir
}

// ErrNotCounted means the system was not started from a counted entry (no
// LoaderBootCountPath): there is nothing to bless.
var ErrNotCounted = errors.New("not booted from a counted boot entry")

// BootCountPath returns the ESP path (`\loader\entries\NAME+LEFT-DONE.conf`)
// of the entry the system booted from, as systemd-boot recorded it in
// LoaderBootCountPath under the efivarfs mount efivars, or ErrNotCounted.
func BootCountPath(efivars string) (string, error) {
	s, err := readString(efivars, "LoaderBootCountPath")
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrNotCounted
	}
	return s, err
}

// ESPPartUUID returns the partition UUID (lower case) of the ESP
// systemd-boot was loaded from, from LoaderDevicePartUUID.
func ESPPartUUID(efivars string) (string, error) {
	s, err := readString(efivars, "LoaderDevicePartUUID")
	if err != nil {
		return "", err
	}
	return strings.ToLower(s), nil
}

// readString reads a loader variable holding a NUL-terminated UTF-16LE
// string, after efivarfs's four bytes of attributes.
func readString(efivars, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(efivars, name+"-"+LoaderGUID))
	if err != nil {
		return "", fmt.Errorf("reading EFI variable %s: %w", name, err)
	}
	s, err := decodeUTF16(b)
	if err != nil {
		return "", fmt.Errorf("reading EFI variable %s: %w", name, err)
	}
	return s, nil
}

func decodeUTF16(b []byte) (string, error) {
	if len(b) < 4 || (len(b)-4)%2 != 0 {
		return "", fmt.Errorf("malformed value (%d bytes)", len(b))
	}
	b = b[4:]
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// Bless renames the counted entry countPath (as BootCountPath returns it)
// under the ESP mounted at espRoot from NAME+LEFT[-DONE].conf to NAME.conf,
// syncs the directory, and returns the new ESP path ("/loader/entries/NAME.conf").
// An entry that is already blessed is left alone. A path outside
// loader/entries is refused.
func Bless(espRoot, countPath string) (newPath string, err error) {
	rel, err := entryPath(countPath)
	if err != nil {
		return "", err
	}
	dir, file := path.Split(rel)
	blessed, counted := Uncounted(file)
	newRel := dir + blessed
	newPath = "/" + newRel
	if !counted {
		return newPath, nil
	}
	from, to := filepath.Join(espRoot, rel), filepath.Join(espRoot, newRel)
	if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(to); err == nil {
			return newPath, nil
		}
	}
	if err := RenameSynced(from, to); err != nil {
		return "", fmt.Errorf("blessing boot entry: %w", err)
	}
	return newPath, nil
}

// entryPath turns an ESP path with either slash into a clean relative path
// of a .conf file directly in loader/entries or an .efi file directly in
// EFI/Linux.
func entryPath(p string) (string, error) {
	clean := path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
	dir, file := path.Split(clean)
	_, ext, ok := cutExt(file)
	if !ok || strings.HasPrefix(file, ".") || !strings.EqualFold(dir, "/"+EntryDir(file)+"/") || !strings.HasSuffix(file, ext) {
		return "", fmt.Errorf("blessing boot entry: %q is not an entry in %s or %s", p, EntriesDir, LinuxDir)
	}
	return strings.TrimPrefix(clean, "/"), nil
}

// Uncounted returns the blessed name of an entry file name (NAME.conf for
// NAME+LEFT.conf or NAME+LEFT-DONE.conf) and whether it carried a counter.
func Uncounted(file string) (string, bool) {
	base, ext, ok := cutExt(file)
	if !ok || !strings.HasSuffix(file, ext) {
		return file, false
	}
	i := strings.LastIndexByte(base, '+')
	if i <= 0 {
		return file, false
	}
	left, done, hasDone := strings.Cut(base[i+1:], "-")
	if !isCount(left) || (hasDone && !isCount(done)) {
		return file, false
	}
	return base[:i] + ext, true
}

// isCount reports whether s is a decimal counter.
func isCount(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// RenameSynced renames a file and makes the rename durable on the ESP's
// FAT: it syncs the file under its new name as well as the directory. On
// FAT a file's size and first cluster live in its directory entry, and
// Linux's vfat writes them to the entry a rename creates only when the
// file's inode is written back: syncing the directory alone leaves an
// empty entry after a power cut (found by e2e's power-cut test), which the
// boot loader skips.
func RenameSynced(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	f, err := os.OpenFile(to, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(to))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// MarkBad renames the counted entry countPath under espRoot to
// NAME+0-DONE.conf, as systemd-bless-boot bad does: systemd-boot then
// sorts it after every entry with tries left, so the next boot falls back
// to another entry. It syncs the directory and returns the new ESP path.
// An entry without a counter (blessed) is refused: a blessed entry is the
// fallback and is never marked bad.
func MarkBad(espRoot, countPath string) (string, error) {
	rel, err := entryPath(countPath)
	if err != nil {
		return "", err
	}
	dir, file := path.Split(rel)
	base, ext, _ := cutExt(file)
	i := strings.LastIndexByte(base, '+')
	if _, counted := Uncounted(file); !counted || i <= 0 {
		return "", fmt.Errorf("marking boot entry bad: %s is blessed", file)
	}
	_, done, _ := strings.Cut(base[i+1:], "-")
	if done == "" {
		done = "0"
	}
	newRel := dir + base[:i] + "+0-" + done + ext
	if newRel == rel {
		return "/" + newRel, nil
	}
	if err := RenameSynced(filepath.Join(espRoot, rel), filepath.Join(espRoot, newRel)); err != nil {
		return "", fmt.Errorf("marking boot entry bad: %w", err)
	}
	return "/" + newRel, nil
}

// Fallbacks lists the entries under espRoot that systemd-boot would try
// after countPath fails: every other entry that is blessed or has tries
// left, by file name.
func Fallbacks(espRoot, countPath string) ([]string, error) {
	rel, err := entryPath(countPath)
	if err != nil {
		return nil, err
	}
	self, _ := Uncounted(path.Base(rel))
	var out []string
	for _, d := range entryDirs {
		ents, err := os.ReadDir(filepath.Join(espRoot, d[0]))
		if errors.Is(err, fs.ErrNotExist) && d[0] != EntryDir(self) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing boot entries: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			blessedName, counted := Uncounted(name)
			if e.IsDir() || !strings.HasSuffix(name, d[1]) || strings.HasPrefix(name, ".") || blessedName == self {
				continue
			}
			if counted && triesLeft(name) == 0 {
				continue
			}
			out = append(out, name)
		}
	}
	return out, nil
}

// triesLeft is LEFT of NAME+LEFT[-DONE].conf (call it on a counted name).
func triesLeft(file string) int {
	base, _, _ := cutExt(file)
	left, _, _ := strings.Cut(base[strings.LastIndexByte(base, '+')+1:], "-")
	n, _ := strconv.Atoi(left)
	return n
}

// EntrySelected returns the entry systemd-boot started (LoaderEntrySelected:
// its file name as it was before the boot counter was decremented).
func EntrySelected(efivars string) (string, error) {
	return readString(efivars, "LoaderEntrySelected")
}

// Tries returns LEFT and DONE of a counted entry file NAME+LEFT[-DONE].conf,
// or ok false for a blessed one.
func Tries(file string) (left, done int, ok bool) {
	if _, counted := Uncounted(file); !counted {
		return 0, 0, false
	}
	base, _, _ := cutExt(file)
	l, d, _ := strings.Cut(base[strings.LastIndexByte(base, '+')+1:], "-")
	left, _ = strconv.Atoi(l)
	done, _ = strconv.Atoi(d)
	return left, done, true
}
