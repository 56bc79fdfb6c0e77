package rootfs

import (
	"errors"
	"fmt"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// Option configures ApplyLayer and Assemble.
type Option func(*options) error

type options struct {
	epoch   int64  // upper bound for every ModTime, Unix seconds
	origin  string // Origin recorded on entries read from a layer
	baseDir string // where relative files[].source paths start when the spec position names no file
	homeDir string // what "~/" in files[].source expands to
	limits  config.Sizes
	// refuseOutside refuses files sources outside the spec's directory.
	refuseOutside bool
}

func newOptions(opts []Option) (*options, error) {
	o := &options{baseDir: ".", limits: config.DefaultLimits}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithEpoch clamps every modification time to at most sec (Unix seconds),
// the build's SOURCE_DATE_EPOCH. Entries bulkhead generates get exactly sec.
// The default is 0, the Unix epoch.
func WithEpoch(sec int64) Option {
	return func(o *options) error {
		if sec < 0 {
			return fmt.Errorf("negative epoch %d", sec)
		}
		o.epoch = sec
		return nil
	}
}

// WithOrigin sets the Origin ApplyLayer records on the entries it adds,
// for example "docker.io/library/alpine:3.21@sha256:…".
func WithOrigin(origin string) Option {
	return func(o *options) error {
		o.origin = origin
		return nil
	}
}

// WithBaseDir sets the directory relative files[].source paths are read
// from when the entry's spec position names no file. By default a source is
// relative to the directory of the spec file that declared it.
func WithBaseDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("empty base directory")
		}
		o.baseDir = dir
		return nil
	}
}

// WithHomeDir sets what a leading "~/" in files[].source expands to. By
// default it is the current user's home directory.
func WithHomeDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("empty home directory")
		}
		o.homeDir = dir
		return nil
	}
}

// WithLimits bounds what Assemble and ApplyLayer read: each files[].source,
// each uncompressed layer, each image, the whole host, and the entries of
// the tree (the spec's policy.limits). A zero field keeps its default
// (config.DefaultLimits).
func WithLimits(l config.Sizes) Option {
	return func(o *options) error {
		for _, f := range []struct{ v, dst *int64 }{{&l.File, &o.limits.File}, {&l.Layer, &o.limits.Layer}, {&l.Image, &o.limits.Image}, {&l.Host, &o.limits.Host}, {&l.Entries, &o.limits.Entries}} {
			if *f.v < 0 {
				return fmt.Errorf("negative limit %d", *f.v)
			}
			if *f.v > 0 {
				*f.dst = *f.v
			}
		}
		return nil
	}
}

// WithRefuseOutside refuses files entries whose source lies outside the
// directory of the spec that names them (policy.forbid: outside-files);
// by default Assemble reads them and lists them in Host.Outside.
func WithRefuseOutside(refuse bool) Option {
	return func(o *options) error {
		o.refuseOutside = refuse
		return nil
	}
}
