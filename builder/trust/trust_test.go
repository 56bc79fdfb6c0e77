package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// env is a registry, a store, two keys on disk and a spec whose trust
// policy requires the "release" key on everything from the registry.
type env struct {
	t        *testing.T
	host     string
	dir      string
	store    *resolve.Store
	release  *sign.PrivateKey
	other    *sign.PrivateKey
	spec     *config.Spec
	policy   *Policy
	resolver *resolve.Resolver
}

func newEnv(t *testing.T, referrersAPI bool, extraTrust string) *env {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithReferrersSupport(referrersAPI)))
	t.Cleanup(srv.Close)
	e := &env{t: t, host: strings.TrimPrefix(srv.URL, "http://"), dir: t.TempDir()}
	e.release = writeKey(t, e.dir, "release")
	e.other = writeKey(t, e.dir, "other")
	store, err := resolve.OpenStore(filepath.Join(e.dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	e.resolver, err = resolve.NewResolver(resolve.WithStore(store), resolve.WithDir(e.dir))
	if err != nil {
		t.Fatal(err)
	}
	e.spec = e.parse(fmt.Sprintf(`init:
  - %[1]s/app:v1
  - %[1]s/app:v2
  - local/app:v1
trust:
  org: [linuxkit]
  keys:
    - name: release
      path: release.pub
    - name: other
      path: other.pub
  require:
    - prefix: %[1]s/
      keys: [release]
    - image: local/app
      keys: [release]
%[2]s`, e.host, extraTrust))
	if e.policy, err = NewPolicy(e.spec.Trust); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) parse(yml string) *config.Spec {
	e.t.Helper()
	path := filepath.Join(e.dir, "host.yml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	s, err := config.Load(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func writeKey(t *testing.T, dir, name string) *sign.PrivateKey {
	t.Helper()
	priv, pub, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := sign.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// push pushes a fresh image under repo:tag and returns its digest reference.
func (e *env) push(tag string) name.Digest {
	e.t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	ref, err := name.ParseReference(e.host + "/" + tag)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		e.t.Fatal(err)
	}
	h, err := img.Digest()
	if err != nil {
		e.t.Fatal(err)
	}
	return ref.Context().Digest(h.String())
}

func (e *env) check(i int, opts ...CheckOption) (KeyID, error) {
	e.t.Helper()
	ref := e.spec.Init[i]
	img, err := e.resolver.Resolve(context.Background(), ref.Ref)
	if err != nil {
		e.t.Fatal(err)
	}
	return Check(context.Background(), e.policy, ref, img, e.sources(), opts...)
}

func (e *env) sources() []Source {
	return []Source{StoreSource{Store: e.store}, RegistrySource{}}
}

func TestSignedImagePasses(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrersAPI=%v", api), func(t *testing.T) {
			e := newEnv(t, api, "")
			d := e.push("app:v1")
			if err := sign.SignImageRemote(context.Background(), e.release, d); err != nil {
				t.Fatal(err)
			}
			id, err := e.check(0)
			if err != nil {
				t.Fatal(err)
			}
			if id != e.release.Public().ID() {
				t.Errorf("verified by %s, want %s", id, e.release.Public().ID())
			}
			// Checked once online, the signature is in the store for an
			// offline check.
			ref := e.spec.Init[0]
			img, err := e.resolver.Resolve(context.Background(), ref.Ref)
			if err != nil {
				t.Fatal(err)
			}
			offline := DefaultSources(e.store, true)
			if _, err := Check(context.Background(), e.policy, ref, img, offline); !errors.Is(err, ErrNoSignature) {
				t.Fatalf("offline before caching: %v", err)
			}
			if _, err := Check(context.Background(), e.policy, ref, img, DefaultSources(e.store, false)); err != nil {
				t.Fatal(err)
			}
			if _, err := Check(context.Background(), e.policy, ref, img, offline); err != nil {
				t.Fatalf("offline after caching: %v", err)
			}
		})
	}
}

func TestLegacySigTagPasses(t *testing.T) {
	e := newEnv(t, false, "")
	d := e.push("app:v1")
	if err := sign.SignImageLegacy(context.Background(), e.release, d); err != nil {
		t.Fatal(err)
	}
	if _, err := e.check(0); err != nil {
		t.Fatal(err)
	}
}

func TestBadSignaturesFail(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		attach func(e *env, d name.Digest)
		want   error
		msg    string
	}{
		{"unsigned", func(*env, name.Digest) {}, ErrNoSignature, "signature: no signature (looked at the store's referrers, referrers, tag sha256-"},
		{"other key", func(e *env, d name.Digest) {
			if err := sign.SignImageRemote(ctx, e.other, d); err != nil {
				t.Fatal(err)
			}
		}, ErrOtherKey, "signature: signed by another key (referrer sha256:"},
		{"other key, .sig tag", func(e *env, d name.Digest) {
			if err := sign.SignImageLegacy(ctx, e.other, d); err != nil {
				t.Fatal(err)
			}
		}, ErrOtherKey, "signature: signed by another key (tag sha256-"},
		{"other digest", func(e *env, d name.Digest) {
			// A valid signature of another image, attached to this one.
			o := e.push("app:other")
			h, _ := v1.NewHash(o.DigestStr())
			b, err := sign.SignImage(ctx, e.release, o.Context().Name(), h)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Head(d)
			if err != nil {
				t.Fatal(err)
			}
			r, err := sign.BundleReferrer(*desc, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Push(ctx, d.Context()); err != nil {
				t.Fatal(err)
			}
		}, ErrOtherDigest, "signature: signature covers another digest: sha256:"},
		{"other digest, .sig tag", func(e *env, d name.Digest) {
			o := e.push("app:other")
			h, _ := v1.NewHash(o.DigestStr())
			payload := sign.SimpleSigningPayload(o.Context().Name(), h)
			sig, _, err := e.release.SignData(ctx, payload)
			if err != nil {
				t.Fatal(err)
			}
			if err := sign.PushLegacySignature(ctx, d, payload, sig); err != nil {
				t.Fatal(err)
			}
		}, ErrOtherDigest, "signature: signature covers another digest: sha256:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, true, "")
			d := e.push("app:v1")
			c.attach(e, d)
			_, err := e.check(0)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			pos := e.spec.Init[0].Pos
			prefix := fmt.Sprintf("%s:%d:%d: image %q: ", filepath.Join(e.dir, "host.yml"), pos.Line, pos.Col, e.spec.Init[0].Ref)
			if !strings.HasPrefix(err.Error(), prefix+c.msg) {
				t.Errorf("message\n  %s\nwant prefix\n  %s", err, prefix+c.msg)
			}
		})
	}
}

func TestTagMovedAfterLocking(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, "")
	d := e.push("app:v1")
	if err := sign.SignImageRemote(ctx, e.release, d); err != nil {
		t.Fatal(err)
	}
	ref := e.spec.Init[0]
	img, err := e.resolver.Resolve(ctx, ref.Ref)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Check(ctx, e.policy, ref, img, e.sources())
	if err != nil {
		t.Fatal(err)
	}
	lock := &resolve.Lock{Version: resolve.LockVersion}
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	lock.Pin(img, p)
	entry, _ := lock.Find(ref.Ref, p)
	entry.Key = id
	lock.Set(entry)

	// The tag moves to another image, signed by the same key.
	d2 := e.push("app:v1")
	if err := sign.SignImageRemote(ctx, e.release, d2); err != nil {
		t.Fatal(err)
	}
	moved, err := e.resolver.Resolve(ctx, ref.Ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Check(ctx, e.policy, ref, moved, e.sources(), WithPin(entry))
	if !errors.Is(err, ErrMoved) {
		t.Fatalf("got %v, want %v", err, ErrMoved)
	}
	if !strings.Contains(err.Error(), "the tag moved after locking: it resolves to "+d2.DigestStr()) {
		t.Errorf("message %q", err)
	}

	// Resolved through the lock, the pinned image still passes, by the
	// recorded key.
	locked, err := resolve.NewResolver(resolve.WithStore(e.store), resolve.WithLock(lock), resolve.WithLocked(true))
	if err != nil {
		t.Fatal(err)
	}
	img, err = locked.Resolve(ctx, ref.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, e.policy, ref, img, e.sources(), WithPin(entry)); err != nil {
		t.Fatal(err)
	}

	// A lock that records another key refuses the release signature.
	entry.Key = e.other.Public().ID()
	if _, err := Check(ctx, e.policy, ref, img, e.sources(), WithPin(entry)); err == nil {
		t.Fatal("a signature by a key other than the locked one passed")
	}
}

func TestStoreReferrer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, "")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.store.WriteImage("local/app:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	store := []Source{StoreSource{Store: e.store}}
	ref := e.spec.Init[2]
	resolved, err := e.resolver.Resolve(ctx, ref.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, e.policy, ref, resolved, store); !errors.Is(err, ErrNoSignature) {
		t.Fatalf("unsigned store image: got %v", err)
	}
	if err := sign.SignImageInStore(ctx, e.other, e.store, "docker.io/local/app", h); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, e.policy, ref, resolved, store); !errors.Is(err, ErrOtherKey) {
		t.Fatalf("store image signed by another key: got %v", err)
	}
	if err := sign.SignStoredImage(ctx, e.release, e.store, "local/app:v1"); err != nil {
		t.Fatal(err)
	}
	id, err := Check(ctx, e.policy, ref, resolved, store)
	if err != nil || id != e.release.Public().ID() {
		t.Fatalf("signed store image: %q, %v", id, err)
	}
}

func TestAllowAndPinned(t *testing.T) {
	e := newEnv(t, true, "  allow: [\"docker.io/local/\"]\n  pinned: true\n")
	e.push("app:v1")
	if _, err := e.check(0); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("registry image outside allow: got %v", err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.WriteImage("local/app:v1", img); err != nil {
		t.Fatal(err)
	}
	if _, err := e.check(2); !errors.Is(err, ErrNotPinned) {
		t.Fatalf("unpinned image: got %v", err)
	}
	if !e.policy.Pinned || e.policy.PinnedPos.Line == 0 {
		t.Errorf("pinned: %v at %v", e.policy.Pinned, e.policy.PinnedPos)
	}
}

func TestPolicyErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "host.yml")
	bad := "trust:\n  require:\n    - image: x\n      prefix: y\n      keys: [k]\n  keys:\n    - name: k\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if err == nil || !strings.Contains(err.Error(), "host.yml:3:7: trust rule: needs exactly one of image and prefix") ||
		!strings.Contains(err.Error(), "host.yml:7:7: trust key: needs a name and a path") {
		t.Fatalf("got %v", err)
	}
	good := "trust:\n  require:\n    - image: x\n      keys: [nope]\n"
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPolicy(s.Trust); err == nil || !strings.Contains(err.Error(), `host.yml:3:7: trust rule: no key named "nope"`) {
		t.Fatalf("got %v", err)
	}
}
