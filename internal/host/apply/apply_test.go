package apply_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/builder/bundler"
	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
	"github.com/bulkhead-dev/bulkhead/internal/update"
)

const (
	oldVersion = "1.0.0"
	newVersion = "1.1.0"
	epoch      = 1700000000
	// rootSize keeps the test disks small.
	rootSize = 8 * disk.MiB
)

var (
	created = time.Unix(epoch, 0).UTC()
	expires = created.Add(30 * 24 * time.Hour)
	now     = created.Add(time.Hour)
	seed    = []byte("apply test host")
)

// version is one build of the test host: what the builder writes for it.
type version struct {
	name           string
	root           string // root image file
	img            *rootimg.Image
	kernel, initrd []byte
	options        string
}

func buildVersion(t testing.TB, dir, name string) version {
	t.Helper()
	tr := rootfs.New()
	for i, p := range []string{"etc/version", "usr/bin/app"} {
		data := []byte(fmt.Sprintf("%s %d\n", name, i) + strings.Repeat(name, 20000))
		tr.Put(&rootfs.Entry{Path: p, Kind: rootfs.KindFile, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Content: rootfs.Content{Data: data}})
	}
	root := filepath.Join(dir, name+".root")
	f, err := os.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := rootimg.Write(t.Context(), tr, f, rootimg.WithEpoch(epoch))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return version{
		name: name, root: root, img: img,
		kernel:  []byte("kernel of " + name + strings.Repeat("k", 5000)),
		initrd:  []byte("initrd of " + name + strings.Repeat("i", 7000)),
		options: "console=ttyS0 panic=-1 " + img.Verity.Cmdline() + " bulkhead.settle=5s",
	}
}

func (v version) entry(slot string, tries int) disk.Entry {
	return disk.Entry{Version: v.name, Kernel: disk.FromBytes(v.kernel), Initrd: disk.FromBytes(v.initrd), Options: v.options, Slot: slot, Tries: tries}
}

func (v version) input() bundler.Input {
	return bundler.Input{
		Host: "test", Version: v.name, Arch: "amd64", Created: created, Expires: expires,
		Root: v.root, Verity: v.img.Verity, Kernel: v.kernel, Initrd: v.initrd, Options: v.options, Tries: 3,
	}
}

// writeRaw writes a raw-efi disk the way `bulkhead build` does.
func writeRaw(t testing.TB, path string, entries []disk.Entry, rootA, rootB string) *disk.Layout {
	t.Helper()
	in := disk.RawInput{
		Bootloader: disk.FromBytes([]byte("systemd-boot")), Entries: entries,
		RootA: disk.FromFile(rootA), ESPSize: 64 * disk.MiB, RootSize: max(rootSize, fileSize(t, rootA)+disk.MiB), DataSize: disk.MiB, Seed: seed,
	}
	if rootB != "" {
		in.RootB = disk.FromFile(rootB)
	}
	l, err := disk.WriteRaw(t.Context(), path, in)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fixture is a host running oldVersion from slot a, blessed, made from a
// raw-efi disk: its ESP as a directory and its slot b as a file.
type fixture struct {
	dir      string
	old, new version
	key      *sign.PrivateKey
	host     apply.Host
	layout   *disk.Layout
	esp      string
	slot     string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, old: buildVersion(t, dir, oldVersion), new: buildVersion(t, dir, newVersion)}
	f.key = newKey(t)
	img := filepath.Join(dir, "old.img")
	f.layout = writeRaw(t, img, []disk.Entry{f.old.entry("a", 0)}, f.old.root, "")
	f.esp = filepath.Join(dir, "esp")
	extractESP(t, img, f.esp, oldVersion)
	b, _ := f.layout.Partition("root-b")
	f.slot = filepath.Join(dir, "root-b")
	writeFile(t, f.slot, readRange(t, img, b.Offset, b.Size))
	a, _ := f.layout.Partition("root-a")
	data, _ := f.layout.Partition("data")
	f.host = apply.Host{
		Name: "test", Arch: "amd64", Version: oldVersion, Entry: "bulkhead-" + oldVersion + ".conf",
		RootGUID: a.GUID, DataGUID: data.GUID, Keys: hostKeys(t, f.key),
	}
	return f
}

func newKey(t testing.TB) *sign.PrivateKey {
	t.Helper()
	priv, _, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// hostKeys are the keys as the host reads them from update.KeysPath.
func hostKeys(t testing.TB, k *sign.PrivateKey) []*update.PublicKey {
	keys, err := update.ParsePublicKeys(k.Public().PEM())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// extractESP copies the files of the image's ESP that a host's update
// touches into dir.
func extractESP(t testing.TB, img, dir string, versions ...string) {
	t.Helper()
	names, err := disk.ReadEntries(img)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"loader/loader.conf", "EFI/BOOT/BOOTX64.EFI"}
	for _, n := range names {
		files = append(files, "loader/entries/"+n)
	}
	for _, v := range versions {
		files = append(files, "bulkhead/"+v+"/linux", "bulkhead/"+v+"/initrd")
	}
	for _, name := range files {
		b, err := disk.ReadESPFile(img, name)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), b)
	}
}

func (f *fixture) target(t testing.TB) (apply.Target, func()) {
	t.Helper()
	s, size, err := apply.OpenSlot(f.slot)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.layout.Partition("root-b")
	return apply.Target{Slot: s, SlotSize: size, SlotGUID: b.GUID, ESP: f.esp}, func() { s.Close() }
}

func (f *fixture) bundle(t testing.TB, in bundler.Input, key *sign.PrivateKey) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), in.Version+".bundle")
	if _, err := bundler.Write(t.Context(), p, in, key); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) apply(t testing.TB, bundle string, h apply.Host) (*apply.Result, error) {
	t.Helper()
	tg, done := f.target(t)
	defer done()
	return apply.Apply(t.Context(), apply.File(bundle), h, tg, apply.WithClock(clock))
}

func clock() time.Time { return now }

// TestApplyWritesWhatRawEFIWrites: after the update, slot b and the ESP
// hold exactly what the builder writes on a raw-efi disk that has the new
// version in slot b, and veritysetup accepts the slot.
func TestApplyWritesWhatRawEFIWrites(t *testing.T) {
	f := newFixture(t)
	res, err := f.apply(t, f.bundle(t, f.new.input(), f.key), f.host)
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry != "loader/entries/bulkhead-"+newVersion+"+3.conf" || res.KeyID != f.key.Public().ID() {
		t.Fatalf("result %+v", res)
	}
	want := filepath.Join(f.dir, "want.img")
	l := writeRaw(t, want, []disk.Entry{f.old.entry("a", 0), f.new.entry("b", 3)}, f.old.root, f.new.root)
	b, _ := l.Partition("root-b")
	if !bytes.Equal(readFile(t, f.slot), readRange(t, want, b.Offset, b.Size)) {
		t.Error("slot b differs from raw-efi's root-b")
	}
	wantESP := filepath.Join(f.dir, "want-esp")
	extractESP(t, want, wantESP, oldVersion, newVersion)
	if got, exp := snapshot(t, f.esp), snapshot(t, wantESP); got != exp {
		t.Errorf("ESP after the update:\n%s\nraw-efi's ESP:\n%s", got, exp)
	}
	veritysetupVerify(t, f.slot, f.new.img)
}

func veritysetupVerify(t testing.TB, slot string, img *rootimg.Image) {
	t.Helper()
	if _, err := exec.LookPath("veritysetup"); err != nil {
		t.Fatalf("veritysetup is required (apt-get install cryptsetup-bin): %v", err)
	}
	out, err := exec.Command("veritysetup", "verify", fmt.Sprintf("--hash-offset=%d", img.FSSize),
		slot, slot, fmt.Sprintf("%x", img.Verity.RootHash)).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup verify: %v\n%s", err, out)
	}
}

// TestRefusalsLeaveSlotAndESPUntouched: each broken rule is refused,
// names the rule, and leaves slot and ESP byte for byte as they were.
func TestRefusalsLeaveSlotAndESPUntouched(t *testing.T) {
	f := newFixture(t)
	good := f.bundle(t, f.new.input(), f.key)
	goodBytes := readFile(t, good)
	in := func(edit func(*bundler.Input)) string {
		i := f.new.input()
		edit(&i)
		return f.bundle(t, i, f.key)
	}
	variant := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "variant.bundle")
		writeFile(t, p, b)
		return p
	}
	flipped := bytes.Clone(goodBytes)
	flipped[len(flipped)-len(f.new.initrd)-len(f.new.kernel)-100] ^= 0x10 // in the compressed root
	flippedKernel := bytes.Clone(goodBytes)
	flippedKernel[len(flippedKernel)-len(f.new.initrd)-1] ^= 0x10
	host := func(edit func(*apply.Host)) apply.Host {
		h := f.host
		edit(&h)
		return h
	}
	cases := []struct {
		name   string
		bundle string
		host   apply.Host
		rule   apply.Rule
	}{
		{"wrong key", f.bundle(t, f.new.input(), newKey(t)), f.host, apply.RuleSignature},
		{"expired", in(func(i *bundler.Input) { i.Expires = now.Add(-time.Second) }), f.host, apply.RuleExpiry},
		{"other arch", in(func(i *bundler.Input) { i.Arch = "arm64" }), f.host, apply.RuleArch},
		{"other host", in(func(i *bundler.Input) { i.Host = "other" }), f.host, apply.RuleHost},
		{"downgrade", in(func(i *bundler.Input) { i.Version = "0.9.0" }), f.host, apply.RuleVersion},
		{"same version", in(func(i *bundler.Input) { i.Version = oldVersion }), f.host, apply.RuleVersion},
		{"below the floor", good, host(func(h *apply.Host) { h.Floor = "1.5.0" }), apply.RuleVersion},
		{"downgrade for another version", in(func(i *bundler.Input) { i.Version = "0.9.0"; i.Downgrade = []string{"0.9.5"} }), f.host, apply.RuleVersion},
		{"same version signed as a downgrade", in(func(i *bundler.Input) { i.Version = oldVersion; i.Downgrade = []string{oldVersion} }), f.host, apply.RuleVersion},
		{"from floor", in(func(i *bundler.Input) { i.From = "1.0.5" }), f.host, apply.RuleFrom},
		{"flipped byte in the root", variant(flipped), f.host, apply.RuleDigest},
		{"flipped byte in the kernel", variant(flippedKernel), f.host, apply.RuleDigest},
		{"truncated", variant(goodBytes[:len(goodBytes)-1]), f.host, apply.RuleDigest},
		{"truncated in the manifest", variant(goodBytes[:100]), f.host, apply.RuleDigest},
		{"trailing bytes", variant(append(bytes.Clone(goodBytes), 0)), f.host, apply.RuleDigest},
		{"running entry not blessed", good, host(func(h *apply.Host) { h.Entry = "bulkhead-" + oldVersion + "+2.conf" }), apply.RuleState},
		{"target is the running slot", good, host(func(h *apply.Host) { h.RootGUID = f.layoutGUID("root-b") }), apply.RuleState},
	}
	espBefore, slotBefore := snapshot(t, f.esp), readFile(t, f.slot)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.apply(t, c.bundle, c.host)
			var re *apply.RefusedError
			if !errors.As(err, &re) || re.Rule != c.rule {
				t.Fatalf("error %v, want a refusal for %s", err, c.rule)
			}
			if !strings.Contains(err.Error(), c.bundle) {
				t.Errorf("error %q does not name the bundle", err)
			}
			if snapshot(t, f.esp) != espBefore {
				t.Error("the ESP changed")
			}
			if !bytes.Equal(readFile(t, f.slot), slotBefore) {
				t.Error("the slot changed")
			}
		})
	}
}

// TestOneApplyAtATime: an apply while another holds the ESP is refused.
func TestOneApplyAtATime(t *testing.T) {
	f := newFixture(t)
	d, err := os.Open(f.esp)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	_, err = f.apply(t, f.bundle(t, f.new.input(), f.key), f.host)
	var re *apply.RefusedError
	if !errors.As(err, &re) || re.Rule != apply.RuleState {
		t.Fatalf("error %v, want a state refusal", err)
	}
}

func (f *fixture) layoutGUID(name string) string {
	p, _ := f.layout.Partition(name)
	return p.GUID
}

func TestRefusesWhenTheSlotIsTooSmall(t *testing.T) {
	f := newFixture(t)
	tg, done := f.target(t)
	defer done()
	tg.SlotSize = f.new.img.Size - 1
	_, err := apply.Apply(t.Context(), apply.File(f.bundle(t, f.new.input(), f.key)), f.host, tg, apply.WithClock(clock))
	var re *apply.RefusedError
	if !errors.As(err, &re) || re.Rule != apply.RuleSpace {
		t.Fatalf("error %v, want a space refusal", err)
	}
}

// TestSignedDowngrade: an older version signed as a downgrade from the
// running version is applied.
func TestSignedDowngrade(t *testing.T) {
	f := newFixture(t)
	in := f.new.input()
	in.Version, in.Downgrade = "0.9.0", []string{oldVersion}
	if _, err := f.apply(t, f.bundle(t, in, f.key), f.host); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.esp, "loader/entries/bulkhead-0.9.0+3.conf")); err != nil {
		t.Fatal(err)
	}
}

// TestInterruptedApplyKeepsTheHostAndRetries: a slot that fails half way
// leaves the running entry and no new one; the old fallback that booted
// the slot is gone (its root is being overwritten); a retry succeeds.
func TestInterruptedApplyKeepsTheHostAndRetries(t *testing.T) {
	f := newFixture(t)
	// An older blessed version on slot b, as a previous update left it.
	stale := "bulkhead-0.9.0.conf"
	conf := strings.ReplaceAll(string(readFile(t, filepath.Join(f.esp, "loader/entries", f.host.Entry))), oldVersion, "0.9.0")
	conf = strings.ReplaceAll(conf, f.host.RootGUID, f.layoutGUID("root-b"))
	writeFile(t, filepath.Join(f.esp, "loader/entries", stale), []byte(conf))
	writeFile(t, filepath.Join(f.esp, "bulkhead/0.9.0/linux"), []byte("old kernel"))
	bundle := f.bundle(t, f.new.input(), f.key)
	tg, done := f.target(t)
	tg.Slot = &failingSlot{Slot: tg.Slot, after: f.new.img.Size / 2}
	_, err := apply.Apply(t.Context(), apply.File(bundle), f.host, tg, apply.WithClock(clock))
	done()
	if err == nil {
		t.Fatal("apply on a failing slot succeeded")
	}
	entries, _ := os.ReadDir(filepath.Join(f.esp, "loader/entries"))
	if len(entries) != 1 || entries[0].Name() != f.host.Entry {
		t.Fatalf("entries after the failure: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(f.esp, "bulkhead/0.9.0")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the retired version's directory: %v", err)
	}
	if _, err := f.apply(t, bundle, f.host); err != nil {
		t.Fatalf("retry: %v", err)
	}
	veritysetupVerify(t, f.slot, f.new.img)
}

// failingSlot fails every write past after bytes, as a dying disk would.
type failingSlot struct {
	apply.Slot
	after int64
}

func (s *failingSlot) WriteAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > s.after {
		n, _ := s.Slot.WriteAt(b[:max(0, s.after-off)], off)
		return n, errors.New("injected write error")
	}
	return s.Slot.WriteAt(b, off)
}

// TestBundleReproducible: the same inputs and key give the same bundle.
func TestBundleReproducible(t *testing.T) {
	f := newFixture(t)
	a := readFile(t, f.bundle(t, f.new.input(), f.key))
	b := readFile(t, f.bundle(t, f.new.input(), f.key))
	if !bytes.Equal(a, b) {
		t.Fatal("two bundles of the same input differ")
	}
}

// snapshot lists every file under dir with its content's hash.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			lines = append(lines, rel+"/")
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %d %x", rel, len(b), b[:min(len(b), 16)]))
		if strings.HasSuffix(rel, ".conf") {
			lines = append(lines, string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func readRange(t testing.TB, path string, off, size int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, off, size), b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestProgressSteps: an apply reports every step in order, the entry
// appearing only at the last; a refused bundle reports none.
func TestProgressSteps(t *testing.T) {
	f := newFixture(t)
	var steps []apply.Step
	entryAt := -1
	tg, done := f.target(t)
	defer done()
	progress := func(s apply.Step) {
		steps = append(steps, s)
		if _, err := os.Stat(filepath.Join(f.esp, "loader/entries/bulkhead-"+newVersion+"+3.conf")); err == nil && entryAt < 0 {
			entryAt = len(steps) - 1
		}
	}
	if _, err := apply.Apply(t.Context(), apply.File(f.bundle(t, f.new.input(), f.key)), f.host, tg,
		apply.WithClock(clock), apply.WithProgress(progress)); err != nil {
		t.Fatal(err)
	}
	want := []apply.Step{apply.StepChecked, apply.StepSlot, apply.StepSlotDone, apply.StepESP, apply.StepESPDone, apply.StepCommit, apply.StepCommitDone}
	if !slices.Equal(steps, want) || entryAt != len(want)-1 {
		t.Fatalf("steps %v (entry visible from step %d), want %v", steps, entryAt, want)
	}
	steps = nil
	if _, err := apply.Apply(t.Context(), apply.File(f.bundle(t, f.new.input(), newKey(t))), f.host, tg,
		apply.WithClock(clock), apply.WithProgress(progress)); err == nil || len(steps) != 0 {
		t.Fatalf("refused bundle: %v, steps %v", err, steps)
	}
}

func fileSize(t testing.TB, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return (st.Size() + disk.MiB - 1) / disk.MiB * disk.MiB
}

// TestCanceledApplyWritesNothing: a canceled context stops the apply
// before it writes.
func TestCanceledApplyWritesNothing(t *testing.T) {
	f := newFixture(t)
	bundle := f.bundle(t, f.new.input(), f.key)
	espBefore, slotBefore := snapshot(t, f.esp), readFile(t, f.slot)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tg, done := f.target(t)
	defer done()
	_, err := apply.Apply(ctx, apply.File(bundle), f.host, tg, apply.WithClock(clock))
	var re *apply.RefusedError
	if !errors.Is(err, context.Canceled) || errors.As(err, &re) {
		t.Fatalf("error %v, want context.Canceled and no refusal", err)
	}
	if snapshot(t, f.esp) != espBefore || !bytes.Equal(readFile(t, f.slot), slotBefore) {
		t.Fatal("a canceled apply wrote")
	}
}
