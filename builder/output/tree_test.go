package output

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

const testMTime = 1700000000

// want is what a reader must find for one member of the test tree.
type want struct {
	typ          uint32 // S_IF* bits
	perm         uint32 // 07777
	uid, gid     int
	mtime        int64
	data         []byte // regular file contents
	link         string // symlink target
	major, minor uint32
}

// testTree builds a tree of every kind of entry, with contents both in
// memory and at offsets in a blob file, and returns what each path must
// hold. The hard-link group usr/bin/link, usr/bin/prog and usr/sbin/prog2
// shares one file; usr/bin/link sorts first and is a link.
func testTree(t testing.TB) (*rootfs.Tree, map[string]want) {
	t.Helper()
	prog := bytes.Repeat([]byte("prog\x00\x7fELF"), 1000)
	big := make([]byte, 300<<10+3) // several copy buffers, unaligned end
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	blob := filepath.Join(t.TempDir(), "layer.blob")
	var b bytes.Buffer
	b.WriteString("junk before")
	progOff := int64(b.Len())
	b.Write(prog)
	b.WriteString("junk between")
	bigOff := int64(b.Len())
	b.Write(big)
	b.WriteString("junk after")
	if err := os.WriteFile(blob, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	tr := rootfs.New()
	root := tr.Get("")
	root.ModTime = testMTime
	put := func(e rootfs.Entry) {
		if e.ModTime == 0 {
			e.ModTime = testMTime
		}
		tr.Put(&e)
	}
	put(rootfs.Entry{Path: "etc", Kind: rootfs.KindDir, Mode: 0o755})
	put(rootfs.Entry{Path: "etc/hosts", Kind: rootfs.KindFile, Mode: 0o644, Size: 20, Content: rootfs.Content{Data: []byte("127.0.0.1 localhost\n")}})
	put(rootfs.Entry{Path: "etc/shadow", Kind: rootfs.KindFile, Mode: 0o640, GID: 42, Size: 5, ModTime: 1234567890, Content: rootfs.Content{Data: []byte("root:")}})
	put(rootfs.Entry{Path: "usr/bin/prog", Kind: rootfs.KindFile, Mode: 0o4755, Size: int64(len(prog)), Content: rootfs.Content{Blob: blob, Offset: progOff}})
	put(rootfs.Entry{Path: "usr/bin/link", Kind: rootfs.KindHardlink, Mode: 0o4755, Link: "usr/bin/prog", Size: int64(len(prog)), Content: rootfs.Content{Blob: blob, Offset: progOff}})
	put(rootfs.Entry{Path: "usr/sbin/prog2", Kind: rootfs.KindHardlink, Mode: 0o4755, Link: "usr/bin/prog", Size: int64(len(prog)), Content: rootfs.Content{Blob: blob, Offset: progOff}})
	put(rootfs.Entry{Path: "usr/bin/big", Kind: rootfs.KindFile, Mode: 0o755, UID: 1000, GID: 1001, Size: int64(len(big)), Content: rootfs.Content{Blob: blob, Offset: bigOff}})
	put(rootfs.Entry{Path: "usr/bin/ping", Kind: rootfs.KindFile, Mode: 0o755, Size: 4, Content: rootfs.Content{Data: []byte("ping")}, Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00", "user.note": "x"}})
	put(rootfs.Entry{Path: "bin", Kind: rootfs.KindSymlink, Mode: 0o777, Link: "usr/bin"})
	put(rootfs.Entry{Path: "dev/null", Kind: rootfs.KindCharDev, Mode: 0o666, Major: 1, Minor: 3})
	put(rootfs.Entry{Path: "dev/sda", Kind: rootfs.KindBlockDev, Mode: 0o660, GID: 6, Major: 8, Minor: 0})
	put(rootfs.Entry{Path: "dev/loop300", Kind: rootfs.KindBlockDev, Mode: 0o660, Major: 7, Minor: 300})
	put(rootfs.Entry{Path: "dev/initctl", Kind: rootfs.KindFIFO, Mode: 0o600})
	put(rootfs.Entry{Path: "tmp", Kind: rootfs.KindDir, Mode: 0o1777})
	put(rootfs.Entry{Path: "var/mail", Kind: rootfs.KindDir, Mode: 0o2775, GID: 8})
	put(rootfs.Entry{Path: "var/empty", Kind: rootfs.KindFile, Mode: 0o600})
	// A hard link whose target was later removed keeps its own content.
	put(rootfs.Entry{Path: "opt/old", Kind: rootfs.KindHardlink, Mode: 0o644, Link: "opt/gone", Size: 8, Content: rootfs.Content{Data: []byte("old data")}})

	dir := want{typ: 0o040000, perm: 0o755, mtime: testMTime}
	file := func(perm uint32, data []byte) want {
		return want{typ: 0o100000, perm: perm, mtime: testMTime, data: data}
	}
	progW := file(0o4755, prog)
	w := map[string]want{
		"":               dir,
		"etc":            dir,
		"etc/hosts":      file(0o644, []byte("127.0.0.1 localhost\n")),
		"etc/shadow":     {typ: 0o100000, perm: 0o640, gid: 42, mtime: 1234567890, data: []byte("root:")},
		"usr":            dir,
		"usr/bin":        dir,
		"usr/sbin":       dir,
		"usr/bin/prog":   progW,
		"usr/bin/link":   progW,
		"usr/sbin/prog2": progW,
		"usr/bin/big":    {typ: 0o100000, perm: 0o755, uid: 1000, gid: 1001, mtime: testMTime, data: big},
		"usr/bin/ping":   file(0o755, []byte("ping")),
		"bin":            {typ: 0o120000, perm: 0o777, mtime: testMTime, link: "usr/bin"},
		"dev":            dir,
		"dev/null":       {typ: 0o020000, perm: 0o666, mtime: testMTime, major: 1, minor: 3},
		"dev/sda":        {typ: 0o060000, perm: 0o660, gid: 6, mtime: testMTime, major: 8},
		"dev/loop300":    {typ: 0o060000, perm: 0o660, mtime: testMTime, major: 7, minor: 300},
		"dev/initctl":    {typ: 0o010000, perm: 0o600, mtime: testMTime},
		"tmp":            {typ: 0o040000, perm: 0o1777, mtime: testMTime},
		"var":            dir,
		"var/mail":       {typ: 0o040000, perm: 0o2775, gid: 8, mtime: testMTime},
		"var/empty":      file(0o600, []byte{}),
		"opt":            dir,
		"opt/old":        file(0o644, []byte("old data")),
	}
	return tr, w
}

// hardLinked is the test tree's hard-link group in walk order.
var hardLinked = []string{"usr/bin/link", "usr/bin/prog", "usr/sbin/prog2"}

// walkOrder lists t's paths as Walk gives them.
func walkOrder(t *rootfs.Tree) []string {
	var out []string
	_ = t.Walk(func(e *rootfs.Entry) error {
		out = append(out, e.Path)
		return nil
	})
	return out
}
