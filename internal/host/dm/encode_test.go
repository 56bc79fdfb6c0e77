package dm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// layoutProgram prints the sizes, offsets and ioctl numbers of
// linux/dm-ioctl.h as "name value" lines.
const layoutProgram = `#include <stdio.h>
#include <stddef.h>
#include <linux/ioctl.h>
#include <linux/dm-ioctl.h>
#define P(n, v) printf("%s %lu\n", n, (unsigned long)(v))
int main(void) {
	P("headerSize", sizeof(struct dm_ioctl));
	P("targetSpecSize", sizeof(struct dm_target_spec));
	P("nameLen", DM_NAME_LEN);
	P("uuidLen", DM_UUID_LEN);
	P("typeNameLen", DM_MAX_TYPE_NAME);
	P("offDataSize", offsetof(struct dm_ioctl, data_size));
	P("offDataStart", offsetof(struct dm_ioctl, data_start));
	P("offTargetCount", offsetof(struct dm_ioctl, target_count));
	P("offOpenCount", offsetof(struct dm_ioctl, open_count));
	P("offFlags", offsetof(struct dm_ioctl, flags));
	P("offEventNr", offsetof(struct dm_ioctl, event_nr));
	P("offDev", offsetof(struct dm_ioctl, dev));
	P("offName", offsetof(struct dm_ioctl, name));
	P("offUUID", offsetof(struct dm_ioctl, uuid));
	P("offSectorStart", offsetof(struct dm_target_spec, sector_start));
	P("offLength", offsetof(struct dm_target_spec, length));
	P("offStatus", offsetof(struct dm_target_spec, status));
	P("offNext", offsetof(struct dm_target_spec, next));
	P("offTargetType", offsetof(struct dm_target_spec, target_type));
	P("versionMajor", DM_VERSION_MAJOR);
	P("DM_VERSION", DM_VERSION);
	P("DM_DEV_CREATE", DM_DEV_CREATE);
	P("DM_DEV_REMOVE", DM_DEV_REMOVE);
	P("DM_DEV_SUSPEND", DM_DEV_SUSPEND);
	P("DM_TABLE_LOAD", DM_TABLE_LOAD);
	P("DM_TABLE_STATUS", DM_TABLE_STATUS);
	P("FlagReadOnly", DM_READONLY_FLAG);
	P("flagSuspend", DM_SUSPEND_FLAG);
	P("flagStatusTable", DM_STATUS_TABLE_FLAG);
	return 0;
}
`

// TestLayoutMatchesKernelHeader compiles a C program against the kernel's
// dm-ioctl.h and compares every size, offset and number with ours.
func TestLayoutMatchesKernelHeader(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "layout.c")
	if err := os.WriteFile(src, []byte(layoutProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "layout")
	if out, err := exec.Command("cc", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("compiling layout program (needs cc and linux-libc-dev): %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		"headerSize": headerSize, "targetSpecSize": targetSpecSize,
		"nameLen": nameLen, "uuidLen": uuidLen, "typeNameLen": typeNameLen,
		"offDataSize": offDataSize, "offDataStart": offDataStart, "offTargetCount": offTargetCount,
		"offOpenCount": offOpenCount, "offFlags": offFlags, "offEventNr": offEventNr,
		"offDev": offDev, "offName": offName, "offUUID": offUUID,
		"offSectorStart": offSectorStart, "offLength": offLength, "offStatus": offStatus,
		"offNext": offNext, "offTargetType": offTargetType,
		"versionMajor":    uint64(version[0]),
		"DM_VERSION":      uint64(ioctlNumber(cmdVersion)),
		"DM_DEV_CREATE":   uint64(ioctlNumber(cmdDevCreate)),
		"DM_DEV_REMOVE":   uint64(ioctlNumber(cmdDevRemove)),
		"DM_DEV_SUSPEND":  uint64(ioctlNumber(cmdDevSuspend)),
		"DM_TABLE_LOAD":   uint64(ioctlNumber(cmdTableLoad)),
		"DM_TABLE_STATUS": uint64(ioctlNumber(cmdTableStatus)),
		"FlagReadOnly":    FlagReadOnly, "flagSuspend": flagSuspend, "flagStatusTable": flagStatusTable,
	}
	got := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, v, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		got[name] = n
	}
	if len(got) != len(want) {
		t.Fatalf("header program printed %d values, want %d", len(got), len(want))
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: kernel header says %d, we use %d", name, got[name], w)
		}
	}
	if ioctlNumber(cmdDevCreate) != 0xc138fd03 {
		t.Errorf("DM_DEV_CREATE = %#x", ioctlNumber(cmdDevCreate))
	}
}

func TestEncodeTable(t *testing.T) {
	params := "1 7:0 7:0 4096 4096 10 11 sha256 aa bb" // 38 bytes + NUL
	second := "0 1"
	buf, err := encodeTable("bulkhead-root", FlagReadOnly, []Target{
		{Start: 0, Length: 80, Type: "verity", Params: params},
		{Start: 80, Length: 8, Type: "zero", Params: second},
	})
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	first := align8(targetSpecSize + len(params) + 1) // 80
	if first != 80 || first%8 != 0 {
		t.Fatalf("first spec size %d", first)
	}
	if want := headerSize + first + align8(targetSpecSize+len(second)+1); len(buf) != want {
		t.Fatalf("request is %d bytes, want %d", len(buf), want)
	}
	h := decodeHeader(buf)
	if h.DataSize != uint32(len(buf)) || h.DataStart != headerSize || h.TargetCount != 2 || h.Flags != FlagReadOnly || h.Name != "bulkhead-root" {
		t.Errorf("header %+v", h)
	}
	if v := le.Uint32(buf[0:]); v != 4 {
		t.Errorf("version major %d", v)
	}
	spec := buf[headerSize:]
	if le.Uint64(spec[offSectorStart:]) != 0 || le.Uint64(spec[offLength:]) != 80 ||
		le.Uint32(spec[offNext:]) != uint32(first) || cString(spec[offTargetType:]) != "verity" ||
		cString(spec[targetSpecSize:]) != params {
		t.Errorf("first spec % x", spec[:first])
	}
	spec2 := spec[first:]
	if le.Uint64(spec2[offSectorStart:]) != 80 || cString(spec2[offTargetType:]) != "zero" || cString(spec2[targetSpecSize:]) != second {
		t.Errorf("second spec % x", spec2)
	}
}

func TestEncodeRejects(t *testing.T) {
	if _, err := encodeTable(strings.Repeat("n", nameLen), 0, []Target{{Type: "zero"}}); err == nil {
		t.Error("long name accepted")
	}
	if _, err := encodeTable("x", 0, []Target{{Type: strings.Repeat("t", typeNameLen)}}); err == nil {
		t.Error("long target type accepted")
	}
	if _, err := encodeTable("x", 0, nil); err == nil {
		t.Error("empty table accepted")
	}
}

// TestDecodeStatus decodes an answer laid out as the kernel's
// retrieve_status writes it: next counts from the start of the data.
func TestDecodeStatus(t *testing.T) {
	buf, err := newRequest("r", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	data := buf[headerSize:]
	le.PutUint64(data[offLength:], 16)
	copy(data[offTargetType:], "verity")
	copy(data[targetSpecSize:], "1 a b\x00")
	next := align8(targetSpecSize + 6)
	le.PutUint32(data[offNext:], uint32(next))
	le.PutUint64(data[next+offSectorStart:], 16)
	le.PutUint64(data[next+offLength:], 8)
	copy(data[next+offTargetType:], "zero")
	le.PutUint32(buf[offTargetCount:], 2)
	le.PutUint32(buf[offDataSize:], uint32(headerSize+next+targetSpecSize+1))
	ts, err := decodeStatus(buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0] != (Target{0, 16, "verity", "1 a b"}) || ts[1] != (Target{16, 8, "zero", ""}) {
		t.Errorf("decoded %+v", ts)
	}
}
