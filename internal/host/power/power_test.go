package power

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func event(typ, code uint16, value int32) []byte {
	b := make([]byte, eventSize)
	binary.NativeEndian.PutUint64(b[0:], 1700000000)
	binary.NativeEndian.PutUint16(b[16:], typ)
	binary.NativeEndian.PutUint16(b[18:], code)
	binary.NativeEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestIsPowerPress(t *testing.T) {
	if !IsPowerPress(event(evKey, keyPower, 1)) {
		t.Fatal("power press not seen")
	}
	for _, ev := range [][]byte{
		event(evKey, keyPower, 0), // release
		event(evKey, 30, 1),       // KEY_A
		event(0, 0, 0),            // EV_SYN
		event(evKey, keyPower, 1)[:20],
	} {
		if IsPowerPress(ev) {
			t.Fatalf("false press % x", ev)
		}
	}
}

// TestWatchButton feeds events through a FIFO standing in for
// /dev/input/event0, in the chunks a device returns.
func TestWatchButton(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "event0")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	pressed := make(chan struct{}, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan []string)
	go func() {
		w, err := WatchButton(ctx, filepath.Join(dir, "event*"), func() { pressed <- struct{}{} })
		if err != nil {
			t.Error(err)
		}
		done <- w
	}()
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if w := <-done; len(w) != 1 {
		t.Fatalf("watching %q", w)
	}
	var batch []byte
	batch = append(batch, event(evKey, 30, 1)...)
	batch = append(batch, event(evKey, keyPower, 1)...)
	batch = append(batch, event(0, 0, 0)...)
	batch = append(batch, event(evKey, keyPower, 0)...)
	f.Write(batch)
	select {
	case <-pressed:
	case <-time.After(5 * time.Second):
		t.Fatal("power press not reported")
	}
	select {
	case <-pressed:
		t.Fatal("release reported as a press")
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := WatchButton(ctx, filepath.Join(dir, "none*"), func() {}); err == nil {
		t.Fatal("no devices: want error")
	}
}

func TestForSignal(t *testing.T) {
	if a, ok := ForSignal(unix.SIGINT); !ok || a != Reboot {
		t.Fatal("SIGINT")
	}
	for _, s := range []os.Signal{unix.SIGTERM, unix.SIGUSR2, unix.SIGPWR} {
		if a, ok := ForSignal(s); !ok || a != PowerOff {
			t.Fatalf("%v", s)
		}
	}
	if _, ok := ForSignal(unix.SIGHUP); ok {
		t.Fatal("SIGHUP")
	}
}
