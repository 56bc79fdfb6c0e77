package disk

import (
	"fmt"
	"slices"
)

// EnrollName is the key set's directory under loader/keys on the ESP:
// systemd-boot 252 enrolls by itself (secure-boot-enroll force, after a
// 15 s countdown) only the set named auto; others it offers in its menu.
const EnrollName = "auto"

// enrollFiles are the names systemd-boot enrolls from loader/keys/NAME/.
var enrollFiles = []string{"PK.auth", "KEK.auth", "db.auth"}

// withEnroll adds Secure Boot keys to the ESP for systemd-boot to enroll
// (loader/keys/auto/{PK,KEK,db}.auth) and tells it to enroll them by
// itself on a machine in setup mode (secure-boot-enroll force). keys nil
// leaves files as they are.
func withEnroll(files []espFile, keys map[string][]byte) ([]espFile, error) {
	if keys == nil {
		return files, nil
	}
	for name := range keys {
		if !slices.Contains(enrollFiles, name) {
			return nil, fmt.Errorf("secure boot keys: %q is not one of %v", name, enrollFiles)
		}
	}
	for _, name := range enrollFiles {
		if len(keys[name]) == 0 {
			return nil, fmt.Errorf("secure boot keys: no %s", name)
		}
	}
	out := slices.Clone(files)
	for i, f := range out {
		if f.path == "/loader/loader.conf" {
			out[i] = bytesFile(f.path, []byte(loaderConf+"secure-boot-enroll force\n"))
		}
	}
	for _, name := range enrollFiles {
		out = append(out, bytesFile("/loader/keys/"+EnrollName+"/"+name, keys[name]))
	}
	return out, nil
}
