package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
)

// artifacts writes the output formats of one host into dir. The root
// image, the boot loader and the stage-0 initrd carrying the root are
// made once, when the first format needs them.
type artifacts struct {
	b        *Builder
	dir      string
	spec     *config.Spec
	host     *rootfs.Host
	images   map[string]*resolve.Image
	hostInit Init

	root       *RootImage
	bootloader []byte
	withRoot   string // the file of the stage-0 initrd carrying the root image
	stage0     string // the file of the stage-0 initrd alone (withRoot begins with it)
	// ukis are the UKIs made, by initrd file and command line: raw-efi
	// and an update bundle carry the same one, assembled and signed once.
	ukis map[[2]string][]byte
	// digests are the outputs hashed while written, by path: describe
	// need not read them back.
	digests map[string]string
	// kernel waits for the kernel file of kernel+initrd, written on the
	// other core while the root image is made (nil until started).
	kernel func() (*output.AtomicFile, error)
}

// close removes the temporary root image, initrd and kernel file.
func (a *artifacts) close() {
	if a.kernel != nil {
		if f, _ := a.kernel(); f != nil {
			f.Abort() // nothing once committed
		}
	}
	a.root.Remove()
	for _, p := range []string{a.withRoot, a.stage0} {
		if p != "" {
			os.Remove(p)
		}
	}
}

// write writes each format and returns the files, in format order.
func (a *artifacts) write(ctx context.Context) ([]Output, error) {
	// Only bulkhead's init can boot a verified root.
	verified := a.hostInit == BulkheadInit
	var outs []Output
	for _, format := range a.b.o.formats {
		a.b.step("write", "writing %s", format)
		if a.root == nil && (usesRootImage(format) || format == "kernel+initrd" && verified) {
			if !verified {
				return nil, fmt.Errorf("writing %s: a verified root needs bulkhead's init as /init (the image bulkhead/init, %s): it checks and mounts the root image", format, InitPackage)
			}
			a.b.step("root image", "writing the verified root image")
			// Every format with a verified root boots from the stage-0
			// initrd, which does not depend on the root image: it is
			// compressed on the other core meanwhile.
			stage0 := make(chan error, 1)
			go func() {
				_, err := a.stage0Initrd(ctx)
				stage0 <- err
			}()
			if slices.Contains(a.b.o.formats, "kernel+initrd") {
				a.startKernel(ctx)
			}
			root, err := a.b.RootImage(ctx, a.spec, a.host, a.dir)
			if serr := <-stage0; err == nil {
				err = serr
			}
			a.root = root
			if err != nil {
				return nil, fmt.Errorf("writing %s: %w", format, err)
			}
		}
		paths, err := a.format(ctx, format)
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", format, err)
		}
		for _, p := range paths {
			o, err := a.describe(p, format)
			if err != nil {
				return nil, err
			}
			outs = append(outs, o)
		}
	}
	return outs, nil
}

func (a *artifacts) format(ctx context.Context, format string) ([]string, error) {
	switch format {
	case "raw-efi":
		p, err := a.writeRaw(ctx)
		return []string{p}, err
	case "iso-efi":
		p, err := a.writeISO(ctx)
		return []string{p}, err
	case "update":
		p, err := a.writeUpdate(ctx)
		return []string{p}, err
	case "kernel+initrd":
		if a.root != nil {
			return a.writeVerifiedKernelInitrd(ctx)
		}
		return a.writeKernelInitrd(ctx)
	case "tar":
		p := a.path(".tar")
		af, err := output.Create(p)
		if err != nil {
			return nil, err
		}
		defer af.Abort()
		if err := output.WriteTar(ctx, af, a.host.Tree); err != nil {
			return nil, err
		}
		return []string{p}, af.Commit()
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// path is the output file NAME+suffix.
func (a *artifacts) path(suffix string) string { return filepath.Join(a.dir, a.b.o.name+suffix) }

// writeKernelInitrd writes the kernel and the whole root as the initrd.
func (a *artifacts) writeKernelInitrd(ctx context.Context) ([]string, error) {
	host := a.host
	if host.Kernel == nil {
		return nil, errNoKernel
	}
	kernel, c, err := host.Kernel.ReaderAt()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	in := output.Inputs{Cmdline: host.Cmdline, Tree: host.Tree, Kernel: kernel, KernelSize: host.Kernel.Size}
	opts, done, err := initrdOptions(host, a.b.o.compression)
	if err != nil {
		return nil, err
	}
	defer done()
	ki, err := output.WriteKernelInitrd(ctx, a.dir, a.b.o.name, in, opts...)
	if err != nil {
		return nil, err
	}
	a.hashed(ki.Digests)
	return []string{ki.Kernel, ki.Initrd, ki.Cmdline}, nil
}

// writeVerifiedKernelInitrd writes kernel+initrd that boots the verified
// root: the stage-0 initrd carries the root image, the command line its
// verity parameters.
func (a *artifacts) writeVerifiedKernelInitrd(ctx context.Context) ([]string, error) {
	initrd, err := a.rootInitrd(ctx)
	if err != nil {
		return nil, err
	}
	kernel, err := a.kernel() // started with the root image
	if err != nil {
		return nil, err
	}
	in := output.Inputs{KernelFile: kernel, Cmdline: a.root.options(rootImgParam),
		InitrdPath: initrd, InitrdDigest: a.digests[initrd]}
	ki, err := output.WriteKernelInitrd(ctx, a.dir, a.b.o.name, in)
	if err != nil {
		return nil, err
	}
	a.hashed(ki.Digests)
	return []string{ki.Kernel, ki.Initrd, ki.Cmdline}, nil
}

// startKernel starts writing the kernel file of kernel+initrd from the
// host's kernel; a.kernel waits for it.
func (a *artifacts) startKernel(ctx context.Context) {
	done := make(chan struct{})
	var f *output.AtomicFile
	var err error
	go func() {
		defer close(done)
		if a.host.Kernel == nil {
			err = errNoKernel
			return
		}
		kernel, c, rerr := a.host.Kernel.ReaderAt()
		if rerr != nil {
			err = rerr
			return
		}
		defer c.Close()
		f, err = output.WriteKernel(ctx, a.dir, a.b.o.name, output.Inputs{Kernel: kernel, KernelSize: a.host.Kernel.Size})
	}()
	a.kernel = func() (*output.AtomicFile, error) {
		<-done
		return f, err
	}
}

func (a *artifacts) loadBootloader() error {
	if a.bootloader != nil {
		return nil
	}
	ref := BootloaderRef(a.spec)
	img := a.images[ref.Ref]
	if img == nil {
		return fmt.Errorf("boot loader image %s was not resolved", ref.Ref)
	}
	t, err := rootfs.Flatten(img, rootfs.WithEpoch(a.b.o.epoch))
	if err != nil {
		return err
	}
	if a.bootloader, err = t.ReadFile(bootloaderPath); err != nil {
		return fmt.Errorf("boot loader image %s: %w", ref.Ref, err)
	}
	return nil
}

func (a *artifacts) writeRaw(ctx context.Context) (string, error) {
	var sizes [3]int64
	if dk := a.spec.Disk; dk != nil {
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
	boot, err := a.bootloaderImage()
	if err != nil {
		return "", err
	}
	enroll, err := a.enroll()
	if err != nil {
		return "", err
	}
	initrd, err := a.stage0Initrd(ctx)
	if err != nil {
		return "", err
	}
	mkUKI, err := a.ukiBuilder(initrd)
	if err != nil {
		return "", err
	}
	p := a.path(".img")
	l, err := disk.WriteRaw(ctx, p, disk.RawInput{
		Bootloader: disk.FromBytes(boot),
		Entries: []disk.Entry{{
			Version: a.root.Version,
			Kernel:  entrySource(a.root.Kernel),
			Initrd:  disk.FromFile(initrd),
			Options: a.root.options(),
			Slot:    "a",
			Tries:   a.root.Tries,
			UKI:     mkUKI,
		}},
		RootA:    disk.FromFile(a.root.Path),
		ESPSize:  sizes[0],
		RootSize: sizes[1],
		DataSize: sizes[2],
		Seed:     diskSeed(a.b.o.name, a.root),
		Enroll:   enroll,
	})
	if err != nil {
		return "", err
	}
	a.hashed(map[string]string{p: l.Digest})
	return p, nil
}

// writeISO boots the same system from an ISO: the root image rides in the
// initrd and stage 0 attaches it to a loop device.
func (a *artifacts) writeISO(ctx context.Context) (string, error) {
	boot, err := a.bootloaderImage()
	if err != nil {
		return "", err
	}
	initrd, err := a.rootInitrd(ctx)
	if err != nil {
		return "", err
	}
	mkUKI, err := a.ukiBuilder(initrd)
	if err != nil {
		return "", err
	}
	p := a.path(".iso")
	err = disk.WriteISO(ctx, p, disk.ISOInput{
		Bootloader: disk.FromBytes(boot),
		Entry: disk.Entry{
			Version: a.root.Version,
			Kernel:  entrySource(a.root.Kernel),
			Initrd:  disk.FromFile(initrd),
			Options: a.root.options(rootImgParam),
			UKI:     mkUKI,
		},
		VolumeID: isoVolumeID(a.b.o.name),
	})
	if err != nil {
		return "", err
	}
	return p, nil
}

// rootInitrd is the file of the initrd carrying the root image, the same
// for iso-efi and kernel+initrd: the stage-0 initrd (compressed while the
// root image was written) followed by a second compressed archive holding
// only the root image, which the kernel unpacks after the first
// (Documentation/driver-api/early-userspace/buffer-format.rst). That
// archive comes from the store's initrd cache when a checked one is there
// (output.ArchiveCache). The file is written once, into a temporary file
// beside the outputs (it is as large as the root), and hashed on the way
// when kernel+initrd links it into place.
func (a *artifacts) rootInitrd(ctx context.Context) (string, error) {
	return a.initrdFile(&a.withRoot, slices.Contains(a.b.o.formats, "kernel+initrd"), func(w io.Writer) error {
		stage0, err := a.stage0Initrd(ctx)
		if err != nil {
			return err
		}
		return a.writeRootInitrd(ctx, w, stage0)
	})
}

// writeRootInitrd writes the stage-0 initrd file stage0, then the root
// image's archive, to w.
func (a *artifacts) writeRootInitrd(ctx context.Context, w io.Writer, stage0 string) error {
	f, err := os.Open(stage0)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	f.Close()
	if err != nil {
		return err
	}
	t := rootfs.New()
	if r := a.host.Tree.Get(""); r != nil {
		t.Put(r.Copy()) // the same root directory as the first archive's
	}
	t.Put(a.rootEntry())
	// The image's root hash names its every byte; the rest of the key is
	// what else the archive holds.
	key := fmt.Sprintf("root image %x %d %d", a.root.Image.Verity.RootHash, a.root.Image.Size, a.b.o.epoch)
	return output.WriteCachedInitrd(ctx, w, t, a.b.archiveCache(), key, output.WithCompression(a.b.o.compression))
}

// stage0Initrd is the file of the stage-0 initrd without the root (the
// raw disk's and the update bundle's, where the root is a partition, and
// the first archive of rootInitrd's), written once, removed by close: it
// streams into the ESP rather than sitting in memory.
func (a *artifacts) stage0Initrd(ctx context.Context) (string, error) {
	return a.initrdFile(&a.stage0, false, func(w io.Writer) error {
		return writeStage0Initrd(ctx, w, a.host, a.b.o.compression)
	})
}

// initrdFile writes an initrd with write to a temporary file beside the
// outputs, once, and records its name in *path (and, with hash, its
// digest in a.digests).
func (a *artifacts) initrdFile(path *string, hash bool, write func(io.Writer) error) (string, error) {
	if *path != "" {
		return *path, nil
	}
	tmp, err := os.CreateTemp(a.dir, "."+a.b.o.name+"-initrd-*.img")
	if err != nil {
		return "", fmt.Errorf("writing the initrd: %w", err)
	}
	var w io.Writer = tmp
	h := sha256.New()
	if hash {
		w = io.MultiWriter(tmp, h)
	}
	err = write(w)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("writing the initrd: %w", err)
	}
	*path = tmp.Name()
	if hash {
		a.hashed(map[string]string{*path: "sha256:" + hex.EncodeToString(h.Sum(nil))})
	}
	return *path, nil
}

// hashed records the digests writers computed of the files they wrote.
func (a *artifacts) hashed(digests map[string]string) {
	if a.digests == nil {
		a.digests = map[string]string{}
	}
	maps.Copy(a.digests, digests)
}

// describe is describe, taking the digest the writer computed when there
// is one rather than reading the file back.
func (a *artifacts) describe(path, format string) (Output, error) {
	d := a.digests[path]
	if d == "" {
		return describe(path, format)
	}
	st, err := os.Stat(path)
	if err != nil {
		return Output{}, err
	}
	return Output{Path: path, Format: format, Size: st.Size(), Digest: d}, nil
}

// rootEntry is the root image as a file of an initrd, for iso-efi and
// kernel+initrd boots.
func (a *artifacts) rootEntry() *rootfs.Entry {
	return &rootfs.Entry{
		Path: bootparam.RootImageFile, Kind: rootfs.KindFile, Mode: 0o444,
		Size: a.root.Image.Size, ModTime: a.b.o.epoch, Content: rootfs.Content{Blob: a.root.Path},
		Origin: rootfs.OriginBulkhead,
	}
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

// describe measures a written output file: size and sha256 digest.
func describe(path, format string) (Output, error) {
	f, err := os.Open(path)
	if err != nil {
		return Output{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Output{}, err
	}
	return Output{Path: path, Format: format, Size: n, Digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}
