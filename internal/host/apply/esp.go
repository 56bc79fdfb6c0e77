package apply

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/pe"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
	"github.com/bulkhead-dev/bulkhead/internal/host/bless"
	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// maxEntry bounds the size of an entry file read from the ESP, and
// maxEntries how many bulkhead entries it may hold.
const (
	maxEntry   = 64 << 10
	maxEntries = 256
)

// espEntry is a bulkhead entry on the ESP (an entry file, or a unified
// kernel image) and the slot it boots.
type espEntry struct {
	file string // the file name (h.Entry names the running one so)
	path string // relative to the ESP
	name bootentry.Name
	root string // an entry file's partition GUID, lower case
	// verity is a unified kernel image's bulkhead.verity=: it boots the
	// slot holding that root hash (nil when unreadable).
	verity *verity.Params
}

// readEntries lists the bulkhead entries: entry files in loader/entries,
// unified kernel images in EFI/Linux.
func readEntries(esp string) ([]espEntry, error) {
	var out []espEntry
	for _, dir := range []string{bootentry.EntriesDir, bootentry.LinuxDir} {
		des, err := os.ReadDir(filepath.Join(esp, dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a UKI-only ESP has no loader/entries, and vice versa
		}
		if err != nil {
			return nil, fmt.Errorf("reading boot entries: %w", err)
		}
		for _, de := range des {
			n, ok := bootentry.ParseName(de.Name())
			if !ok || !de.Type().IsRegular() || n.UKI != (dir == bootentry.LinuxDir) {
				continue
			}
			e := espEntry{file: de.Name(), path: dir + "/" + de.Name(), name: n}
			if n.UKI {
				e.verity = ukiVerity(filepath.Join(esp, e.path))
			} else {
				b, err := readLimited(filepath.Join(esp, e.path), maxEntry)
				if err != nil {
					return nil, fmt.Errorf("reading boot entries: %w", err)
				}
				e.root = bootentry.RootPartUUID(string(b))
			}
			out = append(out, e)
			if len(out) > maxEntries {
				return nil, fmt.Errorf("reading boot entries: more than %d", maxEntries)
			}
		}
	}
	return out, nil
}

// ukiVerity reads the bulkhead.verity= parameters from a unified kernel
// image's .cmdline section, or nil.
func ukiVerity(path string) *verity.Params {
	f, err := pe.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sec := f.Section(".cmdline")
	if sec == nil || sec.Size > maxEntry {
		return nil
	}
	b, err := sec.Data()
	if err != nil {
		return nil
	}
	p, ok, err := verity.FromCmdline(strings.TrimRight(string(b), "\x00"))
	if !ok || err != nil {
		return nil
	}
	return &p
}

// retirable lists the entries that boot slot (never the running one) and
// the version directories that no other entry uses, as paths relative to
// the ESP. holds says whether the slot holds a root hash: a unified kernel
// image boots the slot that does.
func retirable(entries []espEntry, h Host, slot string, holds func(verity.Params) bool) (files, dirs []string) {
	keep := map[string]bool{}
	var gone []string
	for _, e := range entries {
		boots := equalGUID(e.root, slot)
		if e.name.UKI {
			boots = e.verity != nil && holds(*e.verity)
		}
		if e.file == h.Entry || !boots {
			keep[e.name.Version] = true
			continue
		}
		files = append(files, e.path)
		if !e.name.UKI {
			gone = append(gone, e.name.Version)
		}
	}
	for _, v := range gone {
		if !keep[v] && !slices.Contains(dirs, v) {
			dirs = append(dirs, v)
		}
	}
	return files, dirs
}

// retire removes the entries that boot the slot about to be written, so
// no entry points at a half-written root, then their version directories.
func retire(esp string, files, dirs []string) error {
	touched := map[string]bool{}
	for _, f := range files {
		if err := os.Remove(filepath.Join(esp, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("retiring entry %s: %w", f, err)
		}
		touched[filepath.Dir(filepath.Join(esp, f))] = true
	}
	for d := range touched {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("retiring entries: %w", err)
		}
	}
	for _, d := range dirs {
		if err := os.RemoveAll(filepath.Join(esp, bootentry.VersionsDir, d)); err != nil {
			return fmt.Errorf("retiring version %s: %w", d, err)
		}
	}
	return nil
}

// writeVersion writes the version's files (bootentry.Entry.Files: the
// kernel and the initrd) into a fresh directory, syncs them and reads
// them back.
func writeVersion(ctx context.Context, next func() (update.Payload, io.Reader, error), esp string, e bootentry.Entry) error {
	dir := filepath.Join(esp, e.Dir())
	if err := os.RemoveAll(dir); err != nil { // left by an interrupted attempt
		return fmt.Errorf("clearing %s: %w", e.Dir(), err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", e.Dir(), err)
	}
	for _, f := range e.Files() {
		p, pr, err := next()
		if err != nil {
			return fmt.Errorf("reading %s: %w", f.Payload, err)
		}
		if p.Name != f.Payload {
			return fmt.Errorf("payload %s where %s was expected", p.Name, f.Payload)
		}
		if err := writeChecked(ctx, filepath.Join(esp, f.Path), pr, p); err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
	}
	return errors.Join(syncDir(dir), syncDir(filepath.Dir(dir)))
}

// writeChecked writes the payload to path, syncs it, and reads it back
// against its digest.
func writeChecked(ctx context.Context, path string, pr io.Reader, p update.Payload) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, ctxReader{ctx, pr})
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	dropCache(path)
	got, n, err := fileDigest(path, p.Size+1)
	if err != nil {
		return fmt.Errorf("reading back: %w", err)
	}
	if n != p.Size || got != p.SHA256 {
		return fmt.Errorf("reading back: %w", update.ErrDigest)
	}
	return nil
}

// commit writes the entry under a temporary name (which systemd-boot
// ignores: it does not end in .conf), syncs it, renames it into place and
// syncs the directory. The rename is the commit point.
func commit(esp string, e bootentry.Entry, beforeRename func()) (string, error) {
	dir := filepath.Join(esp, bootentry.EntriesDir)
	tmp := filepath.Join(dir, "."+e.FileName()+".tmp")
	conf := []byte(e.Conf())
	if err := writeSynced(tmp, conf); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing entry: %w", err)
	}
	if b, err := readLimited(tmp, maxEntry); err != nil || !bytes.Equal(b, conf) {
		os.Remove(tmp)
		return "", fmt.Errorf("writing entry: reading back: %w", errors.Join(err, update.ErrDigest))
	}
	beforeRename()
	if err := bless.RenameSynced(tmp, filepath.Join(esp, e.Path())); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("committing entry: %w", err)
	}
	return e.Path(), nil
}

// commitUKI writes the unified kernel image, the next payload, under a
// temporary name (which systemd-boot ignores: it starts with a dot and
// does not end in .efi), syncs it and reads it back, makes sure nothing
// follows it, and renames it into place: the commit point.
func commitUKI(ctx context.Context, src payloadSource, esp string, e bootentry.Entry, beforeRename func()) (string, error) {
	dir := filepath.Join(esp, bootentry.LinuxDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", bootentry.LinuxDir, err)
	}
	p, pr, err := src.next()
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", update.PayloadUKI, err)
	}
	if p.Name != update.PayloadUKI {
		return "", fmt.Errorf("payload %s where %s was expected", p.Name, update.PayloadUKI)
	}
	tmp := filepath.Join(dir, "."+e.FileName()+".tmp")
	if err := writeChecked(ctx, tmp, pr, p); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", e.Path(), err)
	}
	if err := src.end(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	beforeRename()
	if err := bless.RenameSynced(tmp, filepath.Join(esp, e.Path())); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("committing entry: %w", err)
	}
	return e.Path(), nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Sync(), f.Close())
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, err
}

// fileDigest hashes at most limit bytes of path.
func fileDigest(path string, limit int64) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, limit))
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// dropCache asks the kernel to forget the file's cached pages, so reading
// it back reads the disk (best effort).
func dropCache(path string) {
	if f, err := os.Open(path); err == nil {
		_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
	}
}

// freeSpace is what an unprivileged writer may still write on the file
// system holding dir.
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("measuring free space of the ESP: %w", err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// lockESP takes an exclusive lock on the ESP directory, so two applies
// never interleave; unlock releases it.
func lockESP(esp string) (unlock func(), err error) {
	d, err := os.Open(esp)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errors.New("another update is being applied")
		}
		return nil, err
	}
	return func() { unix.Flock(int(d.Fd()), unix.LOCK_UN); d.Close() }, nil
}

func equalGUID(a, b string) bool { return a != "" && strings.EqualFold(a, b) }

// ContextReader returns r as a reader that fails with ctx's error once ctx
// is done, so a long copy stops on cancellation.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
