package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/atomicfile"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
	"github.com/bulkhead-dev/bulkhead/internal/host/attempts"
	"github.com/bulkhead-dev/bulkhead/internal/host/bless"
	"github.com/bulkhead-dev/bulkhead/internal/host/blockdev"
	"github.com/bulkhead-dev/bulkhead/internal/host/power"
	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
	"github.com/bulkhead-dev/bulkhead/internal/update"
)

// Paths of the update agent on /var.
const (
	// FloorPath holds the anti-rollback floor: the newest version this host
	// has blessed. It rises only when a version is blessed.
	FloorPath = "/var/lib/bulkhead/floor"
	// SpoolDir keeps an uploaded bundle while it is applied.
	SpoolDir = "/var/lib/bulkhead/spool"
)

// typeRootX86 is the Discoverable Partitions type GUID of an x86-64 root.
const typeRootX86 = bootparam.TypeRoot

// espMu serialises mounting the ESP (blessing and the API both do).
var espMu sync.Mutex

// agent is the host's side of the host API.
type agent struct{ h *host }

// runningEntry returns the running entry's blessed file name and version.
func (h *host) runningEntry() (string, string, error) {
	if _, err := h.countedOrBlessed(); err != nil {
		return "", "", err
	}
	sel, err := bless.EntrySelected(bless.DefaultEfivars)
	if err != nil {
		return "", "", fmt.Errorf("which entry is running: %w", err)
	}
	name, _ := bless.Uncounted(sel)
	return name, entryVersion(name), nil
}

func readFloor() string {
	b, err := os.ReadFile(FloorPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// raiseFloor records version as the floor when it is newer: called when a
// version is blessed, never on apply, so the fallback slot stays bootable.
func raiseFloor(version string) error {
	if cur := readFloor(); cur != "" && update.CompareVersions(version, cur) <= 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(FloorPath), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(FloorPath, []byte(version+"\n"), 0o644)
}

func (a agent) Status(ctx context.Context) (hostapi.Status, error) {
	st := hostapi.Status{Floor: readFloor(), Uptime: hostapi.Duration(uptime())}
	st.Hostname, _ = os.Hostname()
	entry, version, err := a.h.runningEntry()
	if err == nil {
		st.Version = version
	}
	_, err = a.h.onESP(ctx, func(esp string) (string, error) {
		st.Entries, err = listEntries(esp, entry)
		return "", err
	})
	if err != nil {
		return st, err
	}
	for _, s := range a.h.services {
		st.Services = append(st.Services, s.state())
	}
	st.Attempts, _ = attempts.Load(attempts.DefaultPath)
	return st, nil
}

// listEntries reads loader/entries and EFI/Linux (unified kernel images)
// on the ESP.
func listEntries(esp, running string) ([]hostapi.Entry, error) {
	ents, err := os.ReadDir(filepath.Join(esp, bless.EntriesDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listing boot entries: %w", err)
	}
	ukis, err := os.ReadDir(filepath.Join(esp, bless.LinuxDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listing boot entries: %w", err)
	}
	dirOf := map[os.DirEntry]string{}
	for _, e := range ents {
		dirOf[e] = bless.EntriesDir
	}
	for _, e := range ukis {
		dirOf[e] = bless.LinuxDir
	}
	var out []hostapi.Entry
	for _, e := range append(ents, ukis...) {
		name := e.Name()
		ext := path.Ext(name)
		if e.IsDir() || strings.HasPrefix(name, ".") || ext != ".conf" && ext != ".efi" || bless.EntryDir(name) != dirOf[e] {
			continue
		}
		blessedName, _ := bless.Uncounted(name)
		left, done, counted := bless.Tries(name)
		out = append(out, hostapi.Entry{File: name, Version: entryVersion(name), Blessed: !counted,
			TriesLeft: left, TriesDone: done, Running: blessedName == running})
	}
	return out, nil
}

// state is a service's state for the API.
func (s *service) state() hostapi.Service {
	_, running := s.sup.RunningSince()
	out := hostapi.Service{Name: s.b.Name, Running: running}
	if s.health != nil {
		_, ok := s.health.healthySince()
		out.Healthy = &ok
		if err := s.health.lastError(); err != nil && !ok {
			out.Error = err.Error()
		}
	}
	return out
}

// Update applies the bundle at path to the inactive slot.
func (a agent) Update(ctx context.Context, bundlePath string) (hostapi.UpdateResult, error) {
	h, t, cleanup, err := a.target(ctx)
	if err != nil {
		return hostapi.UpdateResult{}, err
	}
	defer cleanup()
	begin := time.Now()
	progress := apply.WithProgress(func(s apply.Step) {
		a.h.logf("update: step %s (%s)", s, time.Since(begin).Round(time.Millisecond))
	})
	res, err := apply.Apply(ctx, apply.File(bundlePath), h, t, progress)
	var refused *apply.RefusedError
	if errors.As(err, &refused) {
		return hostapi.UpdateResult{}, fmt.Errorf("%w: %v", hostapi.ErrRefused, err)
	}
	if err != nil {
		return hostapi.UpdateResult{}, err
	}
	a.h.logf("update: installed %s into slot %s (entry %s, signed by %s)", res.Manifest.Version, t.SlotGUID, res.Entry, res.KeyID)
	return hostapi.UpdateResult{Version: res.Manifest.Version, Entry: res.Entry, KeyID: res.KeyID}, nil
}

// target describes the running host and the inactive slot, with the ESP
// mounted until cleanup.
func (a agent) target(ctx context.Context) (apply.Host, apply.Target, func(), error) {
	var h apply.Host
	var t apply.Target
	entry, version, err := a.h.runningEntry()
	if err != nil {
		return h, t, nil, err
	}
	running, err := bootSlot()
	if err != nil {
		return h, t, nil, fmt.Errorf("finding the root slot: %w", err)
	}
	if running.root == "" {
		return h, t, nil, errors.New("not booted from a root partition: nothing to update")
	}
	rootGUID, dataGUID := running.root, running.data
	keys, err := update.ReadKeys("/")
	if err != nil {
		return h, t, nil, fmt.Errorf("%w: %v", hostapi.ErrRefused, err)
	}
	h = apply.Host{Arch: runtime.GOARCH, Version: version, Floor: readFloor(), Entry: entry,
		RootGUID: rootGUID, DataGUID: dataGUID, Keys: keys}
	slot, err := inactiveSlot(rootGUID)
	if err != nil {
		return h, t, nil, err
	}
	f, size, err := apply.OpenSlot(slot.Dev)
	if err != nil {
		return h, t, nil, err
	}
	espMu.Lock()
	esp, unmount, err := a.h.mountESP(ctx)
	if err != nil {
		espMu.Unlock()
		f.Close()
		return h, t, nil, err
	}
	t = apply.Target{Slot: f, SlotSize: size, SlotGUID: slot.UUID, ESP: esp}
	return h, t, func() { f.Close(); unmount(); espMu.Unlock() }, nil
}

// inactiveSlot is the other root partition on the running root's disk.
func inactiveSlot(rootGUID string) (blockdev.DevPartition, error) {
	parts, err := blockdev.DiskOf(rootGUID)
	if err != nil {
		return blockdev.DevPartition{}, err
	}
	i := slices.IndexFunc(parts, func(p blockdev.DevPartition) bool {
		return p.Type == typeRootX86 && !strings.EqualFold(p.UUID, rootGUID) && p.Dev != ""
	})
	if i < 0 {
		return blockdev.DevPartition{}, fmt.Errorf("%w: no other root partition beside %s", hostapi.ErrRefused, rootGUID)
	}
	return parts[i], nil
}

func (a agent) Reboot() { a.h.requestStop(power.Reboot, "host api") }

// Rollback marks the running entry so that the next boot takes the newest
// other blessed entry: a blessed running entry becomes +0-0, which
// systemd-boot sorts after every entry with tries left or blessed.
func (a agent) Rollback(ctx context.Context) (string, error) {
	running, _, err := a.h.runningEntry()
	if err != nil {
		return "", err
	}
	return a.h.onESP(ctx, func(esp string) (string, error) {
		ents, err := listEntries(esp, running)
		if err != nil {
			return "", err
		}
		var to *hostapi.Entry
		for i, e := range ents {
			if e.Blessed && !e.Running && (to == nil || update.CompareVersions(e.Version, to.Version) > 0) {
				to = &ents[i]
			}
		}
		if to == nil {
			return "", fmt.Errorf("%w: no other blessed version to roll back to", hostapi.ErrRefused)
		}
		i := slices.IndexFunc(ents, func(e hostapi.Entry) bool { return e.Running })
		if i < 0 {
			return "", fmt.Errorf("the running entry %s is not on the ESP", running)
		}
		cur := ents[i].File
		if !ents[i].Blessed {
			if _, err := bless.MarkBad(esp, "/"+bless.EntryDir(cur)+"/"+cur); err != nil {
				return "", err
			}
		} else if err := demote(esp, cur); err != nil {
			return "", err
		}
		a.h.logf("rollback: next boot is %s (%s set aside)", to.File, cur)
		return to.File, nil
	})
}

// demote renames a blessed entry NAME.conf (NAME.efi) to NAME+0-0.conf
// (NAME+0-0.efi).
func demote(esp, file string) error {
	dir := filepath.Join(esp, bless.EntryDir(file))
	ext := path.Ext(file)
	to := strings.TrimSuffix(file, ext) + "+0-0" + ext
	if err := bless.RenameSynced(filepath.Join(dir, file), filepath.Join(dir, to)); err != nil {
		return fmt.Errorf("setting %s aside: %w", file, err)
	}
	return nil
}

// maxLogRead bounds how much of a log file Log reads.
const maxLogRead = 1 << 20

func (a agent) Log(name string, lines int) ([]byte, error) {
	f, err := os.Open(filepath.Join(LogDir, path.Base(name)+".log"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-maxLogRead, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, maxLogRead))
	if err != nil {
		return nil, err
	}
	all := bytes.SplitAfter(b, []byte("\n"))
	if len(all) > 0 && len(all[len(all)-1]) == 0 {
		all = all[:len(all)-1]
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return bytes.Join(all, nil), nil
}

// serveAPI serves the host API when the spec baked an operator CA into
// the root; the host's identity lives on /var.
func (h *host) serveAPI(ctx context.Context) {
	caPEM, err := os.ReadFile(hostapi.CAPath)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		h.logf("api: %v", err)
		return
	}
	pool, err := hostapi.CAPool(caPEM)
	if err != nil {
		h.logf("api: %s: %v", hostapi.CAPath, err)
		return
	}
	name, _ := os.Hostname()
	id, fp, err := hostapi.LoadOrCreateIdentity(hostapi.IdentityDir, name, time.Now())
	if err != nil {
		h.logf("api: %v", err)
		return
	}
	addr := fmt.Sprintf(":%d", hostapi.DefaultPort)
	if b, err := os.ReadFile(hostapi.ListenPath); err == nil && strings.TrimSpace(string(b)) != "" {
		addr = strings.TrimSpace(string(b))
	}
	srv, err := hostapi.NewServer(addr, hostapi.ServerConfig{Backend: agent{h}, ClientCAs: pool, Identity: id,
		SpoolDir: SpoolDir, Logf: h.logf})
	if err != nil {
		h.logf("api: %v", err)
		return
	}
	os.RemoveAll(SpoolDir) // uploads an earlier boot left behind
	h.logf("api: serving on %s, host certificate %s", addr, fp)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.ListenAndServeTLS("", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.logf("api: %v", err)
		}
	}()
}
