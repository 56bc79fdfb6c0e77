package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
	"github.com/bulkhead-dev/bulkhead/internal/host/blockdev"
	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/update/pull"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// Paths of registry pulls on /var.
const (
	// ChunkCacheDir keeps the chunks a pull fetched and verified until
	// its update is committed: an interrupted pull resumes from them.
	ChunkCacheDir = "/var/lib/bulkhead/chunks"
	// RegistryAuthPath holds the registry credentials (the config.json
	// form of `docker login`), put there by the operator: never in the
	// root image. The spec's update.credentials names another path.
	RegistryAuthPath = "/var/lib/bulkhead/registry-auth.json"
)

// Pull installs the update published at ref (hostapi.Puller): the
// signature is checked before anything else is fetched, and only the
// chunks the host lacks are.
func (a agent) Pull(ctx context.Context, ref string) (hostapi.UpdateResult, error) {
	h, t, cleanup, err := a.target(ctx)
	if err != nil {
		return hostapi.UpdateResult{}, err
	}
	defer cleanup()
	begin := time.Now()
	logf := func(s string) { a.h.logf("update: %s (%s)", s, time.Since(begin).Round(time.Millisecond)) }
	seeds, closeSeeds := runningSeeds(h, t.ESP)
	defer closeSeeds()
	opts := []pull.Option{pull.WithCache(ChunkCacheDir), pull.WithCredentials(credentialsPath()), pull.WithProgress(logf)}
	for _, s := range seeds {
		opts = append(opts, pull.WithSeed(s))
	}
	u, err := pull.New(ref, opts...)
	if err != nil {
		return hostapi.UpdateResult{}, fmt.Errorf("%w: %v", hostapi.ErrRefused, err)
	}
	m, keyID, err := u.Verify(ctx, h.Keys)
	if errors.Is(err, pull.ErrUnsigned) {
		return hostapi.UpdateResult{}, fmt.Errorf("%w: %v", hostapi.ErrRefused, err)
	}
	if err != nil {
		return hostapi.UpdateResult{}, err
	}
	progress := apply.WithProgress(func(s apply.Step) { logf("step " + string(s)) })
	res, err := apply.Install(ctx, ref, m, keyID, u, h, t, progress)
	var refused *apply.RefusedError
	if errors.As(err, &refused) {
		return hostapi.UpdateResult{}, fmt.Errorf("%w: %v", hostapi.ErrRefused, err)
	}
	if err != nil {
		return hostapi.UpdateResult{}, err
	}
	if err := u.Clean(); err != nil {
		a.h.logf("update: removing the chunk cache: %v", err)
	}
	st := u.Stats()
	a.h.logf("update: installed %s from %s into slot %s: fetched %d bytes (%d chunks, %d of them as deltas), %d chunks found on the host",
		m.Version, ref, t.SlotGUID, st.Fetched, st.ChunksFetched, st.Deltas, st.ChunksLocal)
	return hostapi.UpdateResult{Version: m.Version, Entry: res.Entry, KeyID: keyID, Fetched: st.Fetched}, nil
}

// runningSeeds opens what the host runs as chunk sources: the running
// root's file system (as far as its verity parameters say) and the
// running version's kernel and initrd on the ESP.
func runningSeeds(h apply.Host, esp string) ([]pull.Seed, func()) {
	var seeds []pull.Seed
	var files []*os.File
	add := func(name, path string, size int64) {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		if size < 0 {
			if fi, err := f.Stat(); err == nil {
				size = fi.Size()
			}
		}
		files = append(files, f)
		seeds = append(seeds, pull.Seed{Name: name, R: f, Size: max(size, 0)})
	}
	if dev, ok := runningRootDev(h.RootGUID); ok {
		if p, found, err := verity.FromCmdline(cmdline()); found && err == nil {
			add("running root", dev, int64(p.DataBlocks)*verity.BlockSize)
		}
	}
	e := bootentry.Entry{Version: h.Version, Initrd: true}
	for _, f := range e.Files() {
		add("running "+f.Payload, filepath.Join(esp, f.Path), -1)
	}
	// A host booted from a unified kernel image has it in EFI/Linux, its
	// boot counter (if any) in the name.
	ukis, _ := filepath.Glob(filepath.Join(esp, bootentry.LinuxDir, "bulkhead-"+h.Version+"*.efi"))
	for _, p := range ukis {
		if n, ok := bootentry.ParseName(filepath.Base(p)); ok && n.Version == h.Version {
			add("running unified kernel image", p, -1)
		}
	}
	return seeds, func() {
		for _, f := range files {
			f.Close()
		}
	}
}

func runningRootDev(rootGUID string) (string, bool) {
	parts, err := blockdev.DiskOf(rootGUID)
	if err != nil {
		return "", false
	}
	i := slices.IndexFunc(parts, func(p blockdev.DevPartition) bool { return strings.EqualFold(p.UUID, rootGUID) && p.Dev != "" })
	if i < 0 {
		return "", false
	}
	return parts[i].Dev, true
}

// credentialsPath is the registry credentials file the root names
// (update.CredentialsPathFile), else RegistryAuthPath.
func credentialsPath() string {
	b, err := os.ReadFile("/" + update.CredentialsPathFile)
	if p := strings.TrimSpace(string(b)); err == nil && strings.HasPrefix(p, "/var/") {
		return p
	}
	return RegistryAuthPath
}
