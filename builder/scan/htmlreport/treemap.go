package htmlreport

import "sort"

// rect is a box in percent of its parent.
type rect struct{ X, Y, W, H float64 }

// item is something with a size to lay out.
type item struct {
	Label string
	Size  int64
}

// squarify lays items out in r (in a W:H box of the given aspect, which
// keeps the boxes near square on screen), largest first, with the
// squarified treemap algorithm (Bruls, Huizing, van Wijk). The result is in
// the items' order after sorting by size, largest first; items of size 0
// get no box (zero rect). Same input, same output.
func squarify(items []item, aspect float64) ([]item, []rect) {
	sorted := append([]item(nil), items...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Size != sorted[j].Size {
			return sorted[i].Size > sorted[j].Size
		}
		return sorted[i].Label < sorted[j].Label
	})
	var total float64
	for _, it := range sorted {
		total += float64(it.Size)
	}
	out := make([]rect, len(sorted))
	if total == 0 {
		return sorted, out
	}
	// Work in a box of area 1 scaled to the aspect, then convert to percent.
	w, h := aspect, 1.0
	scale := w * h / total
	x, y := 0.0, 0.0
	start := 0
	for start < len(sorted) && sorted[start].Size > 0 {
		side := min(w, h)
		end := start + 1
		for end < len(sorted) && sorted[end].Size > 0 &&
			worst(sorted[start:end+1], side, scale) <= worst(sorted[start:end], side, scale) {
			end++
		}
		var rowArea float64
		for _, it := range sorted[start:end] {
			rowArea += float64(it.Size) * scale
		}
		thick := rowArea / side
		pos := 0.0
		for i := start; i < end; i++ {
			length := float64(sorted[i].Size) * scale / thick
			if w >= h { // a column at the left
				out[i] = rect{x, y + pos, thick, length}
			} else { // a row at the top
				out[i] = rect{x + pos, y, length, thick}
			}
			pos += length
		}
		if w >= h {
			x, w = x+thick, w-thick
		} else {
			y, h = y+thick, h-thick
		}
		start = end
	}
	for i := range out {
		out[i] = rect{out[i].X / aspect * 100, out[i].Y * 100, out[i].W / aspect * 100, out[i].H * 100}
	}
	return sorted, out
}

// worst is the largest aspect ratio in a row of items laid along side.
func worst(row []item, side, scale float64) float64 {
	var sum, lo, hi float64
	for i, it := range row {
		a := float64(it.Size) * scale
		sum += a
		if i == 0 || a < lo {
			lo = a
		}
		if a > hi {
			hi = a
		}
	}
	s2 := side * side
	return max(s2*hi/(sum*sum), sum*sum/(s2*lo))
}
