package output

import (
	"context"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

func TestPlanHardLinks(t *testing.T) {
	tr := rootfs.New()
	file := rootfs.Content{Data: []byte("abc")}
	tr.Put(&rootfs.Entry{Path: "a", Kind: rootfs.KindFile, Mode: 0o755, Size: 3, Content: file})
	tr.Put(&rootfs.Entry{Path: "b", Kind: rootfs.KindHardlink, Link: "a", Size: 3, Content: file})
	tr.Put(&rootfs.Entry{Path: "c", Kind: rootfs.KindHardlink, Link: "b", Size: 3, Content: file}) // a chain
	tr.Put(&rootfs.Entry{Path: "s", Kind: rootfs.KindSymlink, Link: "a"})
	tr.Put(&rootfs.Entry{Path: "t", Kind: rootfs.KindHardlink, Link: "s"}) // to a symlink
	// The target was replaced by another file after the link was made.
	tr.Put(&rootfs.Entry{Path: "x", Kind: rootfs.KindFile, Size: 3, Content: rootfs.Content{Data: []byte("new")}})
	tr.Put(&rootfs.Entry{Path: "y", Kind: rootfs.KindHardlink, Link: "x", Size: 3, Content: rootfs.Content{Data: []byte("old")}})

	ms, err := plan(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]member{}
	for _, m := range ms {
		got[m.path] = m
	}
	a, b, c := got["a"], got["b"], got["c"]
	if a.ino != b.ino || b.ino != c.ino || a.nlink != 3 || a.first != "a" || c.first != "a" || !c.last || a.last || b.last {
		t.Errorf("a, b, c: %+v %+v %+v; want one inode of 3 links, first a, last c", a, b, c)
	}
	if tm := got["t"]; tm.kind != rootfs.KindSymlink || tm.e.Link != "a" || tm.ino == got["s"].ino {
		t.Errorf("t: %+v, want its own copy of symlink s", tm)
	}
	if y := got["y"]; y.kind != rootfs.KindFile || string(y.e.Content.Data) != "old" || y.ino == got["x"].ino || y.nlink != 1 {
		t.Errorf("y: %+v, want a file of its own holding the old content", y)
	}
	if root := got[""]; root.ino != 1 || root.nlink != 2 {
		t.Errorf("root: ino %d nlink %d, want 1 and 2", root.ino, root.nlink)
	}
}
