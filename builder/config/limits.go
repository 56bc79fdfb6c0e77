package config

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// Default limits on reading a spec. A real host spec is a few kilobytes;
// these leave room for large inline contents (certificates, configs) and
// stop a hostile spec long before it costs real memory.
const (
	// DefaultMaxFileSize bounds each spec file.
	DefaultMaxFileSize = 4 << 20
	// DefaultMaxExpandedSize bounds a spec file once every alias and merge
	// key is expanded, in bytes of scalar text (plus one per node).
	DefaultMaxExpandedSize = 32 << 20
)

// Option changes how specs are read.
type Option func(*options) error

type options struct {
	maxFileSize     int64
	maxExpandedSize int64
}

func newOptions(opts []Option) (*options, error) {
	o := &options{maxFileSize: DefaultMaxFileSize, maxExpandedSize: DefaultMaxExpandedSize}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithMaxFileSize refuses spec files larger than n bytes.
func WithMaxFileSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("spec file size limit must be positive, got %d", n)
		}
		o.maxFileSize = n
		return nil
	}
}

// WithMaxExpandedSize refuses a spec file that grows beyond n bytes once
// its aliases and merge keys are expanded.
func WithMaxExpandedSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("spec expanded size limit must be positive, got %d", n)
		}
		o.maxExpandedSize = n
		return nil
	}
}

// Source is one spec file as read: its name (used in positions) and bytes.
type Source struct {
	Name string
	Data []byte
}

// ReadSources reads spec files: regular files only (a FIFO or a device is
// refused without blocking), each at most the file size limit. A file that
// breaks a limit is reported as an Errors at its first position.
func ReadSources(paths []string, opts ...Option) ([]Source, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	out := make([]Source, 0, len(paths))
	for _, p := range paths {
		data, err := regfile.ReadFile(p, o.maxFileSize)
		var tl *regfile.TooLargeError
		var nr *regfile.NotRegularError
		at := Pos{File: p, Line: 1, Col: 1}
		switch {
		case errors.As(err, &tl):
			return nil, Errors{{Pos: at, Msg: "spec file is larger than the limit of " + regfile.Size(tl.Limit)}}
		case errors.As(err, &nr):
			return nil, Errors{{Pos: at, Msg: "spec is " + nr.Error()}}
		case err != nil:
			return nil, fmt.Errorf("loading spec: %w", err)
		}
		out = append(out, Source{Name: p, Data: data})
	}
	return out, nil
}

// expansion measures a document as the decoder sees it, with every alias
// and merge key expanded, without expanding anything.
type expansion struct {
	limit int64
	memo  map[*yaml.Node]int64
}

// overLimit returns the first node (in document order) at which the
// expanded document passes the limit, and the expanded size up to it; nil
// when the document stays within the limit.
func (x *expansion) overLimit(root *yaml.Node) (at *yaml.Node, size int64) {
	var total int64
	var walk func(n *yaml.Node, depth int) *yaml.Node
	walk = func(n *yaml.Node, depth int) *yaml.Node {
		if n.Kind == yaml.AliasNode || len(n.Content) == 0 || depth > maxAliasDepth*4 {
			total = saturate(total + x.size(n, 0))
			if total > x.limit {
				return n
			}
			return nil
		}
		total++
		for _, c := range n.Content {
			if at := walk(c, depth+1); at != nil {
				return at
			}
		}
		return nil
	}
	at = walk(root, 0)
	return at, total
}

// size is the expanded size of n: the bytes of its scalars plus one per
// node, aliases counted as often as they are used; it saturates above the
// limit. Each node is measured once.
func (x *expansion) size(n *yaml.Node, depth int) int64 {
	if n == nil || depth > maxAliasDepth*4 {
		return 1
	}
	if s, ok := x.memo[n]; ok {
		return s
	}
	x.memo[n] = x.limit + 1 // a node that contains itself is over any limit
	var s int64 = 1
	switch n.Kind {
	case yaml.AliasNode:
		s = x.size(n.Alias, depth+1)
	case yaml.ScalarNode:
		s += int64(len(n.Value))
	default:
		for _, c := range n.Content {
			if s = saturate(s + x.size(c, depth+1)); s > x.limit {
				break
			}
		}
	}
	s = min(s, x.limit+1)
	x.memo[n] = s
	return s
}

func saturate(n int64) int64 {
	if n < 0 || n > 1<<62 {
		return 1 << 62
	}
	return n
}

// checkExpansion reports a document whose expanded size passes the limit,
// at the alias or merge key that takes it over.
func (d *decoder) checkExpansion(root *yaml.Node, limit int64) bool {
	x := &expansion{limit: limit, memo: map[*yaml.Node]int64{}}
	at, _ := x.overLimit(root)
	if at == nil {
		return true
	}
	what := "the document"
	if at.Kind == yaml.AliasNode {
		what = "alias *" + at.Value
	}
	d.errorf(at, "spec expands to more than the limit of %s once aliases and merge keys are expanded (%s passes it)",
		regfile.Size(limit), what)
	return false
}
