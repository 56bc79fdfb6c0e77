package boot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// BootCountFile, under the data partition's mount point, counts the boots
// that mounted it: proof for operators (and tests) that /var persists.
const BootCountFile = "lib/bulkhead/boots"

// countBoot increments the boot counter under dir and returns the new
// count. The file is replaced atomically (written, synced, renamed), so a
// power cut leaves the old count or the new one.
func countBoot(dir string) (int, error) {
	p := filepath.Join(dir, BootCountFile)
	n := 0
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		if n, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n < 0 {
			return 0, fmt.Errorf("boot counter %s holds %q", p, b)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return 0, err
	}
	n++
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return 0, err
	}
	tmp := p + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	_, werr := fmt.Fprintf(f, "%d\n", n)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if err := os.Rename(tmp, p); err != nil {
		return 0, err
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}
