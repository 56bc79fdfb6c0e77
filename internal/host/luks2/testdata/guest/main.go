// Command guest is the PID 1 of luks2's boot test. It loads the modules in
// /modules (in name order; those that fail, like aesni_intel on a CPU
// without AES-NI, are reported and passed over), formats /dev/vda as LUKS2
// with the passphrase bulkhead.luks.pass=<hex> names, then twice: reads the
// header, unlocks it, maps it with dm-crypt, and the first time makes an
// ext4 file system on it (datafs.Ensure) and writes /hello, the second
// time reads /hello back; each time it unmounts and closes the mapping.
// Round 1 runs without aesni_intel, on the xts and ecb templates over the
// built-in generic AES; round 2 loads it first and runs on AES-NI. It
// powers off at the end.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulkhead-dev/bulkhead/internal/host/datafs"
	"github.com/bulkhead-dev/bulkhead/internal/host/dm"
	"github.com/bulkhead-dev/bulkhead/internal/host/luks2"
	"github.com/bulkhead-dev/bulkhead/internal/test/guest"
)

const (
	disk  = "/dev/vda"
	name  = "data"
	mnt   = "/mnt"
	hello = "hello from the encrypted data partition\n"
)

func main() { guest.Run(run) }

func run() error {
	loadModules(func(m string) bool { return !strings.Contains(m, "aesni") })
	if err := guest.WaitFor(disk, 20*time.Second); err != nil {
		return err
	}
	pass, err := hex.DecodeString(guest.Param("bulkhead.luks.pass"))
	if err != nil || len(pass) == 0 {
		return fmt.Errorf("bulkhead.luks.pass: %v", err)
	}
	key, err := format(pass)
	if err != nil {
		return err
	}
	for round := 1; round <= 2; round++ {
		if round == 2 {
			loadModules(func(m string) bool { return strings.Contains(m, "aesni") })
		}
		if err := use(round, pass, key); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
	}
	fmt.Println("guest done")
	return nil
}

func format(pass []byte) ([]byte, error) {
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	was, err := luks2.IsLUKS(f)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, 2)
	if err != nil {
		return nil, err
	}
	tok, err := luks2.NewToken(map[string]any{"type": "bulkhead-tpm2", "keyslots": []string{"0"}, "tpm2-blob": "c2VhbGVk"})
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	h, key, err := luks2.Format(f, size, luks2.FormatOptions{Passphrase: pass, Tokens: []luks2.Token{tok}})
	if err != nil {
		return nil, err
	}
	is, err := luks2.IsLUKS(f)
	fmt.Printf("format uuid=%s luks before=%v after=%v in %s\n", h.UUID, was, is, since(begin))
	return key, err
}

// use unlocks and maps the volume, and writes (round 1) or reads back
// (round 2) /hello on its file system.
func use(round int, pass, want []byte) error {
	ctx := context.Background()
	f, err := os.Open(disk)
	if err != nil {
		return err
	}
	begin := time.Now()
	h, err := luks2.ReadHeader(f)
	if err != nil {
		f.Close()
		return err
	}
	key, err := h.Unlock(f, pass)
	f.Close()
	if err != nil {
		return err
	}
	if !bytes.Equal(key, want) {
		return errors.New("unlocked another volume key than Format made")
	}
	unlocked := since(begin)
	begin = time.Now()
	dev, err := luks2.Open(ctx, disk, name, key, h)
	if err != nil {
		return err
	}
	fmt.Printf("round %d: unlocked in %s, opened %s in %s\n", round, unlocked, dev, since(begin))
	if err := printTable(); err != nil {
		return err
	}
	printDrivers(round)
	if round == 1 {
		created, err := datafs.Ensure(ctx, dev)
		if err != nil {
			return err
		}
		fmt.Printf("round 1: ext4 created=%v\n", created)
	}
	_ = os.MkdirAll(mnt, 0o755)
	if err := unix.Mount(dev, mnt, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mounting %s: %w", dev, err)
	}
	if round == 1 {
		err = os.WriteFile(filepath.Join(mnt, "hello"), []byte(hello), 0o644)
	} else {
		var b []byte
		b, err = os.ReadFile(filepath.Join(mnt, "hello"))
		fmt.Printf("round 2: read back: %s", b)
	}
	unix.Sync()
	if uerr := unix.Unmount(mnt, 0); err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	if err := luks2.Close(name); err != nil {
		return err
	}
	if _, err := os.Stat("/sys/block/" + filepath.Base(dev)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s still there after Close: %v", dev, err)
	}
	fmt.Printf("round %d: closed\n", round)
	return nil
}

// printTable prints the live table with the key left out.
func printTable() error {
	ctl, err := dm.Open()
	if err != nil {
		return err
	}
	defer ctl.Close()
	ts, err := ctl.Table(name)
	if err != nil {
		return err
	}
	for _, t := range ts {
		p := strings.Fields(t.Params)
		if len(p) > 1 {
			p[1] = fmt.Sprintf("<%d-byte key>", len(p[1])/2)
		}
		fmt.Printf("table: %d %d %s %s\n", t.Start, t.Length, t.Type, strings.Join(p, " "))
	}
	return nil
}

// loadModules loads the modules in /modules that want says, in name
// order, and reports those that fail.
func loadModules(want func(string) bool) {
	if err := guest.LoadModules(want); err != nil {
		fmt.Printf("module: %v\n", err)
	}
}

// printDrivers prints the kernel's xts(aes) implementations.
func printDrivers(round int) {
	b, _ := os.ReadFile("/proc/crypto")
	for _, blk := range strings.Split(string(b), "\n\n") {
		if cryptoName(blk) == "xts(aes)" {
			for _, l := range strings.Split(blk, "\n") {
				if strings.HasPrefix(l, "driver") {
					fmt.Printf("round %d: xts(aes) %s\n", round, strings.Join(strings.Fields(l), " "))
				}
			}
		}
	}
}

func cryptoName(blk string) string {
	for _, l := range strings.Split(blk, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
