package build

import (
	"context"
	"debug/buildinfo"
	"path/filepath"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// Assemble builds the host's root tree from the resolved images
// (rootfs.Assemble, with the spec's limits).
func (b *Builder) Assemble(ctx context.Context, l *Loaded, res *Resolved) (*rootfs.Host, error) {
	// rootfs names the step in its errors: "assembling root: ...".
	return rootfs.Assemble(ctx, l.Spec, res.Images, AssembleOptions(l.Spec, b.specs[0], b.o.epoch)...)
}

// AssembleOptions are the root assembly options of a build or scan of
// spec (first is its first file): the epoch, where relative sources
// start, the spec's limits, and whether it refuses files from outside its
// directory.
func AssembleOptions(spec *config.Spec, first string, epoch int64) []rootfs.Option {
	return []rootfs.Option{
		rootfs.WithEpoch(epoch), rootfs.WithBaseDir(filepath.Dir(first)),
		rootfs.WithLimits(spec.Policy.Sizes()), rootfs.WithRefuseOutside(spec.Policy.Forbids("outside-files")),
	}
}

// InitPackage is bulkhead's init, as its Go build information names it.
const InitPackage = "github.com/bulkhead-dev/bulkhead/cmd/init"

// Init is which init a host runs as /init.
type Init int

const (
	// OtherInit is any init but bulkhead's (LinuxKit's, for one), or none.
	OtherInit Init = iota
	// BulkheadInit is bulkhead's init: it has the stage 0 that verifies
	// and mounts a root image, and applies sysctl.Hardening.
	BulkheadInit
)

// DetectInit tells bulkhead's init (by its Go build information) from
// others.
func DetectInit(t *rootfs.Tree) Init {
	e := t.Get("init")
	if e == nil || e.Kind != rootfs.KindFile {
		return OtherInit
	}
	r, c, err := e.ReaderAt()
	if err != nil {
		return OtherInit
	}
	defer c.Close()
	if bi, err := buildinfo.Read(r); err == nil && bi.Path == InitPackage {
		return BulkheadInit
	}
	return OtherInit
}
