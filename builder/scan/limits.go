package scan

import (
	"errors"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// Default limits on reading an artifact. A real initrd, even one carrying
// the root image, holds a few hundred megabytes and compresses less than
// ten to one.
const (
	// DefaultMaxDecompressed bounds an initrd once decompressed.
	DefaultMaxDecompressed = 4 << 30
	// DefaultMaxRatio bounds how much larger than its compressed form a
	// compressed initrd may grow, beyond RatioFloor.
	DefaultMaxRatio = 20
	// RatioFloor is what any compressed archive may grow to whatever its
	// ratio, so small, very compressible archives are read.
	RatioFloor = 16 << 20
)

// ReadOption changes how ReadBootArtifact reads.
type ReadOption func(*readOptions) error

type readOptions struct {
	maxSize  int64
	maxRatio int64
}

func newReadOptions(opts []ReadOption) (*readOptions, error) {
	o := &readOptions{maxSize: DefaultMaxDecompressed, maxRatio: DefaultMaxRatio}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithMaxDecompressed refuses an initrd larger than n bytes, compressed or
// not.
func WithMaxDecompressed(n int64) ReadOption {
	return func(o *readOptions) error {
		if n <= 0 {
			return fmt.Errorf("decompressed size limit must be positive, got %d", n)
		}
		o.maxSize = n
		return nil
	}
}

// WithMaxRatio refuses a compressed archive that grows to more than r
// times its compressed size (and more than RatioFloor).
func WithMaxRatio(r int64) ReadOption {
	return func(o *readOptions) error {
		if r <= 0 {
			return fmt.Errorf("compression ratio limit must be positive, got %d", r)
		}
		o.maxRatio = r
		return nil
	}
}

// ErrTooLarge reports an artifact over a size or ratio limit.
var ErrTooLarge = errors.New("artifact too large")

// allowed is how many bytes a compressed archive of n bytes may
// decompress to, and the error for one that grows more.
func (o *readOptions) allowed(n int) (int64, error) {
	byRatio := max(int64(n)*o.maxRatio, RatioFloor)
	if byRatio < o.maxSize {
		return byRatio, fmt.Errorf("%w: a compressed archive of %s decompresses to more than %s (the ratio limit is %d, at least %s)",
			ErrTooLarge, regfile.Size(int64(n)), regfile.Size(byRatio), o.maxRatio, regfile.Size(RatioFloor))
	}
	return o.maxSize, fmt.Errorf("%w: decompresses to more than the limit of %s", ErrTooLarge, regfile.Size(o.maxSize))
}

// readAllLimited reads r to its end, refusing it with over once it passes
// limit bytes; it never holds more than limit+1 bytes.
func readAllLimited(r io.Reader, limit int64, over error) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, over
	}
	return out, nil
}
