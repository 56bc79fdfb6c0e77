package build

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/kernelcheck"
	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan"
	"github.com/bulkhead-dev/bulkhead/internal/buildid"
	"github.com/bulkhead-dev/bulkhead/internal/host/sysctl"
)

// KernelReportName is the kernel check's report beside the outputs,
// after the host's name: NAME-kernel-check.txt (KernelReport).
const KernelReportName = "kernel-check.txt"

// KernelReport is the kernel check's report file of host name, named as
// the scan's reports are.
func KernelReport(name string) string { return scan.FileName(name, KernelReportName) }

// DefaultKernelPolicy applies when the spec has no policy.kernel.
func DefaultKernelPolicy() config.KernelPolicy {
	return config.KernelPolicy{MinScore: 80, Require: []string{"container"}}
}

// Gates are the build's checks: the scan's report, the kernel check's
// report, and the SBOM to embed in the root.
type Gates struct {
	Scan *scan.Report
	// KernelReport is the kernel check's report, nil without a kernel.
	KernelReport []byte
	// Kernel is the kernel check's verdict, nil when it did not run.
	Kernel *KernelVerdict
	// SBOM is the SPDX SBOM as a file of the root (scan.EmbedPath).
	SBOM *rootfs.Entry
}

// KernelVerdict is the kernel check's outcome against policy.kernel: the
// kernel image, its score, how many rules failed, and the verdict (pass,
// the minimum score, why the policy failed, whether it is enforced).
type KernelVerdict struct {
	Image  string
	Score  int
	Failed int
	kernelcheck.Verdict
}

// GateError is a build stopped by a gate the policy enforces; Report
// holds the findings.
type GateError struct {
	Report *scan.Report
}

func (e *GateError) Error() string {
	return fmt.Sprintf("the host fails its policy (%d gate failures, listed above); nothing was written", len(e.Report.Failed()))
}

// KernelPolicyError is a kernel that fails an enforced policy.kernel;
// Report is the kernel check's report.
type KernelPolicyError struct {
	Report  []byte
	Verdict *KernelVerdict
	Err     error
}

func (e *KernelPolicyError) Error() string { return e.Err.Error() }
func (e *KernelPolicyError) Unwrap() error { return e.Err }

// Gates checks the kernel against policy.kernel (the default policy,
// report only, when the spec has none), with the sysctls init applies,
// and runs the scan gates on the host. A gate the policy enforces fails
// the build (*GateError, *KernelPolicyError); an unenforced kernel failure
// is a warning.
func (b *Builder) Gates(ctx context.Context, l *Loaded, res *Resolved, host *rootfs.Host, hostInit Init) (*Gates, error) {
	g := &Gates{}
	if err := b.checkKernel(g, l.Spec, host, res.Images, hostInit); err != nil {
		return nil, err
	}
	spec := l.Spec
	in := scan.Input{
		Name: b.o.name, Tree: host.Tree, Images: SortedImages(res.Images), Cmdline: host.Cmdline,
		Spec: l.Text, SpecName: filepath.Base(b.specs[0]), Policy: spec.Policy, Outside: host.Outside,
		VulnDB: b.o.vulndb, Now: b.o.now().UTC(), Epoch: b.o.epoch,
	}
	var err error
	if spec.Kernel.Image != "" {
		k, err := scan.KernelInfo(host.Kernel, res.Images[spec.Kernel.Image])
		if err != nil {
			return nil, err
		}
		in.Kernel = k
	}
	if in.Cache, err = b.ScanCache(); err != nil {
		return nil, err
	}
	r, err := scan.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	if len(r.Failed()) > 0 {
		return nil, &GateError{Report: r}
	}
	g.Scan = r
	g.SBOM = r.Entry(b.o.epoch)
	return g, nil
}

// ScanCache opens the scan's cache in the image store's layer cache (nil,
// no cache, when the running program's version cannot be told or the
// store cannot be written).
func (b *Builder) ScanCache() (*scan.Cache, error) {
	store, err := b.store()
	if err != nil {
		return nil, err
	}
	return scan.OpenCache(store.LayerCacheDir()), nil
}

// archiveCache opens the cache of compressed initrd archives in the image
// store (nil, no cache, when the running program's version cannot be told
// or the store cannot be written).
func (b *Builder) archiveCache() *output.ArchiveCache {
	store, err := b.store()
	if err != nil {
		return nil
	}
	v, err := buildid.Program()
	if err != nil {
		return nil
	}
	return output.OpenArchiveCache(store.ArchiveCacheDir(), v, store.Stamps())
}

// Sysctls are the sysctls a host with hostInit applies at boot.
func Sysctls(hostInit Init) []sysctl.Setting {
	if hostInit == BulkheadInit {
		return sysctl.Hardening
	}
	return nil
}

func (b *Builder) checkKernel(g *Gates, spec *config.Spec, host *rootfs.Host, images map[string]*resolve.Image, hostInit Init) error {
	if spec.Kernel.Image == "" {
		return nil
	}
	k, _, err := kernelcheck.ImageKconfig(images[spec.Kernel.Image], spec.Kernel.Binary)
	if err != nil {
		b.warn("gates", config.Pos{}, "kernel check skipped: %v", err)
		return nil
	}
	if err := checkSealedDataKernel(spec, k); err != nil {
		return err
	}
	policy := DefaultKernelPolicy()
	if spec.Policy != nil && spec.Policy.Kernel != nil {
		policy = *spec.Policy.Kernel
	}
	rep, v, err := kernelcheck.CheckKconfig(k, host.Cmdline, Sysctls(hostInit), &policy)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, v); err != nil {
		return err
	}
	g.KernelReport = buf.Bytes()
	g.Kernel = &KernelVerdict{Image: spec.Kernel.Image, Score: rep.Score, Failed: rep.Failed, Verdict: v}
	if v.Pass {
		return nil
	}
	if v.Enforce {
		return &KernelPolicyError{Report: g.KernelReport, Verdict: g.Kernel,
			Err: fmt.Errorf("%s: the kernel fails policy.kernel (score %d%%, min %d%%); nothing was written", spec.Policy.Pos, rep.Score, v.MinScore)}
	}
	b.warn("gates", config.Pos{}, "kernel %s scores %d%% and fails the kernel policy (min %d%%, %d rules failed); see %s",
		spec.Kernel.Image, rep.Score, v.MinScore, rep.Failed, KernelReport(b.o.name))
	return nil
}

// Apply returns host with the SBOM in its root: a new tree, sharing no
// entry with host's.
func (g *Gates) Apply(host *rootfs.Host) *rootfs.Host {
	h := *host
	h.Tree = host.Tree.Clone()
	sbom := *g.SBOM
	h.Tree.Put(&sbom)
	return &h
}

// write puts the reports of host name beside the outputs and returns
// their paths and formats: NAME-sbom.spdx.json, NAME-sbom.cdx.json,
// NAME-scan.json, NAME-scan.txt and NAME-kernel-check.txt.
func (g *Gates) write(stage *output.Stage, name string) ([][2]string, error) {
	dir := stage.Dir()
	paths, err := g.Scan.WriteFiles(dir)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for i, format := range []string{"spdx", "cyclonedx", "scan-json", "scan-text"} {
		out = append(out, [2]string{paths[i], format})
	}
	p := filepath.Join(dir, KernelReport(name))
	if g.KernelReport == nil {
		stage.Obsolete(KernelReport(name)) // a stale one would mislead
		return out, nil
	}
	if err := output.WriteFile(p, g.KernelReport); err != nil {
		return nil, err
	}
	return append(out, [2]string{p, "kernel-check"}), nil
}

// SortedImages lists the images by reference.
func SortedImages(m map[string]*resolve.Image) []*resolve.Image {
	out := make([]*resolve.Image, 0, len(m))
	for _, img := range m {
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out
}

// sealedDataConfig is what the kernel needs for disk.encrypt_data: tpm:
// dm-crypt with the xts template, and a TPM 2.0 driver built in (the host
// opens /dev/tpmrm0 before its modules could bring one).
var sealedDataConfig = []struct {
	symbol  string
	builtIn bool
}{{"CONFIG_DM_CRYPT", false}, {"CONFIG_CRYPTO_XTS", false}, {"CONFIG_TCG_TPM", true}}

// checkSealedDataKernel refuses a spec whose data partition is sealed to
// the TPM on a kernel that cannot open it.
func checkSealedDataKernel(spec *config.Spec, k kernelcheck.Kconfig) error {
	if spec.Disk == nil || spec.Disk.EncryptData == "" {
		return nil
	}
	var missing []string
	for _, c := range sealedDataConfig {
		v := k[c.symbol]
		if v != "y" && (c.builtIn || v != "m") {
			missing = append(missing, c.symbol)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: disk: encrypt_data: tpm needs dm-crypt and a TPM driver, and kernel %s has no %s",
			spec.Disk.Pos, spec.Kernel.Image, strings.Join(missing, ", "))
	}
	return nil
}
