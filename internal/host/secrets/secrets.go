// Package secrets is the init's side of run-time secrets: it fetches each
// secret the host's list names from its source (with a timeout, retrying
// with backoff until it comes), keeps the values only on a tmpfs under
// /run, writes each service's copies (its owner, its mode) into the
// directories that service's mounts show it, refreshes them on the
// timer the spec sets and tells the service. Console lines name secrets
// and sources, never values.
package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/backoff"
	"github.com/bulkhead-dev/bulkhead/internal/host/metadata"
	"github.com/bulkhead-dev/bulkhead/internal/secretspec"
)

// Logf writes one console line.
type Logf func(format string, args ...any)

// Notify tells a service that a secret it reads changed, with the signal
// its spec names.
type Notify func(service string, signal int)

// Store holds the state of every secret on the host.
type Store struct {
	dir       string
	providers map[secretspec.Provider]metadata.Provider
	policy    backoff.Policy
	logf      Logf
	notify    Notify

	mu      sync.Mutex
	secrets map[string]*secret
}

// secret is one secret's state.
type secret struct {
	spec  secretspec.Secret
	src   secretspec.Source
	ready chan struct{} // closed after the first fetch
	value []byte        // nil until fetched
	err   error         // the last fetch's error
	users []consumer
}

// consumer is a service file that holds a copy of the secret.
type consumer struct {
	service string
	file    string
	use     secretspec.Use
}

// Option configures a Store.
type Option func(*Store) error

// WithDir sets the directory (a tmpfs) values are kept in; default
// secretspec.RunDir.
func WithDir(dir string) Option {
	return func(s *Store) error { s.dir = dir; return nil }
}

// WithProvider sets the provider for a kind of source.
func WithProvider(p secretspec.Provider, pr metadata.Provider) Option {
	return func(s *Store) error { s.providers[p] = pr; return nil }
}

// WithBackoff sets the retry delays of failed fetches; default 1s doubling
// to 30s.
func WithBackoff(p backoff.Policy) Option {
	return func(s *Store) error { s.policy = p; return nil }
}

// WithLog sets where console lines go.
func WithLog(l Logf) Option {
	return func(s *Store) error { s.logf = l; return nil }
}

// WithNotify sets how services are told of a changed secret.
func WithNotify(n Notify) Option {
	return func(s *Store) error { s.notify = n; return nil }
}

// New returns a Store for list; Run fetches.
func New(list []secretspec.Secret, opts ...Option) (*Store, error) {
	s := &Store{
		dir: secretspec.RunDir, policy: backoff.Default, logf: func(string, ...any) {},
		notify: func(string, int) {}, secrets: map[string]*secret{},
		providers: map[secretspec.Provider]metadata.Provider{},
	}
	for _, p := range secretspec.Providers() {
		if pr, err := metadata.New(string(p)); err == nil {
			s.providers[p] = pr
		}
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	for _, sp := range list {
		src, err := secretspec.ParseSource(sp.Source)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", sp.Name, err)
		}
		s.secrets[sp.Name] = &secret{spec: sp, src: src, ready: make(chan struct{})}
	}
	return s, nil
}

// Run fetches every secret until it comes, then refreshes those with a
// refresh period, until ctx ends.
func (s *Store) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sec := range s.secrets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.keep(ctx, sec)
		}()
	}
	wg.Wait()
}

// keep fetches one secret with backoff until it comes, then again each
// refresh period.
func (s *Store) keep(ctx context.Context, sec *secret) {
	timeout, refresh := sec.spec.Timing()
	state := s.policy.New()
	for {
		v, err := s.fetch(ctx, sec, timeout)
		if ctx.Err() != nil {
			return
		}
		wait := refresh
		if err != nil {
			wait, _ = state.Exited(0)
			s.logf("secret %s: %s: %v; retrying in %s", sec.spec.Name, sec.src, err, wait)
		} else {
			state = s.policy.New()
			s.store(sec, v)
		}
		if wait == 0 {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func (s *Store) fetch(ctx context.Context, sec *secret, timeout time.Duration) ([]byte, error) {
	p := s.providers[sec.src.Provider]
	if p == nil {
		return nil, fmt.Errorf("no provider %s", sec.src.Provider)
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := p.Fetch(fctx, sec.src.Key)
	if errors.Is(err, metadata.ErrNotFound) {
		err = errors.New("not there (yet)")
	}
	s.mu.Lock()
	sec.err = err
	s.mu.Unlock()
	return v, err
}

// store keeps a fetched value: the first time it makes the secret ready;
// a changed value replaces every service's copy and notifies the service.
func (s *Store) store(sec *secret, v []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := sec.value == nil
	if !first && bytes.Equal(sec.value, v) {
		return
	}
	sec.value = bytes.Clone(v)
	if first {
		s.logf("secret %s: fetched from %s", sec.spec.Name, sec.src)
		close(sec.ready)
		return
	}
	s.logf("secret %s: changed at %s; replacing it for %d service(s)", sec.spec.Name, sec.src, len(sec.users))
	for _, c := range sec.users {
		if err := writeAtomic(c.file, sec.value, c.use); err != nil {
			s.logf("secret %s: service %s: %v", sec.spec.Name, c.service, err)
			continue
		}
		if sig, ok := secretspec.Signal(c.use.Signal); ok {
			s.notify(c.service, sig)
		}
	}
}

// Prepare writes a service's copies of the secrets it reads into the
// directories its mounts show it (see secretspec.HostDir). It fails,
// naming the secret and its source, while one is not fetched yet: the
// service is then retried with backoff.
func (s *Store) Prepare(service string, uses []secretspec.Use) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		sec := s.secrets[u.Name]
		if sec == nil {
			return fmt.Errorf("secret %s is not in the host's list", u.Name)
		}
		if sec.value == nil {
			why := "not fetched yet"
			if sec.err != nil {
				why += ": " + sec.err.Error()
			}
			return fmt.Errorf("waiting for secret %s from %s (%s)", u.Name, sec.src, why)
		}
	}
	dirs := secretspec.Dirs(uses)
	for _, u := range uses {
		i := indexOf(dirs, filepath.Dir(u.Path))
		file := filepath.Join(s.dir, service, fmt.Sprint(i), filepath.Base(u.Path))
		if err := s.writeUse(service, file, u); err != nil {
			return err
		}
	}
	return nil
}

// writeUse writes one copy and records it for refreshes (once).
func (s *Store) writeUse(service, file string, u secretspec.Use) error {
	sec := s.secrets[u.Name]
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("secret %s: %w", u.Name, err)
	}
	if err := writeAtomic(file, sec.value, u); err != nil {
		return fmt.Errorf("secret %s: %w", u.Name, err)
	}
	for _, c := range sec.users {
		if c.file == file {
			return nil
		}
	}
	sec.users = append(sec.users, consumer{service: service, file: file, use: u})
	return nil
}

// Ready is closed once the named secret has been fetched; nil for a name
// not in the list.
func (s *Store) Ready(name string) <-chan struct{} {
	if sec := s.secrets[name]; sec != nil {
		return sec.ready
	}
	return nil
}

func indexOf(list []string, x string) int {
	for i, s := range list {
		if s == x {
			return i
		}
	}
	return -1
}

// writeAtomic writes v to a temporary file beside file with the use's
// owner and mode, syncs it, and renames it over file: a reader sees the
// old value or the new, never a mix.
func writeAtomic(file string, v []byte, u secretspec.Use) error {
	tmp := filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".new")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL, 0o400)
	if errors.Is(err, os.ErrExist) {
		_ = os.Remove(tmp)
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL, 0o400)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	err = errors.Join(writeAll(f, v), chown(f, u), f.Chmod(os.FileMode(u.Mode)), f.Sync())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

func writeAll(f *os.File, v []byte) error {
	_, err := f.Write(v)
	return err
}

// chown gives the file to the use's owner, unless the store runs
// unprivileged and the owner is already its own (tests).
func chown(f *os.File, u secretspec.Use) error {
	if os.Geteuid() != 0 && int(u.UID) == os.Geteuid() {
		return nil
	}
	return f.Chown(int(u.UID), int(u.GID))
}
