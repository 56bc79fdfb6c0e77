package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
)

// Boot defaults.
const (
	// DefaultBootloader is the image holding systemd-boot when the spec's
	// disk section names none (images/systemd-boot).
	DefaultBootloader = "bulkhead/systemd-boot:252"
	// bootloaderPath is systemd-boot's EFI binary inside that image.
	bootloaderPath = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	// defaultTries is how often systemd-boot tries a new entry.
	defaultTries = 3
	// rootImgParam tells stage 0 where the initrd of iso-efi and
	// kernel+initrd carries the root image.
	rootImgParam = bootparam.RootImage + "=/" + bootparam.RootImageFile
	// Stage0Binary is the init image's stage 0 alone.
	Stage0Binary = "usr/lib/bulkhead/stage0"
	// versionHexLen is how much of the root hash names a version by default.
	versionHexLen = 12
)

// BootloaderRef returns the boot loader image of spec and where the spec
// names it (no position when it is the default).
func BootloaderRef(spec *config.Spec) Ref {
	if spec.Disk != nil && spec.Disk.Bootloader.Ref != "" {
		return Ref{spec.Disk.Bootloader.Ref, spec.Disk.Bootloader.Pos}
	}
	return Ref{Ref: DefaultBootloader}
}

// isDiskFormat reports whether format boots from a verified root image
// on a disk.
func isDiskFormat(format string) bool { return format == "raw-efi" || format == "iso-efi" }

// usesRootImage reports whether format is written from the verified root
// image: the disk formats and the update bundle.
func usesRootImage(format string) bool { return isDiskFormat(format) || format == "update" }

// RootImage is the host's tree written as a verified root image, with
// what every boot of it shares: the kernel, the version and the kernel
// command line.
type RootImage struct {
	// Path is the image file, a temporary file beside the outputs.
	Path  string
	Image *rootimg.Image
	// Kernel is the kernel binary's entry in the tree, read where it is
	// written (not held in memory).
	Kernel *rootfs.Entry
	// Version names the boot entry: the spec's boot.version, else the
	// start of the root hash, so a changed root gives a new version.
	Version string
	// Tries is how often the boot loader tries a new entry.
	Tries int
	// Cmdline is the entry's kernel command line without where the root
	// image is: the spec's, the verity parameters, the boot assessment's
	// times, and what turns a hung kernel into a reset.
	Cmdline string
}

// errNoKernel is a boot format asked of a spec without a kernel.
var errNoKernel = errors.New("the spec names no kernel image")

// RootImage writes host's tree as the verified root image into dir.
func (b *Builder) RootImage(ctx context.Context, spec *config.Spec, host *rootfs.Host, dir string) (*RootImage, error) {
	if host.Kernel == nil {
		return nil, errNoKernel
	}
	kernel := host.Kernel
	tmp, err := os.CreateTemp(dir, "."+b.o.name+"-root-*.img")
	if err != nil {
		return nil, fmt.Errorf("writing the root image: %w", err)
	}
	ri := &RootImage{Path: tmp.Name(), Kernel: kernel, Tries: defaultTries}
	img, err := rootimg.Write(ctx, host.Tree, tmp, rootimg.WithEpoch(b.o.epoch))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(ri.Path)
		return nil, err
	}
	ri.Image = img
	ri.Version = hex.EncodeToString(img.Verity.RootHash)[:versionHexLen]
	if boot := spec.Boot; boot != nil {
		if boot.Version != "" {
			ri.Version = boot.Version
		}
		if boot.Tries > 0 {
			ri.Tries = boot.Tries
		}
	}
	ri.Cmdline = entryCmdline(spec, host.Cmdline, img)
	return ri, nil
}

// Remove deletes the image file.
func (r *RootImage) Remove() {
	if r != nil {
		os.Remove(r.Path)
	}
}

func (r *RootImage) summary() *Root {
	return &Root{
		Version: r.Version, RootHash: hex.EncodeToString(r.Image.Verity.RootHash),
		Verity: r.Image.Verity.String(), Size: r.Image.Size,
	}
}

// options is the entry's command line with extra parameters.
func (r *RootImage) options(extra ...string) string {
	return strings.Join(strings.Fields(strings.Join(append([]string{r.Cmdline}, extra...), " ")), " ")
}

// entryCmdline is the kernel command line of a boot entry: the spec's,
// the verity parameters, the boot assessment's times, and what turns a
// hung or panicked kernel into a reset (so the boot counter runs down).
func entryCmdline(spec *config.Spec, cmdline string, img *rootimg.Image) string {
	parts := []string{strings.TrimSpace(cmdline), img.Verity.Cmdline()}
	if spec.Boot != nil && spec.Boot.Settle != "" {
		parts = append(parts, bootparam.Settle+"="+spec.Boot.Settle)
	}
	if spec.Boot != nil && spec.Boot.Deadline != "" {
		parts = append(parts, bootparam.Deadline+"="+spec.Boot.Deadline)
	}
	if d := spec.Disk; d != nil && d.EncryptData != "" {
		parts = append(parts, bootparam.DataEncrypt+"="+d.EncryptData)
		if d.WithoutTPM != "" {
			parts = append(parts, bootparam.WithoutTPM+"="+d.WithoutTPM)
		}
	}
	parts = append(parts, hangParams(cmdline)...)
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

// hangParams makes the kernel reset instead of hanging on a panic, a soft
// lockup or a hung task, unless the spec's command line says otherwise.
func hangParams(cmdline string) []string {
	var out []string
	for _, p := range []string{"panic=10", "softlockup_panic=1", "hung_task_panic=1"} {
		key, _, _ := strings.Cut(p, "=")
		if !slices.ContainsFunc(strings.Fields(cmdline), func(f string) bool { return strings.HasPrefix(f, key+"=") }) {
			out = append(out, p)
		}
	}
	return out
}

// Stage0Tree is the part of t that stage 0 runs from: the kernel modules
// with their index files, /dev/console, and as /init the init image's
// stage-0 binary (the whole init when the image has none). Its entries
// are copies: the two trees share none.
func Stage0Tree(t *rootfs.Tree) *rootfs.Tree {
	s := rootfs.New()
	t.Walk(func(e *rootfs.Entry) error {
		if inStage0(e.Path) {
			s.Put(e.Copy())
		}
		return nil
	})
	if e := t.Get(Stage0Binary); e != nil && e.Kind == rootfs.KindFile {
		pid1 := *e
		pid1.Path = "init"
		s.Put(&pid1)
	}
	return s
}

func inStage0(p string) bool {
	switch p {
	case "", "init", "dev", "dev/console", "lib", "lib/modules", "usr", "usr/lib", "usr/lib/modules":
		return true
	}
	return strings.HasPrefix(p, "lib/modules/") || strings.HasPrefix(p, "usr/lib/modules/")
}

// writeStage0Initrd writes the stage-0 initrd a verified boot starts
// from to w.
func writeStage0Initrd(ctx context.Context, w io.Writer, host *rootfs.Host, comp output.Compression) error {
	opts, done, err := initrdOptions(host, comp)
	if err != nil {
		return err
	}
	defer done()
	return output.WriteInitrd(ctx, w, Stage0Tree(host.Tree), opts...)
}

// initrdOptions are the initrd writer's options for host: the compression
// and, when the kernel image has microcode, the microcode in front. done
// releases the microcode's file.
func initrdOptions(host *rootfs.Host, comp output.Compression) (opts []output.Option, done func(), err error) {
	opts = []output.Option{output.WithCompression(comp)}
	if host.Ucode == nil {
		return opts, func() {}, nil
	}
	rc, err := host.Ucode.Open()
	if err != nil {
		return nil, nil, err
	}
	return append(opts, output.WithUcode(rc)), func() { rc.Close() }, nil
}

// diskSeed derives a disk's GUIDs from the output name and the root hash:
// the same host gives the same GUIDs.
func diskSeed(name string, r *RootImage) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "bulkhead raw-efi\x00%s\x00", name)
	h.Write(r.Image.Verity.RootHash)
	return h.Sum(nil)
}

// entrySource is a regular file of the tree as a disk input: its bytes, or
// its section of a layer blob in the store.
func entrySource(e *rootfs.Entry) disk.Source {
	if e.Content.Blob == "" {
		return disk.FromBytes(e.Content.Data)
	}
	return disk.FromFileSection(e.Content.Blob, e.Content.Offset, e.Size)
}

// readEntry reads a regular file of the tree.
func readEntry(e *rootfs.Entry) ([]byte, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != e.Size {
		return nil, fmt.Errorf("%s: read %s bytes, want %d", e.Path, strconv.Itoa(len(b)), e.Size)
	}
	return b, nil
}
