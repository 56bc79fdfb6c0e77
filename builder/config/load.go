// Package config reads, validates and merges bulkhead host specs: YAML files
// whose kernel, init, onboot, onshutdown, services, files, volumes and trust
// sections keep LinuxKit's meaning. Every problem is reported with its
// file:line:col, all at once (see Errors).
package config

import (
	"errors"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// section is one top-level key of a spec: how to decode it and how to merge
// it into the spec read from earlier files. Adding a section is one entry in
// sections.
type section struct {
	key    string
	decode func(d *decoder, n *yaml.Node, s *Spec)
	merge  func(dst, src *Spec)
}

func sections() []section {
	return []section{
		{"kernel", decodeKernel, mergeKernel},
		{"init", decodeInit, func(dst, src *Spec) { dst.Init = append(dst.Init, src.Init...) }},
		{"onboot", decodeImages("onboot", func(s *Spec) *[]*Image { return &s.Onboot }),
			func(dst, src *Spec) { dst.Onboot = append(dst.Onboot, src.Onboot...) }},
		{"onshutdown", decodeImages("onshutdown", func(s *Spec) *[]*Image { return &s.Onshutdown }),
			func(dst, src *Spec) { dst.Onshutdown = append(dst.Onshutdown, src.Onshutdown...) }},
		{"services", decodeImages("services", func(s *Spec) *[]*Image { return &s.Services }),
			func(dst, src *Spec) { dst.Services = append(dst.Services, src.Services...) }},
		{"files", decodeFiles, func(dst, src *Spec) { dst.Files = append(dst.Files, src.Files...) }},
		{"volumes", decodeVolumes, func(dst, src *Spec) { dst.Volumes = append(dst.Volumes, src.Volumes...) }},
		{"trust", decodeTrust, mergeTrust},
		{"disk", decodeDisk, mergeLast(func(s *Spec) **Disk { return &s.Disk })},
		{"boot", decodeBoot, mergeLast(func(s *Spec) **Boot { return &s.Boot })},
		{"policy", decodePolicy, mergeLast(func(s *Spec) **Policy { return &s.Policy })},
		{"update", decodeUpdate, mergeLast(func(s *Spec) **Update { return &s.Update })},
		{"api", decodeAPI, mergeLast(func(s *Spec) **API { return &s.API })},
		{"secrets", decodeSecrets, func(dst, src *Spec) { dst.Secrets = append(dst.Secrets, src.Secrets...) }},
		{"metadata", decodeMetadata, mergeLast(func(s *Spec) **Metadata { return &s.Metadata })},
	}
}

// Parse reads one spec file's contents; name is used in positions. The
// error, if any, is an Errors listing every problem.
func Parse(name string, data []byte, opts ...Option) (*Spec, error) {
	return LoadSources([]Source{{Name: name, Data: data}}, opts...)
}

// Load reads and merges spec files the way LinuxKit does: kernel fields set
// in a later file override earlier ones, and the lists (init, onboot,
// onshutdown, services, files, volumes) are concatenated in file order.
// Files are read with the default limits (see ReadSources). The error, if
// any, is an Errors listing every problem in every file, unless a file
// cannot be read.
func Load(paths ...string) (*Spec, error) {
	if len(paths) == 0 {
		return nil, errors.New("loading spec: no files given")
	}
	srcs, err := ReadSources(paths)
	if err != nil {
		return nil, err
	}
	return LoadSources(srcs)
}

// LoadSources parses and merges spec files already read (see Load).
func LoadSources(srcs []Source, opts ...Option) (*Spec, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	var errs errorList
	merged := &Spec{}
	for _, src := range srcs {
		merge(merged, parseFile(src.Name, src.Data, o, &errs))
	}
	check(merged, &errs)
	if err := errs.errs.err(); err != nil {
		return nil, err
	}
	return merged, nil
}

// Merge returns a new spec with the contents of each spec merged in order,
// with LinuxKit's semantics (see Load), and checks the result.
func Merge(specs ...*Spec) (*Spec, error) {
	var errs errorList
	merged := &Spec{}
	for _, s := range specs {
		merge(merged, s)
	}
	check(merged, &errs)
	if err := errs.errs.err(); err != nil {
		return nil, err
	}
	return merged, nil
}

func merge(dst, src *Spec) {
	for _, sec := range sections() {
		sec.merge(dst, src)
	}
	dst.Sources = append(dst.Sources, src.Sources...)
	dst.Warnings = append(dst.Warnings, src.Warnings...)
	dst.Warnings.sort()
	dst.volumeUses = append(dst.volumeUses, src.volumeUses...)
}

// parseFile decodes one file; problems go to errs. It never returns nil.
func parseFile(name string, data []byte, o *options, errs *errorList) (s *Spec) {
	s = &Spec{Sources: []string{name}}
	defer func() {
		// yaml.v3 may panic on hostile input; report it, do not crash.
		if r := recover(); r != nil {
			errs.add(Pos{File: name, Line: 1, Col: 1}, "cannot parse YAML: %v", r)
		}
	}()
	root, err := parseYAML(data)
	if err != nil {
		fixed := repairBlockComments(data)
		if fixed == nil {
			addSyntaxError(errs, name, data, err)
			return s
		}
		if root, err = parseYAML(fixed); err != nil {
			addSyntaxError(errs, name, fixed, err)
			return s
		}
	}
	if root == nil || isNull(resolve(root)) {
		errs.unread = true
		errs.add(Pos{File: name, Line: 1, Col: 1}, "empty spec: a host needs at least kernel: and init: (bulkhead init writes a starting spec)")
		return s
	}
	d := newDecoder(name, len(data), errs)
	if !d.checkExpansion(root, o.maxExpandedSize) {
		return s
	}
	decodeSpec(d, root, s)
	s.volumeUses = d.uses
	s.Warnings = d.warns
	s.Warnings.sort()
	return s
}

// parseYAML returns the document's top node, or nil for an empty document.
func parseYAML(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

func yamlErrorPos(name string, err error) Pos {
	p := Pos{File: name, Line: 1, Col: 1}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			p.Line = n
		}
	}
	return p
}

// addSyntaxError reports a YAML syntax error at the offending token.
func addSyntaxError(errs *errorList, name string, data []byte, err error) {
	msg := yamlErrorMsg(err)
	errs.unread = true
	errs.add(syntaxPos(name, data, err), "%s%s", msg, indentHint(msg))
}

func yamlErrorMsg(err error) string {
	msg := yamlLineRE.ReplaceAllString(err.Error(), "")
	if len(msg) > 6 && msg[:6] == "yaml: " {
		msg = msg[6:]
	}
	return "invalid YAML: " + msg
}

func decodeSpec(d *decoder, root *yaml.Node, s *Spec) {
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		if !isNull(root) {
			d.errorf(root, "expected a mapping of sections, got %s", describe(root))
		}
		return
	}
	secs := sections()
	keys := make([]string, len(secs))
	for i, sec := range secs {
		keys[i] = sec.key
	}
	seen := map[string]*yaml.Node{}
	for _, p := range d.pairs(root, 0) {
		key := resolve(p.key)
		i := indexOf(keys, key.Value)
		switch {
		case key.Kind != yaml.ScalarNode:
			d.errorf(p.key, "expected a section name, got %s", describe(key))
		case i < 0:
			d.errorf(p.key, "unknown field %s%s", quote(key.Value), didYouMean(key.Value, keys))
		case seen[key.Value] != nil:
			d.errorf(p.key, "field %s already set at %s", quote(key.Value), d.pos(seen[key.Value]))
		default:
			seen[key.Value] = p.key
			if v := resolve(p.value); !isNull(v) {
				secs[i].decode(d, v, s)
			}
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func decodeKernel(d *decoder, n *yaml.Node, s *Spec) {
	m := d.structure(n, reflect.ValueOf(&s.Kernel).Elem(), "kernel")
	if img := m["image"]; img != nil {
		s.Kernel.Pos = d.pos(resolve(img))
		d.checkRef(img, s.Kernel.Image, "kernel image")
	}
}

func mergeKernel(dst, src *Spec) {
	k, o := &dst.Kernel, src.Kernel
	if o.Image != "" {
		k.Image, k.Pos = o.Image, o.Pos
	}
	if o.Cmdline != "" {
		k.Cmdline = o.Cmdline
	}
	if o.Binary != "" {
		k.Binary = o.Binary
	}
	if o.Tar != nil {
		k.Tar = o.Tar
	}
	if o.UCode != "" {
		k.UCode = o.UCode
	}
}

func decodeInit(d *decoder, n *yaml.Node, s *Spec) {
	var refs []Ref
	if !d.decode(n, reflect.ValueOf(&refs).Elem(), "init") {
		return
	}
	for i, r := range refs {
		d.checkRef(resolve(n).Content[i], r.Ref, "init image")
	}
	s.Init = append(s.Init, refs...)
}

// decodeImages decodes a list of containers into the list field picks.
func decodeImages(key string, pick func(*Spec) *[]*Image) func(*decoder, *yaml.Node, *Spec) {
	return func(d *decoder, n *yaml.Node, s *Spec) {
		list := pick(s)
		for _, item := range d.items(n, key) {
			img := &Image{Pos: d.pos(item), ImagePos: d.pos(item)}
			m := d.structure(item, reflect.ValueOf(img).Elem(), "")
			if m == nil {
				continue
			}
			if v := m["image"]; v != nil {
				img.ImagePos = d.pos(resolve(v))
			}
			d.checkImage(img, item, m)
			d.checkSysctl(&img.ImageConfig, m)
			d.checkHealth(key, img, m["healthcheck"])
			d.checkSecretUses(key, img, m["secrets"])
			*list = append(*list, img)
		}
	}
}

func decodeFiles(d *decoder, n *yaml.Node, s *Spec) {
	for _, item := range d.items(n, "files") {
		f := File{Pos: d.pos(item)}
		m := d.structure(item, reflect.ValueOf(&f).Elem(), "")
		if m == nil {
			continue
		}
		d.checkFile(&f, item, m)
		s.Files = append(s.Files, f)
	}
}

func decodeVolumes(d *decoder, n *yaml.Node, s *Spec) {
	for _, item := range d.items(n, "volumes") {
		v := Volume{Pos: d.pos(item), ImagePos: d.pos(item)}
		m := d.structure(item, reflect.ValueOf(&v).Elem(), "")
		if m == nil {
			continue
		}
		if img := m["image"]; img != nil {
			v.ImagePos = d.pos(resolve(img))
		}
		d.checkVolume(&v, item, m)
		s.Volumes = append(s.Volumes, v)
	}
}

func decodeTrust(d *decoder, n *yaml.Node, s *Spec) {
	var t LegacyTrust
	if set := d.structure(n, reflect.ValueOf(&t).Elem(), "trust"); set != nil {
		d.checkTrust(n, set, &t)
		s.Trust = &t
	}
}

func mergeTrust(dst, src *Spec) {
	if src.Trust == nil {
		return
	}
	if dst.Trust == nil {
		dst.Trust = &LegacyTrust{}
	}
	dst.Trust.Org = append(dst.Trust.Org, src.Trust.Org...)
	dst.Trust.Image = append(dst.Trust.Image, src.Trust.Image...)
	mergeTrustPolicy(dst.Trust, src.Trust)
}

// items returns the (alias-resolved) entries of a list node, reporting a
// node that is not a list.
func (d *decoder) items(n *yaml.Node, what string) []*yaml.Node {
	n = resolve(n)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%sexpected a list, got %s", prefix(what), describe(n))
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		if c = resolve(c); c != nil {
			out = append(out, c)
		}
	}
	return out
}
