package scan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/scan/minimal"
	"github.com/bulkhead-dev/bulkhead/builder/scan/secrets"
	"github.com/bulkhead-dev/bulkhead/builder/scan/vuln"
)

// forbidClasses maps policy.forbid's words to the minimality flags they
// forbid.
var forbidClasses = map[string][]string{
	"shells":           {minimal.FlagShell},
	"shell":            {minimal.FlagShell},
	"package-managers": {minimal.FlagPackageManager},
	"package-manager":  {minimal.FlagPackageManager},
	"compilers":        {minimal.FlagCompiler},
	"compiler":         {minimal.FlagCompiler},
	"setuid":           {minimal.FlagSetuid, minimal.FlagSetgid},
	"setgid":           {minimal.FlagSetgid},
	"world-writable":   {minimal.FlagWorldWritable},
	"vestigial":        {minimal.FlagVestigial},
	"devices":          {minimal.FlagDevice},
	"capabilities":     {minimal.FlagCapabilities},
	// outside-files is about where files come from, not what they are:
	// see violations.
	outsideFiles: {},
}

// outsideFiles forbids files entries read from outside the spec's
// directory.
const outsideFiles = "outside-files"

func parsePolicy(p *config.Policy) (forbid []string, maxSize int64, err error) {
	if p == nil {
		return nil, 0, nil
	}
	for _, f := range p.Forbid {
		if _, ok := forbidClasses[f]; !ok {
			return nil, 0, fmt.Errorf("policy: forbid: unknown class %q (known: shells, package-managers, compilers, setuid, setgid, world-writable, vestigial, devices, capabilities, outside-files)", f)
		}
		forbid = append(forbid, f)
	}
	if p.MaxSize != "" {
		if maxSize, err = config.ParseSize(p.MaxSize); err != nil {
			return nil, 0, fmt.Errorf("policy: max_size: %w", err)
		}
	}
	return forbid, maxSize, nil
}

func violations(r *Report, forbid []string, maxSize int64, p *config.Policy) []string {
	m := r.Minimality
	out := []string{}
	if maxSize > 0 && m.TotalSize > maxSize {
		out = append(out, fmt.Sprintf("root holds %d bytes of files, over max_size %s (%d bytes)", m.TotalSize, p.MaxSize, maxSize))
	}
	for _, class := range forbid {
		if class == outsideFiles {
			for _, f := range r.OutsideFiles {
				out = append(out, fmt.Sprintf("forbidden (%s): /%s is read from %s (%s)", class, f.Path, f.Source, f.Spec))
			}
		}
		for _, flag := range forbidClasses[class] {
			for _, path := range m.WithFlag(flag) {
				out = append(out, fmt.Sprintf("forbidden (%s): /%s is %s", class, path, flag))
			}
		}
	}
	return out
}

// secrets gathers the findings in files, image configs, the spec and the
// command line, and applies the allowlist.
func (r *Report) secrets(in Input, files *treeFiles) error {
	found := append([]secrets.Finding{}, files.secrets...)
	var texts []text
	for _, img := range in.Images {
		for _, s := range imageConfigStrings(img) {
			texts = append(texts, text{where: "image " + img.Ref + ": " + s.where, data: []byte(s.value), str: true})
		}
	}
	spec := -1
	if len(in.Spec) > 0 {
		name := in.SpecName
		if name == "" {
			name = "spec"
		}
		spec = len(texts)
		texts = append(texts, text{where: "spec " + name, data: in.Spec})
	}
	if in.Cmdline != "" {
		texts = append(texts, text{where: "kernel command line", data: []byte(in.Cmdline), str: true})
	}
	// A secret a files entry writes from the spec is found twice: in the
	// host's file and in the spec's text. It is one secret: reported
	// once, where the host carries it.
	fromSpec := map[string]bool{}
	for _, f := range files.secrets {
		if e := in.Tree.Get(f.Where); e != nil && strings.HasPrefix(e.Origin, "spec:") {
			fromSpec[f.Fingerprint] = true
		}
	}
	for i, fs := range in.Cache.textSecrets(texts) {
		for _, f := range fs {
			if i != spec || !fromSpec[f.Fingerprint] {
				found = append(found, f)
			}
		}
	}
	sort.SliceStable(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if a.Where != b.Where {
			return a.Where < b.Where
		}
		return a.Line < b.Line
	})
	var allow []config.Allowance
	if in.Policy != nil && in.Policy.Secrets != nil {
		allow = in.Policy.Secrets.Allow
	}
	r.Secrets = []Secret{}
	seen := map[string]bool{}
	for _, f := range found {
		k := f.Where + "\x00" + f.Fingerprint
		if seen[k] {
			continue
		}
		seen[k] = true
		s := Secret{Finding: f, Status: "fail"}
		for _, a := range allow {
			if a.ID != f.Fingerprint {
				continue
			}
			s.Status, s.Reason, s.Expires = "allowed", a.Reason, a.Expires
			if vuln.Expired(a.Expires, in.Now) {
				s.Status = "expired"
			}
		}
		r.Secrets = append(r.Secrets, s)
	}
	return nil
}

// configString is one string of an image config and where it is.
type configString struct{ where, value string }

// imageConfigStrings lists the strings of an image config a secret can
// hide in: env, labels, entrypoint, command, history.
func imageConfigStrings(img *resolve.Image) []configString {
	cf := imageConfig(img)
	c := cf.Config
	var out []configString
	for _, e := range c.Env {
		name, _, _ := strings.Cut(e, "=")
		out = append(out, configString{"env " + name, e})
	}
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, configString{"label " + k, k + "=" + c.Labels[k]})
	}
	if len(c.Entrypoint) > 0 {
		out = append(out, configString{"entrypoint", strings.Join(c.Entrypoint, " ")})
	}
	if len(c.Cmd) > 0 {
		out = append(out, configString{"cmd", strings.Join(c.Cmd, " ")})
	}
	for i, h := range cf.History {
		out = append(out, configString{fmt.Sprintf("history %d", i), h.CreatedBy + "\n" + h.Comment})
	}
	return out
}

// Failed lists why the host fails its gates, one line each; empty when it
// passes.
func (r *Report) Failed() []string {
	var out []string
	if r.vulnRequired && !r.VulnDB {
		out = append(out, "vulnerability policy set but no vulnerability database given (--vulndb)")
	}
	for _, v := range r.Vulnerabilities {
		if v.Status != "fail" && v.Status != "expired" {
			continue
		}
		msg := fmt.Sprintf("vulnerability %s (%s) in %s %s", v.ID, v.Severity, v.Package, v.Installed)
		if v.Fixed != "" {
			msg += ", fixed in " + v.Fixed
		}
		msg += " at " + strings.Join(v.Locations, ", ")
		if v.Status == "expired" {
			msg += " (allowance expired " + v.Expires + ")"
		}
		out = append(out, msg)
	}
	for _, s := range r.Secrets {
		if s.Status == "allowed" {
			continue
		}
		where := s.Where
		if s.Line > 0 {
			where = fmt.Sprintf("%s:%d", where, s.Line)
		}
		msg := fmt.Sprintf("secret %s at %s: %s (fingerprint %s)", s.Rule, where, s.Excerpt, s.Fingerprint)
		if s.Status == "expired" {
			msg += " (allowance expired " + s.Expires + ")"
		}
		out = append(out, msg)
	}
	return append(out, r.Violations...)
}
