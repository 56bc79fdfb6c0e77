package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ipcSysctls are the sysctls the IPC namespace holds (with fs.mqueue.*).
var ipcSysctls = []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}

// sysctlProblem says why runc would refuse to start a container setting
// key in the namespaces c names, or "" when it would not: runc sets only
// namespaced sysctls, and only in a namespace of the container's own
// (LinuxKit's default, and so ours, is the host's net, ipc and uts).
func sysctlProblem(key string, c *ImageConfig) string {
	own := func(ns string) bool { return ns != "" && ns != "host" }
	switch {
	case slices.Contains(ipcSysctls, key) || strings.HasPrefix(key, "fs.mqueue."):
		if !own(c.Ipc) {
			return "is not allowed in the host's IPC namespace (runc refuses it at boot): set ipc: new"
		}
	case strings.HasPrefix(key, "net."):
		if !own(c.Net) {
			return "is not allowed in the host network namespace (runc refuses it at boot): set net: new"
		}
	case key == "kernel.domainname" && own(c.Uts):
	case key == "kernel.hostname":
		return "conflicts with the hostname field: use hostname"
	default:
		return "is not in a namespace of the container's own, so runc refuses it at boot"
	}
	return ""
}

// checkSysctl reports each sysctl of a spec entry that runc would refuse
// in the namespaces the entry names.
func (d *decoder) checkSysctl(c *ImageConfig, m map[string]*yaml.Node) {
	if c.Sysctl == nil {
		return
	}
	keys := make([]string, 0, len(*c.Sysctl))
	for k := range *c.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	at := fieldNodes(d, resolve(m["sysctl"]))
	for _, k := range keys {
		if why := sysctlProblem(k, c); why != "" {
			n := at[k]
			if n == nil {
				n = m["sysctl"]
			}
			d.errorf(n, "%s", fmt.Sprintf("sysctl %s %s", quote(k), why))
		}
	}
}
