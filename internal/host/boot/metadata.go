package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/metadata"
	"github.com/bulkhead-dev/bulkhead/internal/metaspec"
	"golang.org/x/sys/unix"
)

// hostMetadata sets the host name and writes the user data from the
// spec's metadata provider, retrying within the section's timeout; a
// provider that does not answer in time leaves the host as it was. The
// user data is never logged.
func (h *host) hostMetadata(ctx context.Context) {
	cfg, err := metaspec.Read("/")
	if err != nil || cfg == nil {
		if err != nil {
			h.logf("metadata: %v", err)
		}
		return
	}
	p, err := metadata.New(cfg.Provider)
	if err != nil {
		h.logf("metadata: %v", err)
		return
	}
	keys, err := metaspec.KeysOf(cfg.Provider)
	if err != nil {
		h.logf("metadata: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.TimeoutOf())
	defer cancel()
	if cfg.Hostname {
		h.metadataStep(ctx, cfg.Provider, "hostname", func(ctx context.Context) (string, error) {
			name, from, err := metadata.Hostname(ctx, p, keys)
			if err != nil {
				return "", err
			}
			if err := unix.Sethostname([]byte(name)); err != nil {
				return "", fmt.Errorf("setting host name: %w", err)
			}
			return fmt.Sprintf("host name %s from %s:%s", name, cfg.Provider, from), nil
		})
	}
	if cfg.UserData {
		h.metadataStep(ctx, cfg.Provider, "user data", func(ctx context.Context) (string, error) {
			data, from, err := metadata.UserData(ctx, p, keys)
			if err != nil {
				return "", err
			}
			if err := writeUserData(data); err != nil {
				return "", err
			}
			return fmt.Sprintf("user data from %s:%s in %s (%d bytes)", cfg.Provider, from, metaspec.UserDataPath, len(data)), nil
		})
	}
}

// metadataStep runs one step until it succeeds or ctx ends, 250ms
// doubling to 2s between tries, each try bounded to 3s.
func (h *host) metadataStep(ctx context.Context, provider, what string, step func(context.Context) (string, error)) {
	begin := time.Now()
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		done, err := step(tctx)
		cancel()
		if err == nil {
			h.logf("metadata: %s", done)
			return
		}
		if errors.Is(err, metadata.ErrNotFound) {
			h.logf("metadata: no %s at %s", what, provider)
			return
		}
		select {
		case <-ctx.Done():
			h.logf("metadata: %s from %s: %v; gave up after %s", what, provider, err, time.Since(begin).Round(time.Millisecond))
			return
		case <-time.After(delay):
		}
	}
}

// writeUserData writes the user data to the /run tmpfs, root's, 0600.
func writeUserData(data []byte) error {
	dir := filepath.Dir(metaspec.UserDataPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing user data: %w", err)
	}
	tmp := metaspec.UserDataPath + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing user data: %w", err)
	}
	if err := os.Rename(tmp, metaspec.UserDataPath); err != nil {
		return fmt.Errorf("writing user data: %w", err)
	}
	return nil
}
