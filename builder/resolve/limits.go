package resolve

import (
	"errors"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// Limits bound the uncompressed layers resolution writes to the store: one
// layer, one image (all its layers) and every image of one resolver (each
// distinct layer counted once). Zero means no limit. They are enforced
// while a layer is decompressed, so a small compressed layer that expands
// without end stops at the limit instead of filling the disk.
type Limits struct {
	Layer, Image, Host int64
}

// WithLimits sets the limits on uncompressed layers.
func WithLimits(l Limits) Option {
	return func(r *Resolver) error {
		if l.Layer < 0 || l.Image < 0 || l.Host < 0 {
			return errors.New("negative layer limit")
		}
		r.budget = newBudget(l)
		return nil
	}
}

// ErrLimit reports a layer, an image or a host over its size limit.
var ErrLimit = errors.New("size limit exceeded")

// LimitError says which limit an uncompressed layer passed.
type LimitError struct {
	Limit string // "layer", "image" or "host"
	Bytes int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("uncompressed size passes the %s limit of %s (policy.limits.%s)", e.Limit, regfile.Size(e.Bytes), e.Limit)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// budget counts uncompressed bytes against the limits. It is safe for
// concurrent use; concurrent resolutions may each use what remains of the
// host limit, so the host total can pass it by what Parallelism layers
// hold before the last one is refused.
type budget struct {
	limits Limits
	mu     sync.Mutex
	host   int64
	seen   map[v1.Hash]bool
}

func newBudget(l Limits) *budget { return &budget{limits: l, seen: map[v1.Hash]bool{}} }

// allowance is how many more bytes a layer may hold, and the error that
// names the limit it would pass.
type allowance struct {
	left int64 // -1: no limit
	over *LimitError
}

// next is the allowance of the next layer of an image that holds image
// bytes so far: the tightest of the three limits.
func (b *budget) next(image int64) allowance {
	a := allowance{left: -1}
	if b == nil {
		return a
	}
	b.mu.Lock()
	host := b.host
	b.mu.Unlock()
	for _, c := range []struct {
		name        string
		limit, used int64
	}{{"layer", b.limits.Layer, 0}, {"image", b.limits.Image, image}, {"host", b.limits.Host, host}} {
		if left := max(c.limit-c.used, 0); c.limit > 0 && (a.left < 0 || left < a.left) {
			a = allowance{left: left, over: &LimitError{Limit: c.name, Bytes: c.limit}}
		}
	}
	return a
}

// check refuses a layer of n bytes that passes the allowance.
func (a allowance) check(n int64) error {
	if a.left >= 0 && n > a.left {
		return a.over
	}
	return nil
}

// reader stops r with the allowance's error once it has given more bytes
// than allowed: it never reads more than one byte past the limit.
func (a allowance) reader(r io.Reader) io.Reader {
	if a.left < 0 {
		return r
	}
	return &limitReader{r: r, left: a.left, over: a.over}
}

type limitReader struct {
	r    io.Reader
	left int64
	over error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.over
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, l.over
	}
	return n, err
}

// charge counts a layer towards the host total, once per diff id.
func (b *budget) charge(diffID v1.Hash, n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.seen[diffID] {
		b.seen[diffID] = true
		b.host += n
	}
}

// checkDeclared refuses an image whose manifest declares a compressed
// layer, or layers in all, larger than the uncompressed limits allow,
// before anything is downloaded.
func (b *budget) checkDeclared(m *v1.Manifest) error {
	if b == nil {
		return nil
	}
	var total int64
	for i, l := range m.Layers {
		total += max(l.Size, 0)
		for _, c := range []struct {
			name        string
			limit, size int64
		}{{"layer", b.limits.Layer, l.Size}, {"image", b.limits.Image, total}} {
			if c.limit > 0 && c.size > c.limit {
				return fmt.Errorf("layer %d (%s): the manifest declares %s compressed: %w", i+1, l.Digest, regfile.Size(l.Size), &LimitError{Limit: c.name, Bytes: c.limit})
			}
		}
	}
	return nil
}

// checkDeclared applies the budget's declared-size check to a registry
// image.
func (r *Resolver) checkDeclared(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	return r.budget.checkDeclared(m)
}
