package scan

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan/minimal"
	"github.com/bulkhead-dev/bulkhead/builder/scan/sbom"
	"github.com/bulkhead-dev/bulkhead/builder/scan/secrets"
)

// capabilityXattr holds a file's capabilities.
const capabilityXattr = "security.capability"

// treeFiles is what one pass over the tree's contents found.
type treeFiles struct {
	entries []*minimal.Entry
	byPath  map[string]*rootfs.Entry
	secrets []secrets.Finding
	goPkgs  []sbom.Package
}

// fileResult is what reading one regular file found.
type fileResult struct {
	secrets []secrets.Finding
	elf     *minimal.ELF
	interp  string
	goPkgs  []sbom.Package
}

// readTree reads every regular file once, on several workers, and records
// its secrets, ELF dynamic information, script interpreter and Go build
// information; it describes every entry for the minimality report.
func readTree(ctx context.Context, t *rootfs.Tree, images []*resolve.Image, cache *Cache, workers int) (*treeFiles, error) {
	var all []*rootfs.Entry
	_ = t.Walk(func(e *rootfs.Entry) error {
		if e.Path != "" {
			all = append(all, e)
		}
		return nil
	})
	results := make([]fileResult, len(all))
	if err := readCached(ctx, all, results, layerDiffIDs(images), cache, workers); err != nil {
		return nil, err
	}
	layers := layerOrigins(images)
	tf := &treeFiles{byPath: make(map[string]*rootfs.Entry, len(all))}
	for i, e := range all {
		tf.byPath[e.Path] = e
		me := &minimal.Entry{
			Path: e.Path, Kind: kindOf(e.Kind), Mode: e.Mode, Size: e.Size, Link: e.Link,
			Origin: e.Origin + layers[e.Content.Blob], ELF: results[i].elf, Interp: results[i].interp,
			Caps: e.Xattrs[capabilityXattr] != "",
		}
		if me.Kind == minimal.KindSymlink || me.Kind == minimal.KindDir {
			me.Size = 0
		}
		tf.entries = append(tf.entries, me)
		tf.secrets = append(tf.secrets, results[i].secrets...)
		tf.goPkgs = append(tf.goPkgs, results[i].goPkgs...)
	}
	return tf, nil
}

func kindOf(k rootfs.Kind) minimal.Kind {
	switch k {
	case rootfs.KindFile:
		return minimal.KindFile
	case rootfs.KindDir:
		return minimal.KindDir
	case rootfs.KindSymlink:
		return minimal.KindSymlink
	case rootfs.KindHardlink:
		return minimal.KindHardlink
	case rootfs.KindCharDev, rootfs.KindBlockDev:
		return minimal.KindDevice
	}
	return minimal.KindOther
}

// readCached reads the regular files of all into results, taking those of
// the layers cache holds from it and keeping what it read of the others
// there; without a cache it reads every file.
func readCached(ctx context.Context, all []*rootfs.Entry, results []fileResult, layers map[string]string, cache *Cache, workers int) error {
	if cache == nil {
		return readAll(ctx, all, results, nil, workers)
	}
	groups := cache.layerGroups(all, layers)
	done := make([]bool, len(all))
	var missed []*layerFiles
	for _, g := range groups {
		if !cache.load(g, results) {
			missed = append(missed, g)
			continue
		}
		for _, i := range g.index {
			done[i] = true
		}
	}
	if err := readAll(ctx, all, results, done, workers); err != nil {
		return err
	}
	for _, g := range missed {
		// A cache that cannot be written costs the next build a read,
		// nothing more.
		_ = cache.store(g, results)
	}
	return nil
}

// readAll reads every regular file of all that done does not mark (done
// may be nil) into results, on workers goroutines.
func readAll(ctx context.Context, all []*rootfs.Entry, results []fileResult, done []bool, workers int) error {
	if workers <= 0 {
		workers = 2
	}
	work := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newReader()
			defer r.close()
			for i := range work {
				res, err := r.read(all[i])
				if err != nil {
					errs <- fmt.Errorf("reading %s: %w", all[i].Path, err)
					for range work {
					}
					return
				}
				results[i] = res
			}
		}()
	}
	var err error
feed:
	for i, e := range all {
		if e.Kind != rootfs.KindFile || done != nil && done[i] {
			continue
		}
		select {
		case work <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err = <-errs:
	default:
	}
	return err
}

// reader reads file contents into one reusable buffer, keeping the layer
// files it has opened.
type reader struct {
	buf   []byte
	blobs map[string]*os.File
}

func newReader() *reader { return &reader{blobs: map[string]*os.File{}} }

func (r *reader) close() {
	for _, f := range r.blobs {
		f.Close()
	}
}

// maxRead is the largest file read whole; larger files are read in
// windows that overlap by overlap bytes, for the secrets gate.
const (
	maxRead = 16 << 20 // per worker: bounds the scan's memory
	overlap = 64 << 10
)

func (r *reader) read(e *rootfs.Entry) (fileResult, error) {
	ra, err := r.readerAt(e)
	if err != nil {
		return fileResult{}, err
	}
	var res fileResult
	head := make([]byte, min(e.Size, 4))
	if _, err := ra.ReadAt(head, 0); err != nil && err != io.EOF {
		return res, err
	}
	if bytes.Equal(head, []byte("\x7fELF")) {
		res.elf = minimal.ReadELF(io.NewSectionReader(ra, 0, e.Size))
		if res.elf != nil && res.elf.Type != minimal.ELFOther {
			if bi, err := buildinfo.Read(io.NewSectionReader(ra, 0, e.Size)); err == nil {
				res.goPkgs = sbom.GoPackages(bi, e.Path)
			}
		}
	}
	text := true
	lines := 0
	for off := int64(0); off < e.Size; {
		n := min(e.Size-off, maxRead)
		if cap(r.buf) < int(n) {
			r.buf = make([]byte, n)
		}
		data := r.buf[:n]
		if _, err := ra.ReadAt(data, off); err != nil && err != io.EOF {
			return res, err
		}
		if off == 0 {
			text = secrets.IsText(data)
			res.interp = minimal.Shebang(data[:min(len(data), 256)])
		}
		for _, f := range secrets.Scan(e.Path, data, text) {
			f.Line += lines
			res.secrets = append(res.secrets, f)
		}
		if off+n >= e.Size {
			break
		}
		step := n - overlap
		lines += bytes.Count(data[:step], []byte{'\n'})
		off += step
	}
	return res, nil
}

func (r *reader) readerAt(e *rootfs.Entry) (io.ReaderAt, error) {
	if e.Content.Blob == "" {
		return bytes.NewReader(e.Content.Data), nil
	}
	f := r.blobs[e.Content.Blob]
	if f == nil {
		var err error
		if f, err = os.Open(e.Content.Blob); err != nil {
			return nil, err
		}
		r.blobs[e.Content.Blob] = f
	}
	return io.NewSectionReader(f, e.Content.Offset, e.Size), nil
}
