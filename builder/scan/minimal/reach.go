package minimal

import (
	"path"
	"strings"
)

// defaultLibDirs are where glibc's and musl's loaders look without a
// cache (relative to the root).
var defaultLibDirs = []string{
	"lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib",
	"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu",
	"lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu",
}

// maxLinks bounds symlink resolution (Linux's MAXSYMLINKS).
const maxLinks = 40

// resolve follows p (absolute, inside root) to a tree path, symlinks
// resolved inside root at every component. ok is false if it is missing.
func resolve(idx map[string]*Entry, root, p string) (string, bool) {
	links := 0
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := "" // path inside root, relative
	// A missing directory entry (archives may omit them) is taken as a
	// directory; only the last component must exist.
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = strings.TrimPrefix(path.Dir("/"+cur), "/")
			continue
		}
		next := path.Join(cur, part)
		e := idx[path.Join(root, next)]
		if e == nil && len(parts) == 0 {
			return "", false
		}
		if e != nil && e.Kind == KindSymlink {
			if links++; links > maxLinks {
				return "", false
			}
			target := e.Link
			if strings.HasPrefix(target, "/") {
				cur = ""
			}
			parts = append(strings.Split(strings.Trim(target, "/"), "/"), parts...)
			continue
		}
		cur = next
	}
	return path.Join(root, cur), true
}

// reach marks every file the entrypoints reach: themselves, their script
// interpreters, ELF interpreters and needed libraries, transitively.
func reach(idx map[string]*Entry, eps []Entrypoint) (map[string]bool, []Reached) {
	reached := map[string]bool{}
	var out []Reached
	for _, ep := range eps {
		tp, ok := resolve(idx, ep.Root, ep.Path)
		if !ok {
			out = append(out, Reached{Entrypoint: ep})
			continue
		}
		out = append(out, Reached{Entrypoint: ep, Resolved: tp})
		walk(idx, ep.Root, tp, reached)
	}
	return reached, out
}

func walk(idx map[string]*Entry, root, tp string, reached map[string]bool) {
	queue := []string{tp}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if reached[p] {
			continue
		}
		reached[p] = true
		e := idx[p]
		if e == nil {
			continue
		}
		if e.Kind == KindHardlink && e.Link != "" {
			queue = append(queue, e.Link)
			if t := idx[e.Link]; t != nil {
				e = t
			}
		}
		if e.Interp != "" {
			if q, ok := resolve(idx, root, e.Interp); ok {
				queue = append(queue, q)
			}
		}
		if e.ELF == nil {
			continue
		}
		if e.ELF.Interp != "" {
			if q, ok := resolve(idx, root, e.ELF.Interp); ok {
				queue = append(queue, q)
			}
		}
		for _, n := range e.ELF.Needed {
			if q, ok := findLib(idx, root, p, n, e.ELF.RunPath); ok {
				queue = append(queue, q)
			}
		}
	}
}

// findLib looks a DT_NEEDED name up as the loader would: a path as is,
// else in the run path ($ORIGIN expanded) and the default directories.
func findLib(idx map[string]*Entry, root, from, name string, runpath []string) (string, bool) {
	if strings.Contains(name, "/") {
		return resolve(idx, root, name)
	}
	origin := "/" + strings.TrimPrefix(strings.TrimPrefix(path.Dir(from), root), "/")
	dirs := make([]string, 0, len(runpath)+len(defaultLibDirs))
	for _, d := range runpath {
		d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
		dirs = append(dirs, d)
	}
	dirs = append(dirs, defaultLibDirs...)
	for _, d := range dirs {
		if q, ok := resolve(idx, root, path.Join("/", d, name)); ok {
			if e := idx[q]; e != nil && (e.Kind == KindFile || e.Kind == KindHardlink) {
				return q, true
			}
		}
	}
	return "", false
}
