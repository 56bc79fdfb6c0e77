package boot

import (
	"strings"
	"testing"
)

// TestPlanData: a LUKS2 volume is unsealed, never formatted (and needs a
// TPM); a plain file system stays plain; a blank partition is sealed to
// the TPM, or without one is plain ext4 only when the spec allows it.
func TestPlanData(t *testing.T) {
	for _, tc := range []struct {
		luks, ext4, tpm, plainOK bool
		want                     dataPlan
		err                      string
	}{
		{luks: true, tpm: true, want: planUnseal},
		{luks: true, tpm: true, plainOK: true, want: planUnseal},
		{luks: true, err: "is a LUKS2 volume sealed to a TPM, and this machine has no TPM 2.0"},
		{luks: true, plainOK: true, err: "is a LUKS2 volume sealed to a TPM"},
		{ext4: true, tpm: true, want: planPlain},
		{ext4: true, want: planPlain},
		{tpm: true, want: planCreate},
		{tpm: true, plainOK: true, want: planCreate},
		{plainOK: true, want: planPlain},
		{err: "no TPM 2.0 to seal the data partition's key to (disk.without_tpm: fail)"},
	} {
		got, err := planData("/dev/vda4", tc.luks, tc.ext4, tc.tpm, tc.plainOK)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: %v, %v; want error %q", tc, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %v, %v; want %v", tc, got, err, tc.want)
		}
	}
}
