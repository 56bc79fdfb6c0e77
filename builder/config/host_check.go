package config

import (
	"os"
	"path/filepath"
	"strings"
)

// CheckHost reports what makes a well-formed spec unable to boot or to
// build, beyond its own text: no init (the kernel would panic with nothing
// to run), and a files source that is missing or not a regular file.
// Relative sources start at the directory of the file that names them;
// "~/" at home. Parse and Load accept fragments that another file
// completes, so the commands that take a whole host call this on the
// merged spec. The error, if any, is an Errors.
func CheckHost(s *Spec, home string) error {
	var errs errorList
	if len(s.Init) == 0 {
		at := Pos{Line: 1, Col: 1}
		if len(s.Sources) > 0 {
			at.File = s.Sources[0]
		}
		if s.Kernel.Pos.File != "" {
			at = s.Kernel.Pos
		}
		errs.add(at, "no init: images: a host needs an init (for example bulkhead/init:dev and bulkhead/runc:v1.5.3); without one its kernel panics at boot")
	}
	for i := range s.Files {
		checkSource(&s.Files[i], home, &errs)
	}
	if s.Disk != nil && s.Disk.EncryptData != "" && (s.Boot == nil || !s.Boot.UKI) {
		errs.add(s.Disk.Pos, "disk: encrypt_data: tpm seals /var to the signed PCR policy of a unified kernel image: set boot.uki: true")
	}
	return errs.errs.err()
}

// checkSource reports a files entry whose source cannot be read as a
// regular file (an optional one may be missing).
func checkSource(f *File, home string, errs *errorList) {
	if f.Source == "" {
		return
	}
	p := SourcePath(f, home)
	fi, err := os.Stat(p)
	switch {
	case os.IsNotExist(err) && f.Optional:
	case os.IsNotExist(err):
		errs.add(f.Pos, "files %s: source %s does not exist (looked for %s)", quote(f.Path), quote(f.Source), p)
	case err != nil:
		errs.add(f.Pos, "files %s: source %s: %v", quote(f.Path), quote(f.Source), err)
	case !fi.Mode().IsRegular():
		errs.add(f.Pos, "files %s: source %s is not a regular file", quote(f.Path), quote(f.Source))
	}
}

// SourcePath is where a files entry's source is read: "~/" expands to
// home, and a relative path starts at the directory of the spec file
// that declared the entry.
func SourcePath(f *File, home string) string {
	src := f.Source
	if rest, ok := strings.CutPrefix(src, "~/"); ok {
		return filepath.Join(home, rest)
	}
	if filepath.IsAbs(src) || f.Pos.File == "" {
		return src
	}
	return filepath.Join(filepath.Dir(f.Pos.File), src)
}
