// Package ctrd runs containerd for the init: it writes a minimal config,
// starts the daemon, waits for its socket, and runs the unpacked bundles as
// containerd tasks through the client (no image, no snapshotter: the root
// is already on disk).
package ctrd

import (
	"fmt"
	"strings"
)

// ConfigVersion is containerd's config schema version. containerd 2.4
// reads version 4; version 3 still works there, with a migration warning.
const ConfigVersion = 4

// Paths are where containerd keeps its state.
type Paths struct {
	Root   string // containerd's own store: /run/containerd-store (per boot)
	State  string // runtime state: /run/containerd
	Socket string // gRPC socket: /run/containerd/containerd.sock
}

// DefaultPaths are where a bulkhead host keeps containerd: all of it on
// /run, per boot. Containers are created from bundles unpacked at build
// time, so nothing of containerd's is worth keeping, and containerd need
// not wait for the data partition on /var.
var DefaultPaths = Paths{
	Root:   "/run/containerd-store",
	State:  "/run/containerd",
	Socket: "/run/containerd/containerd.sock",
}

// Disabled are the plugins a bulkhead host never uses: CRI (no Kubernetes
// here), every snapshotter but native, image transfer and verification,
// NRI, tracing, metrics, the restart monitor, pprof, and /opt plugins (the
// root is read-only). Fewer plugins start
// faster and expose less.
var Disabled = []string{
	"io.containerd.cri.v1.images",
	"io.containerd.cri.v1.runtime",
	"io.containerd.differ.v1.erofs",
	"io.containerd.grpc.v1.cri",
	"io.containerd.grpc.v1.streaming",
	"io.containerd.grpc.v1.transfer",
	"io.containerd.http.v1.pprof",
	"io.containerd.image-verifier.v1.bindir",
	"io.containerd.internal.v1.opt",
	"io.containerd.internal.v1.tracing",
	"io.containerd.metrics.v1.grpc-otel",
	"io.containerd.metrics.v1.grpc-prometheus",
	"io.containerd.monitor.container.v1.restart",
	"io.containerd.monitor.task.v1.cgroups",
	"io.containerd.mount-handler.v1.erofs",
	"io.containerd.nri.v1.nri",
	"io.containerd.podsandbox.controller.v1.podsandbox",
	"io.containerd.snapshotter.v1.blockfile",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.erofs",
	"io.containerd.snapshotter.v1.overlayfs",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.streaming.v1.manager",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.transfer.v1.local",
}

// Config returns containerd's config file for p, logging at level
// ("warn" keeps the console quiet).
func Config(p Paths, level string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "version = %d\n", ConfigVersion)
	fmt.Fprintf(&b, "root = %q\nstate = %q\n", p.Root, p.State)
	b.WriteString("disabled_plugins = [\n")
	for _, d := range Disabled {
		fmt.Fprintf(&b, "  %q,\n", d)
	}
	b.WriteString("]\n")
	fmt.Fprintf(&b, "\n[grpc]\n  address = %q\n", p.Socket)
	fmt.Fprintf(&b, "\n[ttrpc]\n  address = %q\n", p.Socket+".ttrpc")
	fmt.Fprintf(&b, "\n[debug]\n  level = %q\n", level)
	return []byte(b.String())
}
