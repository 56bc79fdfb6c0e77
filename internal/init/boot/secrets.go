package boot

import (
	"context"
	"errors"
	"syscall"

	"github.com/bulkhead-dev/bulkhead/internal/init/secrets"
	"github.com/bulkhead-dev/bulkhead/internal/secretspec"
)

// startSecrets mounts the secrets tmpfs and starts fetching the host's
// secrets in the background; nil when the host has none.
func (h *host) startSecrets(ctx context.Context) *secrets.Store {
	list, err := secretspec.ReadList("/")
	if err != nil {
		h.logf("secrets: %v", err)
		return nil
	}
	if len(list) == 0 {
		return nil
	}
	noswap, err := secrets.MountTmpfs(secretspec.RunDir)
	if err != nil {
		h.logf("secrets: %v (no service that reads a secret will start)", err)
		return nil
	}
	st, err := secrets.New(list, secrets.WithLog(h.logf), secrets.WithNotify(h.signalService))
	if err != nil {
		h.logf("secrets: %v", err)
		return nil
	}
	h.logf("secrets: fetching %d on a tmpfs at %s (noswap: %t)", len(list), secretspec.RunDir, noswap)
	go st.Run(ctx)
	return st
}

// prepareSecrets writes the copies of the secrets a service reads; an
// error (a secret not fetched yet) keeps the service from starting, and
// its supervisor retries with backoff.
func (h *host) prepareSecrets(s *service) error {
	uses, err := secretspec.ReadUses(s.b.Dir)
	if err != nil || len(uses) == 0 {
		return err
	}
	if h.secrets == nil {
		return errNoSecrets
	}
	return h.secrets.Prepare(s.b.Name, uses)
}

var errNoSecrets = errors.New("the service reads secrets but the host fetches none (see the console above)")

// signalService sends a running service the signal its spec names for a
// changed secret.
func (h *host) signalService(name string, sig int) {
	for _, s := range h.services {
		if s.b.Name != name {
			continue
		}
		p, _ := s.sup.Current()
		if p == nil {
			return
		}
		if err := p.Signal(context.Background(), syscall.Signal(sig)); err != nil {
			h.logf("service %s: signalling a changed secret: %v", name, err)
			return
		}
		h.logf("service %s: sent %s for a changed secret", name, syscall.Signal(sig))
	}
}
