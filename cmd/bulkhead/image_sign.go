package main

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// signKeyUsage documents image build's --sign-key.
const signKeyUsage = "sign each image built (or found in the cache) with this private key: a PEM file, or env://NAME. " +
	"The signature is a Sigstore bundle attached to the image in the store as a referrer, as cosign attaches it; " +
	"the image's digest does not change, and signing again with the same key adds nothing"

// signStoredRecipe signs the image just stored under ref (a recipe's
// bulkhead/<name>:<tag>) at digest, so a build whose trust policy requires
// key's signature accepts it from the store. Signing is deterministic
// (RFC 6979 ECDSA, or Ed25519): signing the same image with the same key
// again stores the same referrer, byte for byte, in place of itself.
func signStoredRecipe(ctx context.Context, key *sign.PrivateKey, store *resolve.Store, ref string, digest v1.Hash) error {
	repo, err := storeRepository(ref)
	if err != nil {
		return err
	}
	if err := sign.SignImageInStore(ctx, key, store, repo, digest); err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	return nil
}

// storeRepository is ref's repository expanded Docker-style, spelling the
// default registry docker.io as the store does.
func storeRepository(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("signing %s: %w", ref, err)
	}
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + r.Context().RepositoryStr(), nil
}
