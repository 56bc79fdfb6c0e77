package rootfs

import (
	"context"
	"fmt"
	"path"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/ocispec"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// OriginBulkhead marks entries bulkhead generates itself.
const OriginBulkhead = "bulkhead"

// Host is an assembled host: its root tree and what boots it.
type Host struct {
	// Tree is the root file system.
	Tree *Tree
	// Kernel is the kernel binary (the kernel image's "kernel" file, or
	// kernel.binary). It is not part of Tree. Nil when the spec names no
	// kernel image.
	Kernel *Entry
	// Ucode is the CPU microcode cpio (kernel.ucode) for the output writer
	// to put before the initrd, or nil.
	Ucode *Entry
	// Cmdline is the kernel command line from the spec.
	Cmdline string
	// Outside lists the files entries read from outside the directory of
	// the spec that names them (/etc/shadow, ~/.ssh/id_ed25519), for the
	// build report.
	Outside []OutsideFile
}

// OutsideFile is a files entry whose source lies outside the directory of
// its spec.
type OutsideFile struct {
	Path   string `json:"path"`   // in the root
	Source string `json:"source"` // on the build machine, symbolic links resolved
	Spec   string `json:"spec"`   // where the entry is, file:line:col
}

// Assemble builds the root of the host spec describes, LinuxKit's layout:
// the kernel image's modules (kernel.tar) and the init images flattened
// into "/", each onboot, onshutdown and service container unpacked under
// containers/ with its config.json and runtime.json, the volumes under
// containers/volumes/, the files section over everything else, and last the
// update section's public keys at internal/update.KeysPath and the api
// section's operator CA at internal/hostapi.CAPath.
// images holds the resolved images keyed by the reference as written in
// the spec.
func Assemble(ctx context.Context, spec *config.Spec, images map[string]*resolve.Image, opts ...Option) (*Host, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("assembling root: %w", err)
	}
	a := &assembler{
		ctx:      ctx,
		spec:     spec,
		images:   images,
		o:        o,
		t:        New(),
		flat:     map[flatKey]*Tree{},
		unpacked: map[string]string{},
		ids:      ocispec.AssignIDs(spec),
	}
	a.t.entries[""].ModTime = o.epoch
	a.host = &Host{Tree: a.t, Cmdline: spec.Kernel.Cmdline}
	for _, step := range []func() error{a.kernel, a.inits, a.containers, a.volumes, a.files, a.updateKeys, a.apiCA, a.secretsList, a.metadataSettings} {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("assembling root: %w", err)
		}
		if err := step(); err != nil {
			return nil, fmt.Errorf("assembling root: %w", err)
		}
	}
	return a.host, nil
}

// assembler holds one Assemble call's state.
type assembler struct {
	ctx    context.Context
	spec   *config.Spec
	images map[string]*resolve.Image
	o      *options
	t      *Tree
	host   *Host
	ids    map[string]uint32
	// flat caches flattened images: an image used twice is read once.
	flat map[flatKey]*Tree
	// unpacked maps an image reference to where its root was first
	// unpacked under containers/, so a second container shares it.
	unpacked map[string]string
}

type flatKey struct {
	ref string
	fx  fixup
}

// image returns the resolved image for ref and the Origin of its entries.
func (a *assembler) image(ref string, pos config.Pos) (*resolve.Image, string, error) {
	img := a.images[ref]
	if img == nil {
		return nil, "", fmt.Errorf("%s: image %q was not resolved", pos, ref)
	}
	return img, ref + "@" + img.Digest.String(), nil
}

// flatten returns ref's image flattened with fix-ups fx, read once per
// Assemble.
func (a *assembler) flatten(ref string, pos config.Pos, fx fixup) (*Tree, *resolve.Image, error) {
	img, origin, err := a.image(ref, pos)
	if err != nil {
		return nil, nil, err
	}
	k := flatKey{ref, fx}
	if t := a.flat[k]; t != nil {
		return t, img, nil
	}
	if err := a.ctx.Err(); err != nil {
		return nil, nil, err
	}
	t, err := flatten(img, origin, fx, a.o)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: unpacking image %q: %w", pos, ref, err)
	}
	a.flat[k] = t
	return t, img, nil
}

// inits flattens the init images into "/", in order. Each image is
// flattened on its own first, so its whiteouts hide only its own lower
// layers, as when LinuxKit appends exported images.
func (a *assembler) inits() error {
	for _, r := range a.spec.Init {
		ft, _, err := a.flatten(r.Ref, r.Pos, fixInit)
		if err != nil {
			return err
		}
		graft(a.t, "", ft)
	}
	return nil
}

// mkdir adds the directory p (and any missing parents) as bulkhead's, mode
// 0755, unless a directory is already there.
func (a *assembler) mkdir(p string) {
	if e := a.t.entries[p]; e != nil && e.Kind == KindDir {
		return
	}
	for _, d := range parents(p) {
		if e := a.t.entries[d]; e == nil || e.Kind != KindDir {
			a.t.Put(&Entry{Path: d, Kind: KindDir, Mode: 0o755, ModTime: a.o.epoch, Origin: OriginBulkhead})
		}
	}
	a.t.Put(&Entry{Path: p, Kind: KindDir, Mode: 0o755, ModTime: a.o.epoch, Origin: OriginBulkhead})
}

// parents lists the ancestors of p, outermost first, without the root.
func parents(p string) []string {
	var out []string
	for d := path.Dir(p); d != "." && d != ""; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// putData adds a generated regular file.
func (a *assembler) putData(p string, data []byte, mode uint32, origin string) {
	a.t.Put(&Entry{
		Path: p, Kind: KindFile, Mode: mode, Size: int64(len(data)),
		ModTime: a.o.epoch, Content: Content{Data: data}, Origin: origin,
	})
}
