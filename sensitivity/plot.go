package sensitivity

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WritePlot draws throughput against delay (every repeat, and the fitted line) into dir as
// sensitivity.png and sensitivity.svg, and returns their paths.
func (r *Report) WritePlot(dir string) ([]string, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Throughput against injected delay: %s", r.Analysis.Classification)
	p.X.Label.Text = "injected delay (µs)"
	p.Y.Label.Text = "output tokens/s"
	var pts plotter.XYs
	minX, maxX := 0.0, 0.0
	for _, l := range r.Levels {
		for _, m := range l.Repeats {
			x := float64(l.DelayNS) / 1e3
			pts = append(pts, plotter.XY{X: x, Y: m.OutputTokensPerSecond})
			maxX = max(maxX, x)
		}
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("plot: no measurement")
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	p.Add(sc, plotter.NewGrid())
	p.Legend.Add("measured", sc)
	f := r.Analysis.Fit
	minX = r.Analysis.NegativeDelay * 1e6
	// The fit is solid over the measured delays and dashed left of 0, where it extrapolates.
	measured := plotter.NewFunction(func(x float64) float64 { return f.At(x * 1e-6) })
	measured.XMin, measured.XMax = 0, maxX
	extrapolated := plotter.NewFunction(func(x float64) float64 { return f.At(x * 1e-6) })
	extrapolated.XMin, extrapolated.XMax = minX, 0
	extrapolated.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(measured, extrapolated)
	p.Legend.Add(fmt.Sprintf("fit (R² %.3f)", f.R2), measured)
	p.Legend.Add("fit extrapolated", extrapolated)
	p.X.Min, p.X.Max = minX, maxX
	p.Y.Min, p.Y.Max = yRange(pts, f, minX*1e-6, maxX*1e-6)
	// Throughput falls to the right and the y axis starts at 0: the bottom left is clear.
	p.Legend.Top, p.Legend.Left = false, true
	var files []string
	for _, ext := range []string{".png", ".svg"} {
		path := filepath.Join(dir, "sensitivity"+ext)
		if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
			return nil, err
		}
		files = append(files, path)
	}
	return files, nil
}

// yRange is the plot's y axis: from 0 to above every measurement and the fitted line at both
// ends of the x range (x in seconds), so that the extrapolation stays in view.
func yRange(pts plotter.XYs, f Fit, minX, maxX float64) (lo, hi float64) {
	hi = max(f.At(minX), f.At(maxX))
	for _, p := range pts {
		hi = max(hi, p.Y)
	}
	lo = min(0, f.At(minX), f.At(maxX))
	for _, p := range pts {
		lo = min(lo, p.Y)
	}
	return lo, hi * 1.05
}
