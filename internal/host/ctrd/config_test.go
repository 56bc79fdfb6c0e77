package ctrd

import (
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	got := string(Config(DefaultPaths, "warn"))
	for _, want := range []string{
		"version = 4\n",
		`root = "/run/containerd-store"`,
		`state = "/run/containerd"`,
		"[grpc]\n  address = \"/run/containerd/containerd.sock\"\n",
		"[ttrpc]\n  address = \"/run/containerd/containerd.sock.ttrpc\"\n",
		"[debug]\n  level = \"warn\"\n",
		`  "io.containerd.grpc.v1.cri",`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	for _, keep := range []string{"native", "tasks", "containers", "leases", "bolt", "runtime.v2"} {
		for _, d := range Disabled {
			if strings.Contains(d, keep) {
				t.Errorf("plugin %s is needed to run bundles but disabled", d)
			}
		}
	}
}
