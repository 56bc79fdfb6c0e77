// Package htmlreport renders a scan report (what scan.json holds) as one
// self-contained HTML page: a treemap of the root's size by component and
// file, the package list, and the gates' results. Nothing is fetched: the
// styles and the one script are inline, the layout is computed here.
package htmlreport

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/scan"
	"github.com/bulkhead-dev/bulkhead/builder/scan/minimal"
	"github.com/dustin/go-humanize"
)

// maxFileBoxes is how many of a component's largest files get a box of
// their own; the rest share one.
const maxFileBoxes = 400

// aspect is the treemap's width over its height on the page.
const aspect = 1.8

//go:embed page.html.tmpl
var pageFS embed.FS

var page = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{
	"bytes": func(n int64) string { return humanize.IBytes(uint64(n)) },
	"box": func(r rect) template.CSS {
		return template.CSS(fmt.Sprintf("left:%.4f%%;top:%.4f%%;width:%.4f%%;height:%.4f%%", r.X, r.Y, r.W, r.H))
	},
	"hue": func(i int) template.CSS { return template.CSS(fmt.Sprintf("--hue:%d", (i*137)%360)) },
	// short drops an origin's digest: the table and the title keep it.
	"short": func(s string) string {
		if i := strings.Index(s, "@sha256:"); i > 0 {
			return s[:i]
		}
		return s
	},
}).ParseFS(pageFS, "page.html.tmpl"))

type component struct {
	Origin string
	Size   int64
	Files  int
	Box    rect
	Boxes  []fileBox
}

type fileBox struct {
	Label string
	Size  int64
	Box   rect
}

type view struct {
	R          *scan.Report
	Total      int64
	Files      int
	Components []component
	Failed     []string
}

// Write renders r as the page.
func Write(w io.Writer, r *scan.Report) error {
	m := r.Minimality
	if m == nil {
		m = &minimal.Report{}
	}
	v := view{R: r, Total: m.TotalSize, Files: len(m.Files), Failed: r.Failed()}
	v.Components = layout(m)
	if err := page.Execute(w, v); err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	return nil
}

// layout places the components in the page's box, and each one's files
// inside its own.
func layout(m *minimal.Report) []component {
	byOrigin := map[string][]item{}
	for _, f := range m.Files {
		byOrigin[f.Origin] = append(byOrigin[f.Origin], item{f.Path, f.Size})
	}
	items := make([]item, len(m.Components))
	info := map[string]minimal.Component{}
	for i, c := range m.Components {
		items[i] = item{c.Origin, c.Size}
		info[c.Origin] = c
	}
	sorted, boxes := squarify(items, aspect)
	out := make([]component, len(sorted))
	for i, it := range sorted {
		c := component{Origin: it.Label, Size: it.Size, Files: info[it.Label].Files, Box: boxes[i]}
		files := byOrigin[it.Label]
		sort.SliceStable(files, func(a, b int) bool { return files[a].Size > files[b].Size })
		if len(files) > maxFileBoxes {
			var rest int64
			for _, f := range files[maxFileBoxes:] {
				rest += f.Size
			}
			files = append(files[:maxFileBoxes:maxFileBoxes], item{fmt.Sprintf("%d smaller files", len(files)-maxFileBoxes), rest})
		}
		inner := aspect
		if boxes[i].H > 0 {
			inner = boxes[i].W * aspect / boxes[i].H
		}
		fs, fb := squarify(files, inner)
		for j := range fs {
			if fs[j].Size > 0 {
				c.Boxes = append(c.Boxes, fileBox{fs[j].Label, fs[j].Size, fb[j]})
			}
		}
		out[i] = c
	}
	return out
}
