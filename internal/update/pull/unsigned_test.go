package pull_test

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushUnsigned copies the artifact at from to to without its signature.
func (f *fixture) pushUnsigned(t testing.TB, from, to string) {
	t.Helper()
	src, err := name.ParseReference(from)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.ParseReference(to)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	// The same manifest would have the same digest, and its signature
	// would be found: an annotation makes it another artifact.
	img = mutate.Annotations(img, map[string]string{"test": "unsigned"}).(v1.Image)
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	f.reg.reset()
}
