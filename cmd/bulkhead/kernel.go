package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/build"
	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/kernelcheck"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
)

func kernelCommand() command {
	return groupCommand("kernel", "check a kernel against the hardening and container-host policy (kernel check)", []subcommand{
		{"check", "score a kernel config, kernel image or a spec's kernel against bulkhead's rules", runKernelCheck},
	})
}

// defaultKernelPolicy applies when neither the spec nor the flags give one.
var defaultKernelPolicy = build.DefaultKernelPolicy()

type kernelCheckFlags struct {
	asJSON   bool
	minScore int
	require  string
	cmdline  string
	store    string
	arch     string
	offline  bool
	set      map[string]bool // flags given on the command line
}

// kernelCheckOutput is the --json document.
type kernelCheckOutput struct {
	Input   string              `json:"input"`
	Source  kernelcheck.Source  `json:"source"`
	Policy  config.KernelPolicy `json:"policy"`
	Verdict kernelcheck.Verdict `json:"verdict"`
	Report  *kernelcheck.Report `json:"report"`
}

func runKernelCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("kernel check", "[flags] CONFIG|KERNEL-IMAGE|SPEC.yml", stderr)
	var f kernelCheckFlags
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fs.IntVar(&f.minScore, "min-score", 0, "lowest passing score in percent (default: the spec's policy.kernel, else 80)")
	fs.StringVar(&f.require, "require", "", "rules or categories that must pass, comma separated (default: the spec's, else container)")
	fs.StringVar(&f.cmdline, "cmdline", "", "kernel command line to check (default: the spec's; unchecked for a bare config)")
	fs.StringVar(&f.store, "store", "", "image store directory (default $BULKHEAD_STORE, else $XDG_CACHE_HOME/bulkhead/store)")
	fs.StringVar(&f.arch, "arch", "amd64", "architecture of the kernel image (os linux)")
	fs.BoolVar(&f.offline, "offline", false, "never contact a registry; use the local store only")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: want one CONFIG, KERNEL-IMAGE or SPEC.yml", errUsage)
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if f.set["min-score"] && (f.minScore < 0 || f.minScore > 100) {
		return fmt.Errorf("%w: --min-score must be between 0 and 100", errUsage)
	}
	target := fs.Arg(0)
	in, err := kernelInput(ctx, target, f)
	if err != nil {
		return err
	}
	rules, err := kernelcheck.DefaultRules()
	if err != nil {
		return err
	}
	rep := kernelcheck.Check(rules, in.input)
	policy := f.policy(in.policy)
	out := kernelCheckOutput{Input: target, Source: in.source, Policy: policy, Verdict: rep.Evaluate(&policy), Report: rep}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else if err := rep.WriteText(stdout, out.Verdict); err != nil {
		return err
	}
	if !out.Verdict.Pass {
		return exitError{1}
	}
	return nil
}

// policy is the spec's policy (or the default) with the flags applied.
func (f kernelCheckFlags) policy(spec *config.KernelPolicy) config.KernelPolicy {
	p := defaultKernelPolicy
	if spec != nil {
		p = *spec
	}
	if f.set["min-score"] {
		p.MinScore = f.minScore
	}
	if f.set["require"] {
		p.Require = nil
		for _, r := range strings.Split(f.require, ",") {
			if r = strings.TrimSpace(r); r != "" {
				p.Require = append(p.Require, r)
			}
		}
	}
	return p
}

// kernelTarget is what the check reads: the input and the spec's policy.
type kernelTarget struct {
	input  kernelcheck.Input
	source kernelcheck.Source
	policy *config.KernelPolicy
}

// kernelInput reads a spec (its kernel image, command line, policy and the
// init's sysctls), a file (.config, config.gz, bzImage, vmlinux), or an
// image reference from the store.
func kernelInput(ctx context.Context, target string, f kernelCheckFlags) (*kernelTarget, error) {
	var t kernelTarget
	var cfg []byte
	var err error
	_, statErr := os.Stat(target)
	isSpec := statErr == nil && (strings.HasSuffix(target, ".yml") || strings.HasSuffix(target, ".yaml"))
	switch {
	case isSpec:
		spec, lerr := config.Load(target)
		if lerr != nil {
			return nil, lerr
		}
		if spec.Kernel.Image == "" {
			return nil, fmt.Errorf("%s: the spec names no kernel image", target)
		}
		cfg, t.source, err = storeKernelConfig(ctx, spec.Kernel.Image, spec.Kernel.Binary, target, f)
		cmdline := spec.Kernel.Cmdline
		t.input.Cmdline = &cmdline
		t.input.Sysctls = sysctl.Hardening
		if spec.Policy != nil {
			t.policy = spec.Policy.Kernel
		}
	case statErr == nil:
		var data []byte
		if data, err = os.ReadFile(target); err == nil {
			cfg, t.source, err = kernelcheck.ReadConfig(data)
		}
	case (errors.Is(statErr, fs.ErrNotExist) || errors.Is(statErr, syscall.ENOTDIR)) && looksLikeRef(target):
		cfg, t.source, err = storeKernelConfig(ctx, target, "", "", f)
	default:
		return nil, statErr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	if t.input.Config, err = kernelcheck.ParseKconfig(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	if f.set["cmdline"] {
		t.input.Cmdline = &f.cmdline
	}
	return &t, nil
}

// looksLikeRef tells an image reference (bulkhead/kernel:6.1) from a
// missing file (hardened.config, ./x, /boot/config).
func looksLikeRef(s string) bool {
	return strings.ContainsAny(s, ":@/") && !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, ".")
}

// storeKernelConfig resolves a kernel image reference (pinned by the lock
// file next to specPath, if any) and reads its config.
func storeKernelConfig(ctx context.Context, ref, binary, specPath string, f kernelCheckFlags) ([]byte, kernelcheck.Source, error) {
	platform, err := v1.ParsePlatform("linux/" + f.arch)
	if err != nil {
		return nil, "", fmt.Errorf("%w: --arch %q: %v", errUsage, f.arch, err)
	}
	storeDir := f.store
	if storeDir == "" {
		if storeDir, err = resolve.DefaultStoreDir(); err != nil {
			return nil, "", err
		}
	}
	store, err := resolve.OpenStore(storeDir)
	if err != nil {
		return nil, "", err
	}
	opts := []resolve.Option{resolve.WithStore(store), resolve.WithPlatform(*platform), resolve.WithOffline(f.offline)}
	if specPath != "" {
		lock, err := resolve.LoadLockIfExists(resolve.LockPath(specPath))
		if err != nil {
			return nil, "", err
		}
		opts = append(opts, resolve.WithLock(lock), resolve.WithDir(filepath.Dir(specPath)))
	}
	r, err := resolve.NewResolver(opts...)
	if err != nil {
		return nil, "", err
	}
	img, err := r.Resolve(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	return kernelcheck.ImageConfig(img, binary)
}
