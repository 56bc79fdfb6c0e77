package ocispec

import (
	"fmt"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// firstContainerID is the uid/gid of the first container (LinuxKit's).
const firstContainerID = 100

// AssignIDs gives each container of the spec a uid/gid that uid, gid and
// additionalGids can refer to by the container's name: 100 upwards, in the
// order onboot, onshutdown, services. A name used twice keeps its last id.
func AssignIDs(spec *config.Spec) map[string]uint32 {
	ids := map[string]uint32{}
	next := uint32(firstContainerID)
	for _, section := range [][]*config.Image{spec.Onboot, spec.Onshutdown, spec.Services} {
		for _, img := range section {
			ids[img.Name] = next
			next++
		}
	}
	return ids
}

// resolveUser works out the process's uid, gid and additional gids. An id
// is a number; "root" (0); a container's name (its id from AssignIDs); or
// a user or group of the image. With a user named from the image's
// /etc/passwd and no gid, the gid is that user's primary group.
func resolveUser(s settings, in Input) (specs.User, error) {
	uid, primary, fromPasswd, err := resolveUID(pickPtr(s.label.UID, s.spec.UID), in)
	if err != nil {
		return specs.User{}, err
	}
	gidID := pickPtr(s.label.GID, s.spec.GID)
	gid := primary
	if gidID != nil || !fromPasswd {
		if gid, err = resolveGID(gidID, in); err != nil {
			return specs.User{}, fmt.Errorf("gid: %w", err)
		}
	}
	var extra []uint32
	for _, id := range pick(s.label.AdditionalGids, s.spec.AdditionalGids) {
		g, err := resolveGID(&id, in)
		if err != nil {
			return specs.User{}, fmt.Errorf("additionalGids: %w", err)
		}
		extra = append(extra, g)
	}
	return specs.User{UID: uid, GID: gid, AdditionalGids: extra}, nil
}

// resolveUID resolves a uid; fromPasswd says it came from the image's
// /etc/passwd, whose primary gid is returned with it.
func resolveUID(id *config.ID, in Input) (uid, gid uint32, fromPasswd bool, err error) {
	if n, ok := common(id, in.IDs); ok {
		return n, 0, false, nil
	}
	if in.LookupUser != nil {
		if uid, gid, ok := in.LookupUser(id.Name); ok {
			return uid, gid, true, nil
		}
	}
	return 0, 0, false, fmt.Errorf("uid: unknown user or container %q", id.Name)
}

// resolveGID resolves a gid.
func resolveGID(id *config.ID, in Input) (uint32, error) {
	if n, ok := common(id, in.IDs); ok {
		return n, nil
	}
	if in.LookupGroup != nil {
		if gid, ok := in.LookupGroup(id.Name); ok {
			return gid, nil
		}
	}
	return 0, fmt.Errorf("unknown group or container %q", id.Name)
}

// common resolves what uids and gids share: unset, a number, "root", or a
// container's name.
func common(id *config.ID, containers map[string]uint32) (uint32, bool) {
	switch {
	case id == nil:
		return 0, true
	case id.Num != nil:
		return *id.Num, true
	case id.Name == "" || id.Name == "root":
		return 0, true
	}
	n, ok := containers[id.Name]
	return n, ok
}
