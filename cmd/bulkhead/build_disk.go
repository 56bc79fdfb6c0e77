package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
)

// Disk image defaults.
const (
	// defaultBootloader is the image holding systemd-boot when the spec's
	// disk section names none (images/systemd-boot).
	defaultBootloader = "bulkhead/systemd-boot:252"
	// bootloaderPath is systemd-boot's EFI binary inside that image.
	bootloaderPath = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	// defaultTries is how often systemd-boot tries a new entry.
	defaultTries = 3
	// rootImgParam tells stage 0 where the initrd of iso-efi and
	// kernel+initrd carries the root image.
	rootImgParam = bootparam.RootImage + "=/" + bootparam.RootImageFile
	// stage0Binary is the init image's stage 0 alone.
	stage0Binary = "usr/lib/bulkhead/stage0"
	// initPackage is bulkhead's init, as its Go build information names it.
	initPackage = "github.com/bulkhead-dev/bulkhead/cmd/init"
	// versionHexLen is how much of the root hash names a version by default.
	versionHexLen = 12
)

// isDiskFormat reports whether format boots from a verified root image.
func isDiskFormat(format string) bool { return format == "raw-efi" || format == "iso-efi" }

// bootloaderRef returns the boot loader image of spec and where the spec
// names it (zero when it is the default).
func bootloaderRef(spec *config.Spec) specRef {
	if spec.Disk != nil && spec.Disk.Bootloader.Ref != "" {
		return specRef{spec.Disk.Bootloader.Ref, spec.Disk.Bootloader.Pos}
	}
	return specRef{ref: defaultBootloader}
}

// diskBuild is what raw-efi and iso-efi share: the root image (written
// once, into a temporary file beside the outputs), the kernel, the
// stage-0 tree and the boot loader.
type diskBuild struct {
	spec       *config.Spec
	host       *rootfs.Host
	images     map[string]*resolve.Image
	f          buildFlags
	comp       output.Compression
	epoch      int64
	bootloader []byte // loaded when a disk format needs it

	rootPath string         // the root image file
	root     *rootimg.Image // its sizes and verity parameters
	kernel   []byte
	withRoot []byte // the stage-0 initrd carrying the root image (rootInitrd)
}

func newDiskBuild(ctx context.Context, spec *config.Spec, host *rootfs.Host, images map[string]*resolve.Image, f buildFlags, comp output.Compression, epoch int64) (*diskBuild, error) {
	if host.Kernel == nil {
		return nil, fmt.Errorf("the spec names no kernel image")
	}
	d := &diskBuild{spec: spec, host: host, images: images, f: f, comp: comp, epoch: epoch}
	var err error
	if d.kernel, err = readEntry(host.Kernel); err != nil {
		return nil, fmt.Errorf("reading the kernel: %w", err)
	}
	if err := d.writeRoot(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *diskBuild) summary() *rootSummary {
	return &rootSummary{
		Version: d.version(), RootHash: hex.EncodeToString(d.root.Verity.RootHash),
		Verity: d.root.Verity.String(), Size: d.root.Size,
	}
}

// close removes the temporary root image.
func (d *diskBuild) close() {
	if d != nil && d.rootPath != "" {
		os.Remove(d.rootPath)
	}
}

func (d *diskBuild) loadBootloader() error {
	if d.bootloader != nil {
		return nil
	}
	ref := bootloaderRef(d.spec)
	img := d.images[ref.ref]
	if img == nil {
		return fmt.Errorf("boot loader image %s was not resolved", ref.ref)
	}
	t, err := rootfs.Flatten(img, rootfs.WithEpoch(d.epoch))
	if err != nil {
		return err
	}
	if d.bootloader, err = t.ReadFile(bootloaderPath); err != nil {
		return fmt.Errorf("boot loader image %s: %w", ref.ref, err)
	}
	return nil
}

// writeRoot writes the host's tree as the verified root image.
func (d *diskBuild) writeRoot(ctx context.Context) error {
	tmp, err := os.CreateTemp(d.f.out, "."+d.f.name+"-root-*.img")
	if err != nil {
		return fmt.Errorf("writing the root image: %w", err)
	}
	d.rootPath = tmp.Name()
	img, err := rootimg.Write(ctx, d.host.Tree, tmp, rootimg.WithEpoch(d.epoch))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	d.root = img
	return nil
}

// version names the entry: the spec's boot.version, else the start of
// the root hash, so a changed root gives a new version.
func (d *diskBuild) version() string {
	if d.spec.Boot != nil && d.spec.Boot.Version != "" {
		return d.spec.Boot.Version
	}
	return hex.EncodeToString(d.root.Verity.RootHash)[:versionHexLen]
}

func (d *diskBuild) tries() int {
	if d.spec.Boot != nil && d.spec.Boot.Tries > 0 {
		return d.spec.Boot.Tries
	}
	return defaultTries
}

// options is the kernel command line of the entry: the spec's, the
// verity parameters, the boot assessment's times, and what turns a hung
// or panicked kernel into a reset (so the boot counter runs down).
func (d *diskBuild) options(extra ...string) string {
	parts := []string{strings.TrimSpace(d.host.Cmdline), d.root.Verity.Cmdline()}
	if d.spec.Boot != nil && d.spec.Boot.Settle != "" {
		parts = append(parts, bootparam.Settle+"="+d.spec.Boot.Settle)
	}
	if d.spec.Boot != nil && d.spec.Boot.Deadline != "" {
		parts = append(parts, bootparam.Deadline+"="+d.spec.Boot.Deadline)
	}
	parts = append(parts, hangParams(d.host.Cmdline)...)
	return strings.Join(strings.Fields(strings.Join(append(parts, extra...), " ")), " ")
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

// stage0Initrd writes the initrd a disk boot starts from: the init and
// the kernel modules (stage 0 needs nothing else), plus extra entries.
func (d *diskBuild) stage0Initrd(ctx context.Context, extra ...*rootfs.Entry) ([]byte, error) {
	t := stage0Tree(d.host.Tree)
	for _, e := range extra {
		t.Put(e)
	}
	opts, done, err := initrdOptions(d.host, d.comp)
	if err != nil {
		return nil, err
	}
	defer done()
	var buf bytes.Buffer
	if err := output.WriteInitrd(ctx, &buf, t, opts...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// stage0Tree is the part of t that stage 0 runs from: the kernel modules
// with their index files, /dev/console, and as /init the init image's
// stage-0 binary (the whole init when the image has none).
func stage0Tree(t *rootfs.Tree) *rootfs.Tree {
	s := rootfs.New()
	t.Walk(func(e *rootfs.Entry) error {
		if inStage0(e.Path) {
			s.Put(e)
		}
		return nil
	})
	if e := t.Get(stage0Binary); e != nil && e.Kind == rootfs.KindFile {
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

// seed derives the disk's GUIDs: the same host gives the same GUIDs.
func (d *diskBuild) seed() []byte {
	h := sha256.New()
	fmt.Fprintf(h, "bulkhead raw-efi\x00%s\x00", d.f.name)
	h.Write(d.root.Verity.RootHash)
	return h.Sum(nil)
}

func (d *diskBuild) writeRaw(ctx context.Context) (string, error) {
	var sizes [3]int64
	if dk := d.spec.Disk; dk != nil {
		for i, s := range []string{dk.ESPSize, dk.RootSize, dk.DataSize} {
			if s == "" {
				continue
			}
			n, err := config.ParseSize(s)
			if err != nil {
				return "", fmt.Errorf("%s: disk: %w", dk.Pos, err)
			}
			sizes[i] = n
		}
	}
	boot, err := d.bootloaderImage()
	if err != nil {
		return "", err
	}
	enroll, err := d.f.secureBoot.enrollFiles()
	if err != nil {
		return "", err
	}
	initrd, err := d.stage0Initrd(ctx)
	if err != nil {
		return "", err
	}
	mkUKI, err := d.ukiBuilder(initrd)
	if err != nil {
		return "", err
	}
	p := filepath.Join(d.f.out, d.f.name+".img")
	_, err = disk.WriteRaw(ctx, p, disk.RawInput{
		Bootloader: disk.FromBytes(boot),
		Entries: []disk.Entry{{
			Version: d.version(),
			Kernel:  disk.FromBytes(d.kernel),
			Initrd:  disk.FromBytes(initrd),
			Options: d.options(),
			Slot:    "a",
			Tries:   d.tries(),
			UKI:     mkUKI,
		}},
		RootA:    disk.FromFile(d.rootPath),
		ESPSize:  sizes[0],
		RootSize: sizes[1],
		DataSize: sizes[2],
		Seed:     d.seed(),
		Enroll:   enroll,
	})
	if err != nil {
		return "", err
	}
	return p, nil
}

// writeISO boots the same system from an ISO: the root image rides in the
// initrd and stage 0 attaches it to a loop device.
func (d *diskBuild) writeISO(ctx context.Context) (string, error) {
	boot, err := d.bootloaderImage()
	if err != nil {
		return "", err
	}
	initrd, err := d.rootInitrd(ctx)
	if err != nil {
		return "", err
	}
	mkUKI, err := d.ukiBuilder(initrd)
	if err != nil {
		return "", err
	}
	p := filepath.Join(d.f.out, d.f.name+".iso")
	err = disk.WriteISO(ctx, p, disk.ISOInput{
		Bootloader: disk.FromBytes(boot),
		Entry: disk.Entry{
			Version: d.version(),
			Kernel:  disk.FromBytes(d.kernel),
			Initrd:  disk.FromBytes(initrd),
			Options: d.options(rootImgParam),
			UKI:     mkUKI,
		},
		VolumeID: isoVolumeID(d.f.name),
	})
	if err != nil {
		return "", err
	}
	return p, nil
}

// rootInitrd is the stage-0 initrd carrying the root image, the same for
// iso-efi and kernel+initrd: compressed once.
func (d *diskBuild) rootInitrd(ctx context.Context) ([]byte, error) {
	if d.withRoot == nil {
		b, err := d.stage0Initrd(ctx, d.rootEntry())
		if err != nil {
			return nil, err
		}
		d.withRoot = b
	}
	return d.withRoot, nil
}

// rootEntry is the root image as a file of an initrd, for iso-efi and
// kernel+initrd boots.
func (d *diskBuild) rootEntry() *rootfs.Entry {
	return &rootfs.Entry{
		Path: bootparam.RootImageFile, Kind: rootfs.KindFile, Mode: 0o444,
		Size: d.root.Size, ModTime: d.epoch, Content: rootfs.Content{Blob: d.rootPath},
		Origin: rootfs.OriginBulkhead,
	}
}

// writeKernelInitrd writes kernel+initrd that boots the verified root: the
// stage-0 initrd carries the root image, the command line its verity
// parameters.
func (d *diskBuild) writeKernelInitrd(ctx context.Context) ([]string, error) {
	initrd, err := d.rootInitrd(ctx)
	if err != nil {
		return nil, err
	}
	in := output.Inputs{Kernel: bytes.NewReader(d.kernel), KernelSize: int64(len(d.kernel)), Cmdline: d.options(rootImgParam), Initrd: initrd}
	ki, err := output.WriteKernelInitrd(ctx, d.f.out, d.f.name, in)
	if err != nil {
		return nil, err
	}
	return []string{ki.Kernel, ki.Initrd, ki.Cmdline}, nil
}

// hasBulkheadInit reports whether t's /init is bulkhead's init (by its Go
// build information): only that init has the stage 0 that verifies and
// mounts a root image. Hosts with another init (LinuxKit's) boot
// kernel+initrd from the plain initramfs.
func hasBulkheadInit(t *rootfs.Tree) bool {
	e := t.Get("init")
	if e == nil || e.Kind != rootfs.KindFile {
		return false
	}
	r, c, err := e.ReaderAt()
	if err != nil {
		return false
	}
	defer c.Close()
	bi, err := buildinfo.Read(r)
	return err == nil && bi.Path == initPackage
}

// isoVolumeID makes an ISO 9660 volume id (A-Z 0-9 _, at most 32) of name.
func isoVolumeID(name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() == 32 {
			break
		}
	}
	if b.Len() == 0 {
		return disk.DefaultVolumeID
	}
	return b.String()
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
