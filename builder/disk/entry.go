package disk

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Entry is one installed version: its kernel and initrd on the ESP and a
// Boot Loader Specification entry that boots them.
type Entry struct {
	// Version names the entry file bulkhead-<Version>[+Tries].conf and the
	// ESP directory /bulkhead/<Version>/ holding linux and initrd.
	Version string
	// Kernel is required; Initrd may be empty.
	Kernel, Initrd Source
	// Options is the kernel command line without root=. WriteRaw appends
	// root=PARTUUID=<slot's partition> and bulkhead.data=PARTUUID=<data>;
	// WriteISO uses it as it is.
	Options string
	// Slot is the root partition the entry boots: "a" or "b" (raw only).
	Slot string
	// Tries is the boot counter: 0 writes a blessed entry (no counter), N
	// writes bulkhead-<Version>+N.conf, which systemd-boot tries N times.
	Tries int
}

// EntryPrefix starts the name of every entry file bulkhead writes.
const EntryPrefix = "bulkhead-"

// versionRE is what a version may look like: no '+' (the boot counter's
// separator), no '/', no spaces.
var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~^-]{0,63}$`)

// FileName is the entry's file name in /loader/entries.
func (e Entry) FileName() string {
	if e.Tries > 0 {
		return EntryPrefix + e.Version + "+" + strconv.Itoa(e.Tries) + ".conf"
	}
	return EntryPrefix + e.Version + ".conf"
}

// dir is the ESP directory holding the entry's kernel and initrd.
func (e Entry) dir() string { return "/bulkhead/" + e.Version }

func (e Entry) validate() error {
	if !versionRE.MatchString(e.Version) {
		return fmt.Errorf("version %q: want letters, digits and . _ ~ ^ - (no + or /)", e.Version)
	}
	if e.Kernel.IsZero() {
		return errors.New("no kernel")
	}
	if e.Tries < 0 {
		return fmt.Errorf("tries %d is negative", e.Tries)
	}
	for _, f := range strings.Fields(e.Options) {
		if strings.HasPrefix(f, "root=") {
			return errors.New("options set root=; the image writer sets it")
		}
	}
	return nil
}

// conf is the entry file's text; options is the full command line.
func (e Entry) conf(options string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "title Bulkhead %s\n", e.Version)
	fmt.Fprintf(&b, "version %s\n", e.Version)
	b.WriteString("sort-key bulkhead\n")
	fmt.Fprintf(&b, "linux %s/linux\n", e.dir())
	if !e.Initrd.IsZero() {
		fmt.Fprintf(&b, "initrd %s/initrd\n", e.dir())
	}
	if options = strings.TrimSpace(options); options != "" {
		fmt.Fprintf(&b, "options %s\n", options)
	}
	return b.String()
}

// loaderConf boots the first entry at once, with no default pinned: a
// default would defeat boot counting's fallback.
const loaderConf = "timeout 0\neditor no\n"

// espFile is one file of the ESP tree.
type espFile struct {
	path string
	data []byte
}

// espTree reads the ESP's files: the boot loader, loader.conf, and per entry
// its kernel, initrd and entry file. options gives an entry's command line.
func espTree(bootloader Source, entries []Entry, options func(Entry) string) ([]espFile, error) {
	boot, err := bootloader.read()
	if err != nil {
		return nil, fmt.Errorf("reading boot loader: %w", err)
	}
	if len(boot) == 0 {
		return nil, errors.New("boot loader is empty")
	}
	files := []espFile{
		{"/EFI/BOOT/BOOTX64.EFI", boot},
		{"/loader/loader.conf", []byte(loaderConf)},
	}
	for _, e := range entries {
		fs, err := entryFiles(e, options(e))
		if err != nil {
			return nil, fmt.Errorf("entry %s: %w", e.Version, err)
		}
		files = append(files, fs...)
	}
	return files, nil
}

func entryFiles(e Entry, options string) ([]espFile, error) {
	kernel, err := e.Kernel.read()
	if err != nil {
		return nil, fmt.Errorf("reading kernel: %w", err)
	}
	if len(kernel) == 0 {
		return nil, errors.New("kernel is empty")
	}
	files := []espFile{{path.Join(e.dir(), "linux"), kernel}}
	if !e.Initrd.IsZero() {
		initrd, err := e.Initrd.read()
		if err != nil {
			return nil, fmt.Errorf("reading initrd: %w", err)
		}
		files = append(files, espFile{path.Join(e.dir(), "initrd"), initrd})
	}
	conf := espFile{"/loader/entries/" + e.FileName(), []byte(e.conf(options))}
	return append(files, conf), nil
}

// checkVersions rejects two entries of one version.
func checkVersions(entries []Entry) error {
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.Version] {
			return fmt.Errorf("two entries for version %s", e.Version)
		}
		seen[e.Version] = true
	}
	return nil
}
