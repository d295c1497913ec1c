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
	fit := plotter.NewFunction(func(x float64) float64 { return f.At(x * 1e-6) })
	fit.XMin, fit.XMax = minX, maxX
	fit.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(fit)
	p.Legend.Add(fmt.Sprintf("fit (R² %.3f; left of 0 extrapolated)", f.R2), fit)
	p.X.Min = minX
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
