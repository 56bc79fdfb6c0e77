package stage0

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysmount"
)

// maxPCRFile bounds each file of the UKI's signed PCR policy.
const maxPCRFile = 64 << 10

// KeepPCRPolicy copies the signed PCR 11 policy systemd-stub put into the
// initramfs (the UKI's .pcrsig and .pcrpkey, under bootparam.StubExtra)
// to bootparam.PCRDir on a /run tmpfs, which moves into the new root with
// the switch: stage 1 unseals the data partition's key with them. Without
// them (no UKI, or a UKI without a PCR key) it does nothing.
func KeepPCRPolicy() (bool, error) {
	src := func(name string) string { return filepath.Join(bootparam.StubExtra, name) }
	if _, err := os.Stat(src(bootparam.PCRSignature)); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err := mountRun(); err != nil {
		return false, err
	}
	if err := os.MkdirAll(bootparam.PCRDir, 0o700); err != nil {
		return false, err
	}
	for _, name := range []string{bootparam.PCRSignature, bootparam.PCRPublicKey} {
		if err := copySmall(src(name), filepath.Join(bootparam.PCRDir, name)); err != nil {
			return false, err
		}
	}
	return true, nil
}

func copySmall(from, to string) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPCRFile+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", from, err)
	}
	if len(b) > maxPCRFile {
		return fmt.Errorf("%s is larger than %d bytes", from, maxPCRFile)
	}
	return os.WriteFile(to, b, 0o600)
}

// mountRun mounts /run as stage 1 would (sysmount's table), unless it is
// mounted: the switch moves it into the new root with what stage 0 left
// there for stage 1.
func mountRun() error {
	run := slices.DeleteFunc(slices.Clone(sysmount.System), func(m sysmount.Mount) bool { return m.Target != "/run" })
	_, err := sysmount.MountAll(run)
	return err
}

// keepRootSlot writes the root slot's PARTUUID to bootparam.RootSlotFile.
func keepRootSlot(uuid string) error {
	if err := mountRun(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(bootparam.RootSlotFile), 0o755); err != nil {
		return err
	}
	return os.WriteFile(bootparam.RootSlotFile, []byte(uuid+"\n"), 0o644)
}
