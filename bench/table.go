package bench

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/inferprobe/inferprobe/prober"
)

// WriteTable writes the headline figures for a person: one row per run, target and stage,
// then, with repeat runs, each figure's mean, spread and 95% interval across them.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\ttarget\tstage\tload\tsent\twarmup\tok\tfailed\tdropped\treq/s\tout tok/s\tTTFT p50\tTTFT p99\tITL p50\tTPOT p50\tE2E p50\tgoodput\t")
	for _, run := range r.Runs {
		for _, t := range run.Targets {
			for _, st := range t.Stages {
				var failed int64
				for k, v := range st.Requests {
					if k != prober.ResultSuccess {
						failed += v
					}
				}
				load := strconv.FormatFloat(st.Rate, 'g', 4, 64) + "/s"
				if st.Concurrency > 0 {
					load = "c=" + strconv.Itoa(st.Concurrency)
				}
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%.1f%%\t\n",
					run.Index, t.Name, st.Index, load, st.Load.Sent, st.Warmup, st.Requests[prober.ResultSuccess], failed, st.Load.Dropped,
					st.Throughput.RequestsPerSecond, st.Throughput.OutputTokensPerSec,
					ms(st.TTFT.Quantile(0.5)), ms(st.TTFT.Quantile(0.99)), ms(st.ITL.Quantile(0.5)),
					ms(st.TPOT.Quantile(0.5)), ms(st.E2E.Quantile(0.5)), 100*st.GoodputRatio)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, sw := range r.Sweeps {
		knee := "no stage kept it"
		if sw.KneeStage >= 0 {
			knee = fmt.Sprintf("stage %d at %.2f req/s", sw.KneeStage, sw.KneeRate)
		}
		fmt.Fprintf(w, "\nsweep %s: sustained %.2f req/s with %d in flight; %s stages to it; knee (goodput ≥ %.3g): %s\n",
			sw.Target, sw.ProbeRate, sw.ProbeConcurrency, sw.Type, sw.GoodputTarget, knee)
	}
	if len(r.Repeats) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nacross %d runs (mean ± stddev, coefficient of variation, 95%% confidence interval of the mean):\n", len(r.Runs))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tstage\tfigure\tmean\tstddev\tcv\tci95")
	for _, rs := range r.Repeats {
		for _, name := range FigureNames() {
			st := rs.Figures[name]
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.2f%%\t[%s, %s]\n", rs.Target, rs.Stage, name,
				figure(name, st.Mean), figure(name, st.Stddev), 100*st.CV, figure(name, st.CI95[0]), figure(name, st.CI95[1]))
		}
	}
	return tw.Flush()
}

// ms formats seconds as milliseconds; "-" when nothing was measured.
func ms(s float64) string {
	if s == 0 {
		return "-"
	}
	return strconv.FormatFloat(s*1000, 'f', 1, 64) + "ms"
}

// figure formats a headline figure in its unit.
func figure(name string, v float64) string {
	switch name {
	case FigureOutputTokPerS, FigureRequestsPerS:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case FigureGoodputRatio:
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
	return strconv.FormatFloat(v*1000, 'f', 2, 64) + "ms"
}
