package boot

import (
	"context"
	"errors"
	"sync"
	"syscall"

	"github.com/bulkhead-dev/bulkhead/internal/host/secrets"
	"github.com/bulkhead-dev/bulkhead/internal/secretspec"
)

// hostSecrets is the host's run-time secrets: the store that fetches them
// and the services that read them (to signal on a change).
type hostSecrets struct {
	store *secrets.Store
	logf  func(string, ...any)

	mu      sync.Mutex
	readers map[string]*service
}

// startSecrets mounts the secrets tmpfs and starts fetching the host's
// secrets in the background; nil when the host has none.
func (h *host) startSecrets(ctx context.Context) *hostSecrets {
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
	hs := &hostSecrets{logf: h.logf, readers: map[string]*service{}}
	st, err := secrets.New(list, secrets.WithLog(h.logf), secrets.WithNotify(hs.signal))
	if err != nil {
		h.logf("secrets: %v", err)
		return nil
	}
	hs.store = st
	h.logf("secrets: fetching %d on a tmpfs at %s (noswap: %t)", len(list), secretspec.RunDir, noswap)
	go st.Run(ctx)
	return hs
}

var errNoSecrets = errors.New("the service reads secrets but the host fetches none (see the console above)")

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
	h.secrets.mu.Lock()
	h.secrets.readers[s.b.Name] = s
	h.secrets.mu.Unlock()
	return h.secrets.store.Prepare(s.b.Name, uses)
}

// signal sends a running service the signal its spec names for a changed
// secret.
func (hs *hostSecrets) signal(name string, sig int) {
	hs.mu.Lock()
	s := hs.readers[name]
	hs.mu.Unlock()
	if s == nil {
		return
	}
	p, _ := s.sup.Current()
	if p == nil {
		return
	}
	if err := p.Signal(context.Background(), syscall.Signal(sig)); err != nil {
		hs.logf("service %s: signalling a changed secret: %v", name, err)
		return
	}
	hs.logf("service %s: sent %s for a changed secret", name, syscall.Signal(sig))
}
