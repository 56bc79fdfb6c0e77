package boot

import "testing"

// TestFindSlotFromCmdline: an entry file's command line names both
// partitions; a boot without a verified root has none (and looks for
// none); a malformed verity parameter is an error, not a guess.
func TestFindSlotFromCmdline(t *testing.T) {
	s, err := findSlot(t.Context(), "console=ttyS0 root=PARTUUID=AA-bb bulkhead.data=PARTUUID=cc-DD")
	if err != nil || s != (slotGUIDs{root: "aa-bb", data: "cc-dd"}) {
		t.Errorf("entry file: %+v, %v", s, err)
	}
	if s, err := findSlot(t.Context(), "console=ttyS0"); err != nil || s != (slotGUIDs{}) {
		t.Errorf("no verified root: %+v, %v", s, err)
	}
	if _, err := findSlot(t.Context(), "bulkhead.verity=1:2:zz:00"); err == nil {
		t.Error("a bad bulkhead.verity= was taken")
	}
}
