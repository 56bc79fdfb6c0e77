// Package ctrdmain links containerd and its runc shim into the bulkhead
// init, so one binary serves as PID 1, /usr/bin/containerd and
// /usr/bin/containerd-shim-runc-v2. The three share most of their code
// (gRPC, ttrpc, protobuf, the containerd core), so one binary is far
// smaller than three. Only the plugins a bulkhead host uses are linked:
// content and metadata stores, the native snapshotter, the runc shim
// runtime, and the services the init's client calls.
package ctrdmain

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/cmd/containerd/command"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	// containerd's plugins, a subset of cmd/containerd/builtins.
	_ "github.com/containerd/containerd/api/types/runc/options"
	_ "github.com/containerd/containerd/v2/core/runtime/v2"
	_ "github.com/containerd/containerd/v2/plugins/content/local/plugin"
	_ "github.com/containerd/containerd/v2/plugins/events"
	_ "github.com/containerd/containerd/v2/plugins/gc"
	_ "github.com/containerd/containerd/v2/plugins/leases"
	_ "github.com/containerd/containerd/v2/plugins/metadata"
	_ "github.com/containerd/containerd/v2/plugins/mount"
	_ "github.com/containerd/containerd/v2/plugins/server/grpc"
	_ "github.com/containerd/containerd/v2/plugins/server/ttrpc"
	_ "github.com/containerd/containerd/v2/plugins/services/containers"
	_ "github.com/containerd/containerd/v2/plugins/services/content"
	_ "github.com/containerd/containerd/v2/plugins/services/events"
	_ "github.com/containerd/containerd/v2/plugins/services/introspection"
	_ "github.com/containerd/containerd/v2/plugins/services/leases"
	_ "github.com/containerd/containerd/v2/plugins/services/namespaces"
	_ "github.com/containerd/containerd/v2/plugins/services/snapshots"
	_ "github.com/containerd/containerd/v2/plugins/services/tasks"
	_ "github.com/containerd/containerd/v2/plugins/services/version"
	_ "github.com/containerd/containerd/v2/plugins/services/warning"
	_ "github.com/containerd/containerd/v2/plugins/snapshots/native/plugin"

	// the runc shim's task service.
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task/plugin"
)

// Containerd runs the containerd daemon with os.Args and returns its exit
// code.
func Containerd() int {
	if err := command.App().Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "containerd:", err)
		return 1
	}
	return 0
}

// Shim runs containerd-shim-runc-v2; it does not return.
func Shim() {
	shimPluginsOnly()
	shim.RunShim(context.Background(), manager.NewShimManager("io.containerd.runc.v2"))
}

// shimPluginsOnly drops the daemon's plugin registrations, keeping the
// shim's task service: the shim initialises every registered plugin, and
// the daemon's (the content store, the metadata database) fail without
// the daemon's configuration. The shim registers its own event publisher
// and shutdown service when it starts.
func shimPluginsOnly() {
	all := registry.Graph(func(*plugin.Registration) bool { return false })
	registry.Reset()
	for _, r := range all {
		if r.Type == plugins.TTRPCPlugin && r.ID == "task" {
			registry.Register(&r)
		}
	}
}
