package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/bundler"
	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// writeUpdate writes NAME.bundle: what raw-efi writes into a slot and onto
// the ESP for this version, signed with the build's key.
func (a *artifacts) writeUpdate(ctx context.Context) (string, error) {
	in, err := a.updateInput(ctx)
	if err != nil {
		return "", err
	}
	if a.b.o.key == nil {
		return "", errors.New("an update bundle must be signed: give a signing key")
	}
	p := a.path(".bundle")
	if _, err := bundler.Write(ctx, p, in, a.b.o.key); err != nil {
		return "", err
	}
	return p, nil
}

func (a *artifacts) updateInput(ctx context.Context) (bundler.Input, error) {
	expires, err := a.b.updateExpiry(a.spec)
	if err != nil {
		return bundler.Input{}, err
	}
	a.b.warnExpired(a.spec, expires)
	initrdPath, err := a.stage0Initrd(ctx)
	if err != nil {
		return bundler.Input{}, err
	}
	initrd, err := os.ReadFile(initrdPath)
	if err != nil {
		return bundler.Input{}, fmt.Errorf("reading the initrd: %w", err)
	}
	kernel, err := readEntry(a.root.Kernel)
	if err != nil {
		return bundler.Input{}, fmt.Errorf("reading the kernel: %w", err)
	}
	o := a.b.o
	in := bundler.Input{
		Host: o.name, Version: a.root.Version, Arch: o.platform.Architecture + variant(o.platform.Variant),
		Created: time.Unix(o.epoch, 0).UTC(), Expires: expires,
		Root: a.root.Path, Verity: a.root.Image.Verity,
		Kernel: kernel, Initrd: initrd, Options: a.root.options(), Tries: a.root.Tries,
	}
	if u := a.spec.Update; u != nil {
		in.From, in.Downgrade = u.From, u.Downgrade
	}
	mkUKI, err := a.ukiBuilder(initrdPath)
	if err != nil {
		return bundler.Input{}, err
	}
	if mkUKI != nil {
		// The same image raw-efi installs: its command line names no
		// slot, so it boots whichever slot the host writes.
		if in.UKI, err = mkUKI(in.Options); err != nil {
			return bundler.Input{}, err
		}
	}
	return in, nil
}

// warnExpired warns when a bundle would be born expired: hosts refuse it.
// A duration in update.expires counts from SOURCE_DATE_EPOCH, which is
// 1970 when unset, so that is the usual cause.
func (b *Builder) warnExpired(spec *config.Spec, expires time.Time) {
	if expires.After(b.o.now()) {
		return
	}
	var pos config.Pos
	if u := spec.Update; b.o.expires == "" && u != nil {
		pos = u.ExpiresPos
	}
	b.warn("update", pos, "the bundle expires at %s, which has passed: hosts refuse it (a duration counts from SOURCE_DATE_EPOCH, %s; set it to the release time, write a date, or give --expires now+DURATION)",
		expires.Format(time.RFC3339), time.Unix(b.o.epoch, 0).UTC().Format(time.RFC3339))
}

func variant(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}

// updateExpiry is the expiry given WithExpires, else the spec's
// update.expires; a duration counts from the epoch, "now+DURATION" from
// the clock.
func (b *Builder) updateExpiry(spec *config.Spec) (time.Time, error) {
	s, where := b.o.expires, "--expires"
	if s == "" && spec.Update != nil && spec.Update.Expires != "" {
		s, where = spec.Update.Expires, spec.Update.ExpiresPos.String()+": update.expires"
	}
	if s == "" {
		return time.Time{}, errors.New("an update bundle needs an expiry: update.expires in the spec or --expires")
	}
	from := b.o.epoch
	if rest, ok := strings.CutPrefix(s, "now+"); ok {
		s, from = rest, b.o.now().Unix()
	}
	t, err := config.ParseExpiry(s, from)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", where, err)
	}
	if !t.After(time.Unix(b.o.epoch, 0)) {
		return time.Time{}, fmt.Errorf("%s: %s is not after the build time (SOURCE_DATE_EPOCH)", where, t.Format(time.RFC3339))
	}
	return t, nil
}
