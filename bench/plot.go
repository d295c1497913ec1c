package bench

import (
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// cdfPoints are the quantiles a CDF plot is drawn through.
var cdfPoints = [...]float64{0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
	0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 0.995, 0.999}

// WritePlots draws the report's plots into dir, each as PNG and SVG, and an index.html that
// shows them with the table; it needs no network to open. It returns the files written.
//   - latency.{png,svg}: TTFT, ITL and E2E p50/p90/p99 against the achieved rate of each stage;
//   - ttft_cdf and itl_cdf: the CDF of each stage of the first run;
//   - throughput.{png,svg}: output tokens per second against concurrency (closed-loop stages).
func (r *Report) WritePlots(dir string) ([]string, error) {
	if len(r.Runs) == 0 {
		return nil, fmt.Errorf("plots: the report has no run")
	}
	var files []string
	save := func(p *plot.Plot, name string) error {
		for _, ext := range []string{".png", ".svg"} {
			path := filepath.Join(dir, name+ext)
			if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
				return fmt.Errorf("plots: %w", err)
			}
			files = append(files, path)
		}
		return nil
	}
	run := r.Runs[0]

	lat := plot.New()
	lat.Title.Text = "Latency percentiles against achieved rate (run 0)"
	lat.X.Label.Text = "achieved rate (requests/s)"
	lat.Y.Label.Text = "seconds"
	lat.Y.Scale = plot.LogScale{}
	lat.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	lat.Legend.Top = true
	lat.Legend.TextStyle.Font.Size = vg.Points(8)
	var latArgs []any
	for _, t := range run.Targets {
		for _, m := range []struct {
			name string
			d    func(*Stage) *Dist
		}{{"TTFT", func(s *Stage) *Dist { return s.TTFT }}, {"ITL", func(s *Stage) *Dist { return s.ITL }}, {"E2E", func(s *Stage) *Dist { return s.E2E }}} {
			for _, q := range []float64{0.5, 0.9, 0.99} {
				var pts plotter.XYs
				for i := range t.Stages {
					s := &t.Stages[i]
					if v := m.d(s).Quantile(q); v > 0 {
						pts = append(pts, plotter.XY{X: s.Load.AchievedRate, Y: v})
					}
				}
				if len(pts) > 0 {
					// Stages need not climb in rate: draw each line left to right.
					sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
					latArgs = append(latArgs, fmt.Sprintf("%s %s p%g", t.Name, m.name, q*100), pts)
				}
			}
		}
	}
	if len(latArgs) > 0 {
		if err := plotutil.AddLinePoints(lat, latArgs...); err != nil {
			return nil, err
		}
		if err := save(lat, "latency"); err != nil {
			return nil, err
		}
	}

	for _, m := range []struct {
		file, title string
		d           func(*Stage) *Dist
	}{{"ttft_cdf", "TTFT", func(s *Stage) *Dist { return s.TTFT }}, {"itl_cdf", "Inter-token latency", func(s *Stage) *Dist { return s.ITL }}} {
		p := plot.New()
		p.Title.Text = m.title + " CDF per stage (run 0)"
		p.X.Label.Text = "seconds"
		p.Y.Label.Text = "fraction of requests at or below"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Left, p.Legend.Top = true, true
		var args []any
		for _, t := range run.Targets {
			for i := range t.Stages {
				d := m.d(&t.Stages[i])
				if d.Count() == 0 {
					continue
				}
				var pts plotter.XYs
				for _, q := range cdfPoints {
					if v := d.Quantile(q); v > 0 {
						pts = append(pts, plotter.XY{X: v, Y: q})
					}
				}
				args = append(args, fmt.Sprintf("%s stage %d", t.Name, i), pts)
			}
		}
		if len(args) == 0 {
			continue
		}
		if err := plotutil.AddLines(p, args...); err != nil {
			return nil, err
		}
		if err := save(p, m.file); err != nil {
			return nil, err
		}
	}

	tp := plot.New()
	tp.Title.Text = "Output throughput against concurrency (closed-loop stages, run 0)"
	tp.X.Label.Text = "requests in flight"
	tp.Y.Label.Text = "output tokens/s"
	var tpArgs []any
	for _, t := range run.Targets {
		var pts plotter.XYs
		for _, s := range t.Stages {
			if s.Concurrency > 0 {
				pts = append(pts, plotter.XY{X: float64(s.Concurrency), Y: s.Throughput.OutputTokensPerSec})
			}
		}
		if len(pts) > 0 {
			sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
			tpArgs = append(tpArgs, t.Name, pts)
		}
	}
	if len(tpArgs) > 0 {
		if err := plotutil.AddLinePoints(tp, tpArgs...); err != nil {
			return nil, err
		}
		tp.Add(plotter.NewGrid())
		if err := save(tp, "throughput"); err != nil {
			return nil, err
		}
	}

	var table strings.Builder
	if err := r.WriteTable(&table); err != nil {
		return nil, err
	}
	var images []string
	for _, f := range files {
		if strings.HasSuffix(f, ".svg") {
			images = append(images, filepath.Base(f))
		}
	}
	index := filepath.Join(dir, "index.html")
	out, err := os.Create(index)
	if err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	defer out.Close()
	if err := pageTemplate.Execute(out, struct {
		Report *Report
		Table  string
		Images []string
	}{r, table.String(), images}); err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	return append(files, index), out.Close()
}

// pageTemplate is the report page: the table and the plots, files beside it, nothing fetched.
var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{"mulPct": func(f float64) float64 { return f * 100 }}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>inferprobe run report</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222} pre{background:#f6f6f6;padding:1em;overflow-x:auto} img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}</style>
</head><body>
<h1>inferprobe run report</h1>
<p>Started {{.Report.StartedAt.Format "2006-01-02 15:04:05 MST"}} · {{len .Report.Runs}} measured run(s) · {{.Report.WarmupRuns}} warmup run(s) · percentiles within ±{{printf "%.1f" (mulPct .Report.SketchRelativeAccuracy)}}% · <a href="report.json">report.json</a></p>
<h2>Headline figures</h2>
<pre>{{.Table}}</pre>
<h2>Plots</h2>
{{range .Images}}<p><img src="{{.}}" alt="{{.}}"></p>
{{end}}</body></html>
`))
