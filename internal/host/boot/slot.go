package boot

import (
	"context"
	"os"
	"strings"
	"sync"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/host/blockdev"
	"github.com/bulkhead-dev/bulkhead/internal/host/stage0"
)

// slotGUIDs are the partitions a boot from a disk runs from: the root
// slot and the data partition (either "" when there is none).
type slotGUIDs struct {
	root, data string
}

// bootSlot is this boot's slotGUIDs, found once.
var bootSlot = sync.OnceValues(func() (slotGUIDs, error) {
	return findSlot(context.Background(), cmdline())
})

// findSlot reads the partitions from the command line: root=PARTUUID=
// and bulkhead.data=PARTUUID= of an entry file. A unified kernel image's
// command line names neither, since one image serves either slot: then
// the root slot is the one holding the command line's root hash, as
// stage 0 picked it and wrote to bootparam.RootSlotFile (else found again
// with stage0.FindSlot), and the data partition the one of type
// bootparam.TypeData on its disk.
func findSlot(ctx context.Context, cl string) (slotGUIDs, error) {
	if root, ok := blockdev.PartUUIDFromCmdline(cl, "root"); ok {
		data, _ := blockdev.PartUUIDFromCmdline(cl, DataParam)
		return slotGUIDs{root: root, data: data}, nil
	}
	r, verified, err := stage0.ParseVerifiedRoot(cl)
	if err != nil || !verified || !r.Slot {
		return slotGUIDs{}, err
	}
	root := keptRootSlot()
	if root == "" {
		p, err := stage0.FindSlot(ctx, r.Verity)
		if err != nil {
			return slotGUIDs{}, err
		}
		root = p.UUID
	}
	s := slotGUIDs{root: root}
	parts, err := blockdev.DiskOf(root)
	if err != nil {
		return s, err
	}
	for _, q := range parts {
		if q.Type == bootparam.TypeData {
			s.data = q.UUID
			break
		}
	}
	return s, nil
}

// keptRootSlot is the root slot's PARTUUID stage 0 kept, or "".
func keptRootSlot() string {
	b, err := os.ReadFile(bootparam.RootSlotFile)
	if err != nil || len(b) > 64 {
		return ""
	}
	return strings.TrimSpace(string(b))
}
