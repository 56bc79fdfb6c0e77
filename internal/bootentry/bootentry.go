// Package bootentry describes what one installed version puts on the ESP:
// its kernel and initrd under /bulkhead/<version>/ and a Boot Loader
// Specification entry, loader/entries/bulkhead-<version>[+<tries>].conf,
// that boots them from one root slot. The disk writer (builder/disk) and
// the update on the host (internal/host/apply) both write it from here, so
// an updated slot boots exactly as a freshly imaged one. With Secure Boot
// this is where a version becomes a signed UKI instead.
package bootentry

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
)

// Prefix starts the name of every entry file bulkhead writes.
const Prefix = "bulkhead-"

// EntriesDir is the ESP directory of entry files, VersionsDir the one of
// the per-version directories, LinuxDir the one of unified kernel images
// (Boot Loader Specification type #2; all relative to the ESP's root).
const (
	EntriesDir  = "loader/entries"
	VersionsDir = "bulkhead"
	LinuxDir    = "EFI/Linux"
)

// MaxTries is the largest boot counter bulkhead writes.
const MaxTries = 9

// versionRE is what a version may look like: no '+' (the boot counter's
// separator), no '/', no spaces.
var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~^-]{0,63}$`)

// CheckVersion reports whether v may name a version.
func CheckVersion(v string) error {
	if !versionRE.MatchString(v) {
		return fmt.Errorf("version %q: want letters, digits and . _ ~ ^ - (no + or /), at most 64", v)
	}
	return nil
}

// Entry is one version's boot payload: what it installs on the ESP.
type Entry struct {
	// Version names the directory and the entry file.
	Version string
	// Initrd is whether the version has an initrd beside its kernel.
	Initrd bool
	// Options is the whole kernel command line (see SlotOptions).
	Options string
	// Tries is the boot counter: 0 writes a blessed entry,
	// N writes bulkhead-<Version>+N.conf.
	Tries int
	// UKI makes the version one unified kernel image,
	// EFI/Linux/bulkhead-<Version>[+N].efi, holding the kernel, the initrd
	// and Options: the image is the entry (and its boot counter), and
	// there are no other files.
	UKI bool
}

// Check reports an entry that cannot be written.
func (e Entry) Check() error {
	if err := CheckVersion(e.Version); err != nil {
		return err
	}
	if e.Tries < 0 || e.Tries > MaxTries {
		return fmt.Errorf("tries %d is not between 0 and %d", e.Tries, MaxTries)
	}
	return nil
}

// Names of the payloads a version's files hold (an update bundle's
// payloads carry the same names).
const (
	Kernel = "kernel"
	Initrd = "initrd"
	// UKI is a version's unified kernel image: the entry itself.
	UKI = "uki"
)

// File is one file a version puts on the ESP: which payload it holds and
// where, relative to the ESP.
type File struct {
	Payload string
	Path    string
}

// Files are the version's files on the ESP besides the entry, in the
// order they are written: every writer of a version (the disk image, the
// update) goes through this list.
func (e Entry) Files() []File {
	if e.UKI {
		return nil
	}
	files := []File{{Kernel, e.KernelPath()}}
	if e.Initrd {
		files = append(files, File{Initrd, e.InitrdPath()})
	}
	return files
}

// Dir is the ESP directory holding the version's files ("bulkhead/<v>").
func (e Entry) Dir() string { return VersionsDir + "/" + e.Version }

// KernelPath and InitrdPath are the version's files, relative to the ESP.
func (e Entry) KernelPath() string { return e.Dir() + "/linux" }

// InitrdPath is the version's initrd, relative to the ESP.
func (e Entry) InitrdPath() string { return e.Dir() + "/initrd" }

// FileName is the entry's file name in EntriesDir.
func (e Entry) FileName() string {
	ext := ".conf"
	if e.UKI {
		ext = ".efi"
	}
	if e.Tries > 0 {
		return Prefix + e.Version + "+" + strconv.Itoa(e.Tries) + ext
	}
	return Prefix + e.Version + ext
}

// Path is the entry file, relative to the ESP.
func (e Entry) Path() string {
	if e.UKI {
		return LinuxDir + "/" + e.FileName()
	}
	return EntriesDir + "/" + e.FileName()
}

// Conf is the entry file's text (of a type #1 entry: not UKI).
func (e Entry) Conf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "title Bulkhead %s\n", e.Version)
	fmt.Fprintf(&b, "version %s\n", e.Version)
	b.WriteString("sort-key bulkhead\n")
	fmt.Fprintf(&b, "linux /%s\n", e.KernelPath())
	if e.Initrd {
		fmt.Fprintf(&b, "initrd /%s\n", e.InitrdPath())
	}
	if o := strings.TrimSpace(e.Options); o != "" {
		fmt.Fprintf(&b, "options %s\n", o)
	}
	return b.String()
}

// SlotOptions is the command line of a version booting the root slot
// whose partition GUID is rootGUID with the data partition dataGUID:
// options (which must not set root=) followed by root=PARTUUID= and
// bulkhead.data=PARTUUID=.
func SlotOptions(options, rootGUID, dataGUID string) (string, error) {
	if err := CheckOptions(options); err != nil {
		return "", err
	}
	s := fmt.Sprintf("%s root=PARTUUID=%s %s=PARTUUID=%s", options, rootGUID, bootparam.Data, dataGUID)
	return strings.Join(strings.Fields(s), " "), nil
}

// CheckOptions refuses a version's command line that sets root=: the
// slot decides it.
func CheckOptions(options string) error {
	for _, f := range strings.Fields(options) {
		if strings.HasPrefix(f, "root=") {
			return errors.New("options set root=; the image writer sets it")
		}
	}
	return nil
}

// Name is an entry file name taken apart.
type Name struct {
	Version string
	// Counted is whether the name carries a boot counter (+LEFT[-DONE]);
	// an uncounted entry is blessed.
	Counted bool
	// Left is the tries left (0 with a counter: bad).
	Left int
	// UKI: a unified kernel image in LinuxDir (.efi), not an entry file
	// in EntriesDir (.conf).
	UKI bool
}

// ParseName reads a bulkhead entry file name (an entry file's, .conf, or
// a unified kernel image's, .efi); ok is false for any other file.
func ParseName(file string) (n Name, ok bool) {
	base, found := strings.CutPrefix(file, Prefix)
	if !found {
		return Name{}, false
	}
	base, conf := strings.CutSuffix(base, ".conf")
	efi := false
	if !conf {
		base, efi = strings.CutSuffix(base, ".efi")
	}
	if !conf && !efi {
		return Name{}, false
	}
	version, counter, counted := strings.Cut(base, "+")
	if CheckVersion(version) != nil {
		return Name{}, false
	}
	n = Name{Version: version, Counted: counted, UKI: efi}
	if counted {
		left, _, _ := strings.Cut(counter, "-")
		v, err := strconv.ParseUint(left, 10, 8)
		if err != nil {
			return Name{}, false
		}
		n.Left = int(v)
	}
	return n, true
}

// RootPartUUID returns the partition GUID (lower case) that an entry
// file's options line boots (root=PARTUUID=), or "".
func RootPartUUID(conf string) string {
	for _, line := range strings.Split(conf, "\n") {
		opts, ok := strings.CutPrefix(strings.TrimSpace(line), "options ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(opts) {
			if v, ok := strings.CutPrefix(f, "root=PARTUUID="); ok {
				return strings.ToLower(v)
			}
		}
	}
	return ""
}
