package rootfs

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/secretspec"
)

// TestSecrets: the host's list holds names and sources only; the service
// that reads secrets gets its secrets.json (owner its own uid unless set)
// and one read-only bind mount per directory, with the mount points made
// in its root (here shared with the onboot job); the other service gets neither.
func TestSecrets(t *testing.T) {
	yaml := strings.Replace(testSpec, "    uid: www\n    gid: wwwgrp\n",
		"    uid: www\n    gid: wwwgrp\n    secrets:\n      - db\n      - {name: tok, path: /etc/web/tok, uid: 7, mode: \"0440\", signal: SIGHUP}\n", 1)
	yaml += "secrets:\n  - {name: db, source: \"fw_cfg:opt/x/db\"}\n  - {name: tok, source: \"ec2:user-data\", refresh: 1m}\n"
	h, err := Assemble(context.Background(), loadSpec(t, yaml), testImages(t))
	if err != nil {
		t.Fatal(err)
	}
	list := h.Tree.Get(strings.TrimPrefix(secretspec.ListPath, "/"))
	if list == nil || string(list.Content.Data) != `[
  {
    "name": "db",
    "source": "fw_cfg:opt/x/db"
  },
  {
    "name": "tok",
    "source": "ec2:user-data",
    "refresh": "1m"
  }
]
` {
		t.Fatalf("list %+v", list)
	}
	e := h.Tree.Get("containers/services/web/" + secretspec.FileName)
	if e == nil {
		t.Fatal("web secrets.json missing")
	}
	var uses []secretspec.Use
	if err := json.Unmarshal(e.Content.Data, &uses); err != nil {
		t.Fatal(err)
	}
	web := readSpec(t, h.Tree.Get("containers/services/web/config.json"))
	u := web.Process.User
	if len(uses) != 2 || uses[0] != (secretspec.Use{Name: "db", Path: "/run/secrets/db", UID: u.UID, GID: u.GID, Mode: 0o400}) ||
		uses[1] != (secretspec.Use{Name: "tok", Path: "/etc/web/tok", UID: 7, GID: 7, Mode: 0o440, Signal: "SIGHUP"}) {
		t.Fatalf("uses %+v (user %+v)", uses, u)
	}
	var dests []string
	for _, m := range web.Mounts {
		if m.Type == "bind" && strings.HasPrefix(m.Source, secretspec.RunDir) {
			dests = append(dests, m.Destination+"<-"+m.Source+" "+strings.Join(m.Options, ","))
		}
	}
	want := "/run/secrets<-/run/bulkhead/secrets/web/0 rbind,ro,nosuid,nodev,noexec|/etc/web<-/run/bulkhead/secrets/web/1 rbind,ro,nosuid,nodev,noexec"
	if strings.Join(dests, "|") != want {
		t.Fatalf("mounts %s", strings.Join(dests, "|"))
	}
	for _, p := range []string{"containers/onboot/000-setup/lower/run/secrets", "containers/onboot/000-setup/lower/etc/web"} {
		if e := h.Tree.Get(p); e == nil || e.Kind != KindDir {
			t.Errorf("mount point %s missing", p)
		}
	}
	if h.Tree.Get("containers/services/ro/"+secretspec.FileName) != nil {
		t.Error("ro got a secrets.json")
	}
	for _, m := range readSpec(t, h.Tree.Get("containers/services/ro/config.json")).Mounts {
		if strings.HasPrefix(m.Source, secretspec.RunDir) {
			t.Errorf("ro mounts %s", m.Source)
		}
	}
}
