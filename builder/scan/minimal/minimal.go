// Package minimal reports how little a host holds: every file with its
// origin and size, the files that widen an attacker's options (shells,
// package managers, compilers, setuid and setgid, world-writable), the
// executables and libraries nothing declared can reach (vestigial), and
// the size of each component.
package minimal

import (
	"path"
	"slices"
	"sort"
	"strings"
)

// Kind of a file.
type Kind uint8

// Kinds, as in the root tree.
const (
	KindFile Kind = iota
	KindDir
	KindSymlink
	KindHardlink
	KindDevice // character or block device node
	KindOther
)

// ELFType says what an ELF file is.
type ELFType string

// ELF types that matter here.
const (
	ELFExec   ELFType = "executable"
	ELFShared ELFType = "shared"
	ELFOther  ELFType = "other" // relocatable objects (kernel modules), core files
)

// ELF is what the dynamic loader needs from an ELF file.
type ELF struct {
	Type    ELFType
	Interp  string   // PT_INTERP, absolute
	Needed  []string // DT_NEEDED
	RunPath []string // DT_RUNPATH, or DT_RPATH
}

// Entry is one file of the tree, as the report needs it.
type Entry struct {
	Path   string // tree path, relative ("usr/bin/runc")
	Kind   Kind
	Mode   uint32 // 07777 bits
	Size   int64
	Link   string // symlink target, or hard link target (tree path)
	Origin string
	ELF    *ELF   // nil unless an ELF file
	Interp string // a script's "#!" interpreter, absolute
	// Caps says the file carries file capabilities (a
	// security.capability extended attribute).
	Caps bool
}

// Entrypoint is a program the host runs: Path (absolute) inside the root
// at tree path Root ("" for the host, "containers/services/x/rootfs" for a
// container).
type Entrypoint struct {
	Name string `json:"name"`
	Root string `json:"root"`
	Path string `json:"path"`
}

// File is one regular file in the report.
type File struct {
	Path   string   `json:"path"`
	Size   int64    `json:"size"`
	Origin string   `json:"origin"`
	Flags  []string `json:"flags,omitempty"`
}

// Flagged is a non-regular entry with flags (a symlink named sh, a
// world-writable directory).
type Flagged struct {
	Path  string   `json:"path"`
	Flags []string `json:"flags"`
}

// Component is the files of one origin.
type Component struct {
	Origin string `json:"origin"`
	Files  int    `json:"files"`
	Size   int64  `json:"size"`
}

// Reached is an entrypoint and what it resolved to.
type Reached struct {
	Entrypoint
	// Resolved is the tree path the entrypoint names, "" if it is missing.
	Resolved string `json:"resolved"`
}

// Report is the minimality report.
type Report struct {
	TotalSize   int64       `json:"total_size"`
	Files       []File      `json:"files"`
	Flagged     []Flagged   `json:"flagged"`
	Entrypoints []Reached   `json:"entrypoints"`
	Vestigial   []string    `json:"vestigial"`
	Components  []Component `json:"components"`
}

// Flag names.
const (
	FlagShell          = "shell"
	FlagPackageManager = "package-manager"
	FlagCompiler       = "compiler"
	FlagSetuid         = "setuid"
	FlagSetgid         = "setgid"
	FlagWorldWritable  = "world-writable"
	FlagVestigial      = "vestigial"
	FlagDevice         = "device-node"
	FlagCapabilities   = "file-capabilities"
)

var byName = map[string]string{}

func init() {
	for flag, names := range map[string][]string{
		FlagShell:          {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "toybox"},
		FlagPackageManager: {"apt", "apt-get", "aptitude", "dpkg", "apk", "yum", "dnf", "microdnf", "rpm", "zypper", "pacman", "opkg", "pip", "pip3", "npm", "gem"},
		FlagCompiler:       {"gcc", "g++", "cc", "c++", "clang", "clang++", "tcc", "go", "rustc", "cc1", "as", "javac"},
	} {
		for _, n := range names {
			byName[n] = flag
		}
	}
}

// flags lists what is notable about e.
func flags(e *Entry) []string {
	var out []string
	if e.Kind == KindFile || e.Kind == KindHardlink || e.Kind == KindSymlink {
		dir := path.Base(path.Dir(e.Path))
		if f := byName[path.Base(e.Path)]; f != "" && (dir == "bin" || dir == "sbin") {
			out = append(out, f)
		}
	}
	if e.Kind == KindFile || e.Kind == KindHardlink {
		if e.Mode&0o4000 != 0 {
			out = append(out, FlagSetuid)
		}
		if e.Mode&0o2000 != 0 && e.Mode&0o010 != 0 {
			out = append(out, FlagSetgid)
		}
		if e.Caps {
			out = append(out, FlagCapabilities)
		}
	}
	if e.Kind == KindDevice {
		out = append(out, FlagDevice)
	}
	if worldWritable(e) {
		out = append(out, FlagWorldWritable)
	}
	return out
}

// worldWritable reports a file, device or directory anyone may write,
// outside the places made for it: a sticky directory, and what lies in
// tmp, var/tmp, dev/shm or run/lock (of the host or a container).
func worldWritable(e *Entry) bool {
	if e.Mode&0o002 == 0 {
		return false
	}
	switch e.Kind {
	case KindDir:
		if e.Mode&0o1000 != 0 {
			return false
		}
	case KindFile, KindHardlink, KindDevice:
	default:
		return false
	}
	return !inScratch(path.Dir(e.Path))
}

// scratchDirs are where anyone may write by design.
var scratchDirs = []string{"tmp", "var/tmp", "dev/shm", "run/lock"}

// inScratch reports whether dir is, or is below, a scratch directory of
// the host or of a container root (containers/…/rootfs/tmp).
func inScratch(dir string) bool {
	for _, s := range scratchDirs {
		if dir == s || strings.HasPrefix(dir, s+"/") || strings.Contains("/"+dir+"/", "/rootfs/"+s+"/") {
			return true
		}
	}
	return false
}

// Analyze builds the report for entries (in any order) and entrypoints.
func Analyze(entries []*Entry, entrypoints []Entrypoint) *Report {
	idx := make(map[string]*Entry, len(entries))
	for _, e := range entries {
		idx[e.Path] = e
	}
	reached, eps := reach(idx, entrypoints)
	r := &Report{Files: []File{}, Flagged: []Flagged{}, Vestigial: []string{}, Entrypoints: eps}
	comps := map[string]*Component{}
	sorted := slices.Clone(entries)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, e := range sorted {
		fl := flags(e)
		if e.ELF != nil && (e.ELF.Type == ELFExec || e.ELF.Type == ELFShared) && !reached[e.Path] {
			r.Vestigial = append(r.Vestigial, e.Path)
			fl = append(fl, FlagVestigial)
		}
		if e.Kind != KindFile {
			if len(fl) > 0 {
				r.Flagged = append(r.Flagged, Flagged{Path: e.Path, Flags: fl})
			}
			continue
		}
		r.Files = append(r.Files, File{Path: e.Path, Size: e.Size, Origin: e.Origin, Flags: fl})
		r.TotalSize += e.Size
		c := comps[componentOf(e.Origin)]
		if c == nil {
			c = &Component{Origin: componentOf(e.Origin)}
			comps[c.Origin] = c
		}
		c.Files++
		c.Size += e.Size
	}
	for _, c := range comps {
		r.Components = append(r.Components, *c)
	}
	sort.Slice(r.Components, func(i, j int) bool {
		a, b := r.Components[i], r.Components[j]
		if a.Size != b.Size {
			return a.Size > b.Size
		}
		return a.Origin < b.Origin
	})
	return r
}

// componentOf drops the layer from an origin: components are images.
func componentOf(origin string) string {
	c, _, _ := strings.Cut(origin, "#")
	if strings.HasPrefix(c, "spec:") {
		return "spec"
	}
	return c
}

// WithFlag lists the paths (files and other entries) carrying flag.
func (r *Report) WithFlag(flag string) []string {
	var out []string
	for _, f := range r.Files {
		if slices.Contains(f.Flags, flag) {
			out = append(out, f.Path)
		}
	}
	for _, f := range r.Flagged {
		if slices.Contains(f.Flags, flag) {
			out = append(out, f.Path)
		}
	}
	sort.Strings(out)
	return out
}
