package disk

import (
	"errors"
	"fmt"

	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
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
	// UKI, when set, makes the entry a unified kernel image
	// EFI/Linux/bulkhead-<Version>[+N].efi (see bootentry.Entry.UKI): it
	// returns the image for the entry's command line, which it must carry
	// inside. That is Options as it is: no root= or bulkhead.data=, since
	// one image serves either slot (stage 0 boots the root slot holding
	// the root hash of bulkhead.verity=, and the host finds its data
	// partition by type). Kernel and Initrd then only say what the image
	// holds.
	UKI func(cmdline string) ([]byte, error)
}

// EntryPrefix starts the name of every entry file bulkhead writes.
const EntryPrefix = bootentry.Prefix

// boot is the entry as the boot payload both the disk writer and the
// update on the host write, with options as its whole command line.
func (e Entry) boot(options string) bootentry.Entry {
	return bootentry.Entry{Version: e.Version, Initrd: !e.Initrd.IsZero(), Options: options, Tries: e.Tries, UKI: e.UKI != nil}
}

// FileName is the entry's file name in /loader/entries.
func (e Entry) FileName() string { return e.boot("").FileName() }

func (e Entry) validate() error {
	if err := e.boot("").Check(); err != nil {
		return err
	}
	if e.Kernel.IsZero() {
		return errors.New("no kernel")
	}
	return bootentry.CheckOptions(e.Options)
}

// loaderConf boots the first entry at once, with no default pinned: a
// default would defeat boot counting's fallback.
const loaderConf = "timeout 0\neditor no\n"

// espFile is one file of the ESP tree: its content is read when the file
// system is written, a chunk at a time, never held whole.
type espFile struct {
	path string
	src  Source
	size int64
}

// bytesFile is an ESP file holding b.
func bytesFile(path string, b []byte) espFile {
	return espFile{path: path, src: FromBytes(b), size: int64(len(b))}
}

// espTree lists the ESP's files: the boot loader, loader.conf, and per
// entry its kernel, initrd and entry file. options gives an entry's command
// line.
func espTree(bootloader Source, entries []Entry, options func(Entry) string) ([]espFile, error) {
	n, err := bootloader.size()
	if err != nil {
		return nil, fmt.Errorf("reading boot loader: %w", err)
	}
	if n == 0 {
		return nil, errors.New("boot loader is empty")
	}
	files := []espFile{
		{"/EFI/BOOT/BOOTX64.EFI", bootloader, n},
		bytesFile("/loader/loader.conf", []byte(loaderConf)),
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
	b := e.boot(options)
	if e.UKI != nil {
		img, err := e.UKI(options)
		if err != nil {
			return nil, fmt.Errorf("building the unified kernel image: %w", err)
		}
		return []espFile{bytesFile("/"+b.Path(), img)}, nil
	}
	sources := map[string]Source{bootentry.Kernel: e.Kernel, bootentry.Initrd: e.Initrd}
	var files []espFile
	for _, f := range b.Files() {
		src := sources[f.Payload]
		n, err := src.size()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.Payload, err)
		}
		if n == 0 && f.Payload == bootentry.Kernel {
			return nil, errors.New("kernel is empty")
		}
		files = append(files, espFile{"/" + f.Path, src, n})
	}
	return append(files, bytesFile("/"+b.Path(), []byte(b.Conf()))), nil
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
