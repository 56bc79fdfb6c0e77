package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/bundler"
	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// usesRootImage reports whether format is written from the verified root
// image: the disk formats and the update bundle.
func usesRootImage(format string) bool { return isDiskFormat(format) || format == "update" }

// writeUpdate writes NAME.bundle: what raw-efi writes into a slot and onto
// the ESP for this version, signed with --sign-key.
func (d *diskBuild) writeUpdate(ctx context.Context) (string, error) {
	in, err := d.updateInput(ctx)
	if err != nil {
		return "", err
	}
	key, err := loadSignKey(d.f.signKey)
	if err != nil {
		return "", err
	}
	p := filepath.Join(d.f.out, d.f.name+".bundle")
	if _, err := bundler.Write(ctx, p, in, key); err != nil {
		return "", err
	}
	return p, nil
}

// checkUpdate fails a build of the update format early, before any image
// is resolved, when it lacks what a bundle needs.
func checkUpdate(formats []string, spec *config.Spec, f buildFlags, epoch int64) error {
	if !slices.Contains(formats, "update") {
		return nil
	}
	if f.signKey == "" {
		return fmt.Errorf("%w: an update bundle must be signed: give --sign-key", errUsage)
	}
	if wantsUKI(spec) {
		return fmt.Errorf("%s: boot.uki: update bundles do not carry unified kernel images yet", spec.Boot.Pos)
	}
	if spec.Boot == nil || spec.Boot.Version == "" {
		return errors.New("an update bundle needs boot.version in the spec: hosts order versions to refuse downgrades")
	}
	_, err := updateExpiry(spec, f, epoch)
	return err
}

func (d *diskBuild) updateInput(ctx context.Context) (bundler.Input, error) {
	if err := checkUpdate([]string{"update"}, d.spec, d.f, d.epoch); err != nil {
		return bundler.Input{}, err
	}
	expires, err := updateExpiry(d.spec, d.f, d.epoch)
	if err != nil {
		return bundler.Input{}, err
	}
	initrd, err := d.stage0Initrd(ctx)
	if err != nil {
		return bundler.Input{}, err
	}
	in := bundler.Input{
		Host: d.f.name, Version: d.version(), Arch: d.f.arch,
		Created: time.Unix(d.epoch, 0).UTC(), Expires: expires,
		Root: d.rootPath, Verity: d.root.Verity,
		Kernel: d.kernel, Initrd: initrd, Options: d.options(), Tries: d.tries(),
	}
	if u := d.spec.Update; u != nil {
		in.From, in.Downgrade = u.From, u.Downgrade
	}
	return in, nil
}

// updateExpiry is --expires, else the spec's update.expires; a duration
// counts from SOURCE_DATE_EPOCH, "now+DURATION" from the clock (asked for).
func updateExpiry(spec *config.Spec, f buildFlags, buildTime int64) (time.Time, error) {
	s, where := f.expires, "--expires"
	if s == "" && spec.Update != nil && spec.Update.Expires != "" {
		s, where = spec.Update.Expires, spec.Update.ExpiresPos.String()+": update.expires"
	}
	if s == "" {
		return time.Time{}, errors.New("an update bundle needs an expiry: update.expires in the spec or --expires")
	}
	from := buildTime
	if rest, ok := strings.CutPrefix(s, "now+"); ok {
		s, from = rest, time.Now().Unix()
	}
	t, err := config.ParseExpiry(s, from)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", where, err)
	}
	if !t.After(time.Unix(buildTime, 0)) {
		return time.Time{}, fmt.Errorf("%s: %s is not after the build time (SOURCE_DATE_EPOCH)", where, t.Format(time.RFC3339))
	}
	return t, nil
}
