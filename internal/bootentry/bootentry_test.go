package bootentry

import "testing"

func TestEntryFiles(t *testing.T) {
	opts, err := SlotOptions("console=ttyS0  bulkhead.verity=1:2:aa:bb", "GUID-B", "guid-d")
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{Version: "1.2.0", Initrd: true, Options: opts, Tries: 3}
	if e.Path() != "loader/entries/bulkhead-1.2.0+3.conf" || e.KernelPath() != "bulkhead/1.2.0/linux" {
		t.Fatalf("paths %s %s", e.Path(), e.KernelPath())
	}
	want := "title Bulkhead 1.2.0\nversion 1.2.0\nsort-key bulkhead\nlinux /bulkhead/1.2.0/linux\ninitrd /bulkhead/1.2.0/initrd\n" +
		"options console=ttyS0 bulkhead.verity=1:2:aa:bb root=PARTUUID=GUID-B bulkhead.data=PARTUUID=guid-d\n"
	if got := e.Conf(); got != want {
		t.Fatalf("conf:\n%s\nwant:\n%s", got, want)
	}
	files := e.Files()
	if len(files) != 2 || files[0] != (File{Kernel, "bulkhead/1.2.0/linux"}) || files[1] != (File{Initrd, "bulkhead/1.2.0/initrd"}) {
		t.Fatalf("files %v", files)
	}
	if got := RootPartUUID(e.Conf()); got != "guid-b" {
		t.Fatalf("RootPartUUID %q", got)
	}
	if _, err := SlotOptions("root=/dev/sda", "a", "b"); err == nil {
		t.Fatal("root= accepted")
	}
}

func TestParseName(t *testing.T) {
	for name, want := range map[string]Name{
		"bulkhead-1.2.0+3.conf":   {Version: "1.2.0", Counted: true, Left: 3},
		"bulkhead-1.2.0+0-3.conf": {Version: "1.2.0", Counted: true, Left: 0},
		"bulkhead-1.2.0.conf":     {Version: "1.2.0"},
		"bulkhead-1.2.0+3.efi":    {Version: "1.2.0", Counted: true, Left: 3, UKI: true},
		"bulkhead-1.2.0.efi":      {Version: "1.2.0", UKI: true},
	} {
		got, ok := ParseName(name)
		if !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", name, got, ok, want)
		}
	}
	for _, bad := range []string{"other.conf", "bulkhead-.conf", "bulkhead-1+x.conf", "bulkhead-1.conf.tmp", ".bulkhead-1+3.conf", ".bulkhead-1+3.efi.tmp", "bulkhead-1.efi.tmp"} {
		if _, ok := ParseName(bad); ok {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestEntryUKI(t *testing.T) {
	e := Entry{Version: "1.2.0", Initrd: true, Tries: 3, UKI: true}
	if e.Path() != "EFI/Linux/bulkhead-1.2.0+3.efi" || len(e.Files()) != 0 {
		t.Fatalf("path %s, files %v", e.Path(), e.Files())
	}
	e.Tries = 0
	if e.Path() != "EFI/Linux/bulkhead-1.2.0.efi" {
		t.Fatalf("blessed path %s", e.Path())
	}
}
