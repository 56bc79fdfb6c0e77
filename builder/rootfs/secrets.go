package rootfs

import (
	"fmt"
	"path"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/ocispec"
	"github.com/bulkhead-dev/bulkhead/internal/metaspec"
	"github.com/bulkhead-dev/bulkhead/internal/secretspec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// secretsList bakes the host's list of secrets (names and sources, never
// values) at secretspec.ListPath, after the files section so that nothing
// replaces it. The init fetches them at boot.
func (a *assembler) secretsList() error {
	if len(a.spec.Secrets) == 0 {
		return nil
	}
	list := make([]secretspec.Secret, len(a.spec.Secrets))
	for i, s := range a.spec.Secrets {
		list[i] = secretspec.Secret{Name: s.Name, Source: s.Source, Refresh: s.Refresh, Timeout: s.Timeout}
	}
	b, err := secretspec.Marshal(list)
	if err != nil {
		return err
	}
	a.putBaked(strings.TrimPrefix(secretspec.ListPath, "/"), b)
	return nil
}

// serviceSecrets writes the service's secrets.json beside its config.json
// and adds to its OCI spec one read-only bind mount per directory its
// secrets appear in, from the host's tmpfs (secretspec.HostDir). The
// mount points are made in the container's root, which may be read-only.
func (a *assembler) serviceSecrets(prefix, root string, c *config.Image, res *ocispec.Result, ft *Tree) error {
	if len(c.Secrets) == 0 {
		return nil
	}
	uses := make([]secretspec.Use, len(c.Secrets))
	for i, s := range c.Secrets {
		u, err := a.secretUse(s, res.Spec.Process.User, ft)
		if err != nil {
			return config.Errorf(s.Pos, "secret %q: %w", s.Name, err)
		}
		uses[i] = u
	}
	for i, dir := range secretspec.Dirs(uses) {
		res.Spec.Mounts = append(res.Spec.Mounts, specs.Mount{
			Destination: dir, Type: "bind", Source: secretspec.HostDir(c.Name, i),
			Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"},
		})
		a.mkdir(path.Join(root, strings.TrimPrefix(dir, "/")))
	}
	b, err := secretspec.Marshal(uses)
	if err != nil {
		return err
	}
	a.putData(path.Join(prefix, secretspec.FileName), b, 0o644, OriginBulkhead)
	return nil
}

// secretUse resolves one entry: its path, mode and owner (by default the
// service's own user).
func (a *assembler) secretUse(s config.SecretUse, user specs.User, ft *Tree) (secretspec.Use, error) {
	mode, err := config.SecretMode(s)
	if err != nil {
		return secretspec.Use{}, err
	}
	u := secretspec.Use{Name: s.Name, Path: config.SecretPath(s), UID: user.UID, GID: user.GID, Mode: mode, Signal: s.Signal}
	if s.UID != nil {
		uid, gid, err := a.secretUser(*s.UID, ft)
		if err != nil {
			return secretspec.Use{}, err
		}
		u.UID, u.GID = uid, gid
	}
	if s.GID != nil {
		gid, err := a.secretGroup(*s.GID, ft)
		if err != nil {
			return secretspec.Use{}, err
		}
		u.GID = gid
	}
	return u, nil
}

func (a *assembler) secretUser(id config.ID, ft *Tree) (uid, gid uint32, err error) {
	if id.Num != nil {
		return *id.Num, *id.Num, nil
	}
	if n, ok := a.ids[id.Name]; ok {
		return n, n, nil
	}
	if uid, gid, ok := userLookup(ft)(id.Name); ok {
		return uid, gid, nil
	}
	return 0, 0, fmt.Errorf("uid: unknown user %q", id.Name)
}

func (a *assembler) secretGroup(id config.ID, ft *Tree) (uint32, error) {
	if id.Num != nil {
		return *id.Num, nil
	}
	if n, ok := a.ids[id.Name]; ok {
		return n, nil
	}
	if gid, ok := groupLookup(ft)(id.Name); ok {
		return gid, nil
	}
	return 0, fmt.Errorf("gid: unknown group %q", id.Name)
}

// metadataSettings bakes the metadata section at metaspec.Path for the
// init.
func (a *assembler) metadataSettings() error {
	if a.spec.Metadata == nil {
		return nil
	}
	b, err := metaspec.Marshal(a.spec.Metadata.MetadataConfig())
	if err != nil {
		return err
	}
	a.putBaked(strings.TrimPrefix(metaspec.Path, "/"), b)
	return nil
}
