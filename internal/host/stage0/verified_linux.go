package stage0

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/host/blockdev"
	"github.com/bulkhead-dev/bulkhead/internal/host/dm"
	"github.com/bulkhead-dev/bulkhead/internal/host/kmod"
	"github.com/bulkhead-dev/bulkhead/internal/modindex"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// SwitchToVerified mounts the verified root on NewRoot (MountVerified),
// switches root into it (moving /dev, /proc, /sys and /run along) and
// executes init there. It returns only on failure; a *VerificationError
// means the root did not match its root hash and was not mounted.
func SwitchToVerified(ctx context.Context, init string, r VerifiedRoot, logf Logf) error {
	if _, err := MountVerified(ctx, r, logf); err != nil {
		return err
	}
	var missing []string
	for _, d := range MountPoints {
		if fi, err := os.Stat(NewRoot + d); err != nil || !fi.IsDir() {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		logf("stage0: warning: the root has no %s", strings.Join(missing, ", "))
	}
	logf("stage0: switching root")
	return mount.SwitchRoot(NewRoot, init)
}

// MountVerified loads the modules the root needs, finds the root device,
// puts dm-verity on it, reads all of it (so every block is checked against
// the root hash before anything mounts it), reloads the table so that a
// later mismatch restarts the machine, and mounts the result read-only on
// NewRoot. It returns the dm device.
func MountVerified(ctx context.Context, r VerifiedRoot, logf Logf) (string, error) {
	begin := time.Now()
	loaded, err := LoadModules(modulesDir(), RootModules)
	if err != nil {
		logf("stage0: loading modules: %v", err) // what is missing shows below
	}
	logf("stage0: loaded %d modules in %s", len(loaded), since(begin))

	step := time.Now()
	src, err := rootDevice(ctx, &r)
	if err != nil {
		return "", err
	}
	logf("stage0: root %s is %s (PARTUUID=%s), found in %s", r, src, r.PartUUID, since(step))
	if r.Slot {
		if err := keepRootSlot(r.PartUUID); err != nil {
			logf("stage0: keeping the root slot for stage 1: %v", err) // stage 1 looks again
		}
	}

	ctl, err := dm.Open()
	if err != nil {
		return "", err
	}
	defer ctl.Close()
	table, err := verityTarget(r.Verity, src)
	if err != nil {
		return "", err
	}
	dev, err := ctl.Create(DeviceName, dm.FlagReadOnly, table)
	if err != nil {
		return "", fmt.Errorf("creating verity device: %w", err)
	}
	if err := dev.EnsureNode(); err != nil {
		return "", err
	}

	step = time.Now()
	n, err := Verify(dev.Path(), r.Verity.DataBlocks*verity.BlockSize)
	if err != nil {
		_ = ctl.Remove(DeviceName)
		return "", err
	}
	d := time.Since(step)
	logf("stage0: root verified in %s (%d MiB, %.0f MiB/s)", d.Round(time.Millisecond), n>>20, float64(n)/(1<<20)/max(d.Seconds(), 1e-3))

	restart, err := verityTarget(r.Verity, src, "restart_on_corruption")
	if err != nil {
		return "", err
	}
	if err := ctl.Reload(DeviceName, dm.FlagReadOnly, restart); err != nil {
		return "", fmt.Errorf("arming restart on corruption: %w", err)
	}

	step = time.Now()
	fstype, err := mountRoot(dev.Path())
	if err != nil {
		return "", err
	}
	logf("stage0: mounted %s (%s) read-only on %s in %s; stage 0 took %s", dev.Path(), fstype, NewRoot, since(step), since(begin))
	return dev.Path(), nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// modulesDir is /lib/modules/<running kernel release>.
func modulesDir() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "/lib/modules"
	}
	return filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
}

// rootDevice finds the partition (the slot, setting r.PartUUID, when the
// command line names none) or attaches the image.
func rootDevice(ctx context.Context, r *VerifiedRoot) (string, error) {
	switch {
	case r.Image != "":
		return blockdev.AttachLoop(r.Image, blockdev.LoopOptions{ReadOnly: true})
	case r.Slot:
		p, err := FindSlot(ctx, r.Verity)
		if err != nil {
			return "", err
		}
		r.PartUUID = p.UUID
		return p.Dev, nil
	}
	return blockdev.FindPartUUID(ctx, r.PartUUID)
}

// verityTarget is the one-line verity table over src (data and tree in
// the one device).
func verityTarget(p verity.Params, src string, opts ...string) (dm.Target, error) {
	params, err := p.Table(src, src, opts...)
	if err != nil {
		return dm.Target{}, err
	}
	return dm.Target{Length: p.Sectors(), Type: "verity", Params: params}, nil
}

// LoadModules loads the named modules found under dir and, first, the
// modules they depend on. Names neither under dir nor loadable (built in,
// or not in this kernel) are passed over. It returns the module files it
// loaded (or found loaded) and the failures.
func LoadModules(dir string, names []string) ([]string, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil // a kernel with everything built in
	}
	ix, err := modindex.Read(dir)
	if err != nil {
		return nil, err
	}
	order, _, problems := ix.Closure(names)
	errs := problems
	var loaded []string
	for _, p := range order {
		if err := kmod.Load(filepath.Join(dir, p)); err != nil {
			errs = append(errs, err)
			continue
		}
		loaded = append(loaded, p)
	}
	return loaded, errors.Join(errs...)
}

// verifyChunk is how much Verify reads at a time.
const verifyChunk = 1 << 20

// maxReaders bounds Verify's parallel readers. dm-verity checks a read in
// one work item, so parallel reads spread the hashing over the CPUs.
const maxReaders = 4

// Verify reads size bytes of a dm-verity device from start to end, with
// direct I/O so nothing lingers in the page cache, and returns how many it
// read. The kernel checks every block against the hash tree as it is read;
// a block that does not match fails with an I/O error, reported as a
// *VerificationError naming the first bad block.
func Verify(dev string, size uint64) (uint64, error) {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("verifying root: %w", err)
	}
	defer f.Close()
	chunks := (size + verifyChunk - 1) / verifyChunk
	readers := min(uint64(runtime.NumCPU()), maxReaders, max(chunks, 1))
	var next atomic.Uint64
	failed := make([]uint64, readers) // per reader: first failing chunk + 1, 0 if none
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			errs[r] = readChunks(f, size, &next, &failed[r])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("verifying root: %w", err)
	}
	var bad uint64
	for _, c := range failed {
		if c != 0 && (bad == 0 || c < bad) {
			bad = c
		}
	}
	if bad != 0 {
		off := (bad - 1) * verifyChunk
		block, err := firstBadBlock(f, off, min(verifyChunk, size-off))
		return off, &VerificationError{Device: dev, Block: block, Err: err}
	}
	// The device must end where the parameters say.
	buf, err := alignedBuffer(verity.BlockSize)
	if err != nil {
		return 0, fmt.Errorf("verifying root: %w", err)
	}
	defer unix.Munmap(buf)
	if _, err := f.ReadAt(buf, int64(size)); err != io.EOF {
		return size, fmt.Errorf("verifying root: %s is larger than its %d data blocks", dev, size/verity.BlockSize)
	}
	return size, nil
}

// readChunks reads chunks taken from next until none is left or one fails;
// it records the first failing chunk (plus one) in failed. It returns an
// error only when it cannot read at all.
func readChunks(f *os.File, size uint64, next *atomic.Uint64, failed *uint64) error {
	buf, err := alignedBuffer(verifyChunk)
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	for {
		c := next.Add(1) - 1
		off := c * verifyChunk
		if off >= size {
			return nil
		}
		if _, err := f.ReadAt(buf[:min(verifyChunk, size-off)], int64(off)); err != nil {
			*failed = c + 1
			return nil
		}
	}
}

// alignedBuffer is a buffer aligned for direct I/O: an anonymous mapping.
func alignedBuffer(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

// firstBadBlock rereads n bytes from off block by block and returns the
// first block that fails and its error (or the chunk's first block and the
// chunk's error if no single block does).
func firstBadBlock(f *os.File, off, n uint64) (uint64, error) {
	buf, err := alignedBuffer(verity.BlockSize)
	if err != nil {
		return off / verity.BlockSize, err
	}
	defer unix.Munmap(buf)
	for b := off; b < off+n; b += verity.BlockSize {
		if _, err := f.ReadAt(buf, int64(b)); err != nil {
			return b / verity.BlockSize, unwrapPath(err)
		}
	}
	return off / verity.BlockSize, unix.EIO
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Superblock magics.
const (
	erofsMagic    = 0xe0f5e1e2 // at byte 1024
	squashfsMagic = "hsqs"     // at byte 0
)

// mountRoot mounts dev read-only on NewRoot with the file system its
// superblock names, and returns that name.
func mountRoot(dev string) (string, error) {
	fstype, err := fsType(dev)
	if err != nil {
		return "", err
	}
	if fstype == "squashfs" {
		_, _ = LoadModules(modulesDir(), []string{"squashfs"})
	}
	if err := os.MkdirAll(NewRoot, 0o755); err != nil {
		return "", fmt.Errorf("creating new root: %w", err)
	}
	if err := unix.Mount(dev, NewRoot, fstype, unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
		return "", fmt.Errorf("mounting %s (%s) on %s: %w", dev, fstype, NewRoot, err)
	}
	return fstype, nil
}

// fsType tells erofs from squashfs by the superblock.
func fsType(dev string) (string, error) {
	f, err := os.Open(dev)
	if err != nil {
		return "", fmt.Errorf("reading root superblock: %w", err)
	}
	defer f.Close()
	sb := make([]byte, 1028)
	if _, err := io.ReadFull(f, sb); err != nil {
		return "", fmt.Errorf("reading root superblock: %w", err)
	}
	switch {
	case binary.LittleEndian.Uint32(sb[1024:]) == erofsMagic:
		return "erofs", nil
	case string(sb[:4]) == squashfsMagic:
		return "squashfs", nil
	}
	return "", fmt.Errorf("reading root superblock: %s holds neither erofs nor squashfs", dev)
}

// FindSlot returns the root slot holding p's root hash: among the
// partitions of type bootparam.TypeRoot on every disk, the one whose
// verity superblock describes p and whose tree's top hashes to
// p.RootHash (verity.Holds; the hash comes from the signed command line,
// and dm-verity checks every block read after). It waits, as
// FindPartUUID does, for such a partition to appear, and refuses when
// two hold the hash: it will not guess which to boot.
func FindSlot(ctx context.Context, p verity.Params) (blockdev.DevPartition, error) {
	ctx, cancel := context.WithTimeout(ctx, blockdev.WaitTimeout)
	defer cancel()
	for {
		parts, err := blockdev.OfType(bootparam.TypeRoot)
		if err != nil {
			return blockdev.DevPartition{}, fmt.Errorf("finding the root slot: %w", err)
		}
		slot, found, err := pickSlot(parts, p)
		if err != nil || found {
			return slot, err
		}
		select {
		case <-ctx.Done():
			return blockdev.DevPartition{}, fmt.Errorf("finding the root slot: none of %d root partitions holds root hash %x", len(parts), p.RootHash)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pickSlot returns the one partition of parts that holds p; found is
// false when none does, and two are an error.
func pickSlot(parts []blockdev.DevPartition, p verity.Params) (slot blockdev.DevPartition, found bool, err error) {
	for _, part := range parts {
		ok, err := holds(part.Dev, p)
		if err != nil {
			return blockdev.DevPartition{}, false, fmt.Errorf("finding the root slot: %s: %w", part.Dev, err)
		}
		if !ok {
			continue
		}
		if found {
			return blockdev.DevPartition{}, false, fmt.Errorf("finding the root slot: %s and %s both hold root hash %x: refusing to guess", slot.UUID, part.UUID, p.RootHash)
		}
		slot, found = part, true
	}
	return slot, found, nil
}

func holds(dev string, p verity.Params) (bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	ok, err := verity.Holds(f, p)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return false, nil // a slot smaller than the root: not this one
	}
	return ok, err
}
