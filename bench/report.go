package bench

import (
	"math"
	"slices"
	"sort"
	"time"
)

// SchemaVersion is the version of the report format (docs/report.md, report.schema.json). It
// changes when a field changes meaning or goes away; new fields may be added within a version.
const SchemaVersion = 1

// Report is the result of a one-shot run: every measured run (warmup runs are not reported),
// and statistics of the headline figures across repeat runs.
type Report struct {
	// SchemaVersion is SchemaVersion.
	SchemaVersion int `json:"schema_version"`
	// Tool and Version identify the program that wrote the report.
	Tool    string `json:"tool"`
	Version string `json:"version"`
	// StartedAt and FinishedAt bound the whole run, warmup runs included.
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// SketchRelativeAccuracy is the relative error bound of every percentile.
	SketchRelativeAccuracy float64 `json:"sketch_relative_accuracy"`
	// WarmupRuns is how many whole passes ran before the measured ones and are not reported.
	WarmupRuns int `json:"warmup_runs"`
	// Shard says which part of a sharded run this report is; nil for a whole run.
	Shard *Shard `json:"shard,omitempty"`
	// Runs are the measured runs in order.
	Runs []Pass `json:"runs"`
	// Repeats holds the statistics of each headline figure across Runs, per target and stage;
	// empty with a single run.
	Repeats []RepeatStats `json:"repeats,omitempty"`
	// Sweeps holds each target's sweep to saturation, when the run was one (RunSweep).
	Sweeps []SweepResult `json:"sweeps,omitempty"`
}

// Shard identifies one shard of a sharded run.
type Shard struct {
	// Index is the shard's number, from 0; Count is how many shards the run has.
	Index int `json:"index"`
	Count int `json:"count"`
}

// Pass is one measured pass over every target's stages.
type Pass struct {
	// Index counts measured runs from 0.
	Index int `json:"index"`
	// Targets are in configuration order.
	Targets []Target `json:"targets"`
}

// Target is one target's part of a run.
type Target struct {
	Name  string `json:"name"`
	Model string `json:"model"`
	// Seed reproduces the target's request sequence.
	Seed uint64 `json:"seed"`
	// Stages are in plan order; a target without stages has one.
	Stages []Stage `json:"stages"`
}

// Stage is one stage of a target in one run: its totals, and the same figures per adapter when
// the traffic is split over LoRA adapters.
type Stage struct {
	// Index is the stage's position in the configured stages.
	Index int `json:"index"`
	// Rate and Concurrency are what the stage asked for (one of them is 0); Duration is its
	// configured length in seconds.
	Rate        float64 `json:"rate"`
	Concurrency int     `json:"concurrency"`
	Duration    float64 `json:"duration_seconds"`
	Figures
	// Adapters holds the figures per adapter ("" is the base model), when split.
	Adapters map[string]*Figures `json:"adapters,omitempty"`
	// Load is how the schedule was kept.
	Load LoadSummary `json:"load_summary"`
	// Server summarises the model server's own metrics over the stage, when the target has a
	// metrics block (ServerSummary).
	Server *ServerSummary `json:"server,omitempty"`
	// Accelerator summarises the accelerator collector (NVML) over the stage, summed over the
	// GPUs, when it is on (the same form: energy as a rate is power).
	Accelerator *ServerSummary `json:"accelerator,omitempty"`
}

// Figures are the measured figures of a set of requests (a stage, or one adapter of it).
type Figures struct {
	// Requests counts measured requests by result (success or an error class); Warmup counts
	// those that finished while the warmup gate was closed (in no other figure).
	Requests map[string]int64 `json:"requests"`
	Warmup   int64            `json:"warmup_requests"`
	// WarmupResults counts the warmup requests by result, so a target that failed while
	// warming up says how.
	WarmupResults map[string]int64 `json:"warmup_results"`
	// Latency distributions of successful requests, in seconds: time to first token, to the
	// first output (non-reasoning) token, inter-token latency per token (a k-token chunk after
	// a gap g counts k times g/k, as inferprobe_inter_token_latency_seconds), every gap between
	// token chunks, time per output token, end-to-end time per output token (normalised TPOT:
	// e2e / N) and end-to-end latency.
	TTFT         *Dist `json:"ttft"`
	TTFOT        *Dist `json:"ttfot"`
	ITL          *Dist `json:"itl"`
	InterChunk   *Dist `json:"inter_chunk"`
	TPOT         *Dist `json:"tpot"`
	NormTPOT     *Dist `json:"normalized_tpot"`
	E2E          *Dist `json:"e2e"`
	PromptTokens int64 `json:"prompt_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// Goodput counts successful requests that met every SLO; GoodputRatio divides it by all
	// measured requests.
	Goodput      int64   `json:"goodput_requests"`
	GoodputRatio float64 `json:"goodput_ratio"`
	// Throughput over the stage's window (first intended send to last end).
	Throughput Throughput `json:"throughput"`

	firstStart, lastEnd time.Time
}

// Throughput is tokens and requests per second over a window.
type Throughput struct {
	WindowSeconds       float64 `json:"window_seconds"`
	RequestsPerSecond   float64 `json:"requests_per_second"`
	InputTokensPerSec   float64 `json:"input_tokens_per_second"`
	OutputTokensPerSec  float64 `json:"output_tokens_per_second"`
	SuccessfulPerSecond float64 `json:"successful_requests_per_second"`
}

// LoadSummary says how well the load generator kept its schedule.
type LoadSummary struct {
	// RequestedRate is the stage's rate (0 for closed loop); AchievedRate is requests sent
	// per second of the stage's duration.
	RequestedRate float64 `json:"requested_rate"`
	AchievedRate  float64 `json:"achieved_rate"`
	// Sent counts requests sent; Dropped those the in-flight cap refused.
	Sent    int64 `json:"sent"`
	Dropped int64 `json:"dropped"`
	// SendDuration is the time from the first to the last request sent, in seconds.
	SendDuration float64 `json:"send_duration_seconds"`
	// ScheduleDelay is t0 minus the intended send time, in seconds.
	ScheduleDelay *Dist `json:"schedule_delay"`

	firstSend, lastSend time.Time
}

func newFigures() *Figures {
	return &Figures{Requests: map[string]int64{}, WarmupResults: map[string]int64{}, TTFT: NewDist(), TTFOT: NewDist(),
		ITL: NewDist(), InterChunk: NewDist(), TPOT: NewDist(), NormTPOT: NewDist(), E2E: NewDist()}
}

// finish computes the derived figures.
func (f *Figures) finish() {
	var total int64
	for _, n := range f.Requests {
		total += n
	}
	if total > 0 {
		f.GoodputRatio = float64(f.Goodput) / float64(total)
	}
	if w := f.lastEnd.Sub(f.firstStart).Seconds(); w > 0 {
		f.Throughput = Throughput{
			WindowSeconds:       w,
			RequestsPerSecond:   float64(total) / w,
			InputTokensPerSec:   float64(f.PromptTokens) / w,
			OutputTokensPerSec:  float64(f.OutputTokens) / w,
			SuccessfulPerSecond: float64(f.Requests["success"]) / w,
		}
	}
}

// merge adds o's figures to f (shards of one stage).
func (f *Figures) merge(o *Figures) error {
	for k, v := range o.Requests {
		f.Requests[k] += v
	}
	f.Warmup += o.Warmup
	for k, v := range o.WarmupResults {
		f.WarmupResults[k] += v
	}
	for _, p := range [][2]*Dist{{f.TTFT, o.TTFT}, {f.TTFOT, o.TTFOT}, {f.ITL, o.ITL}, {f.InterChunk, o.InterChunk},
		{f.TPOT, o.TPOT}, {f.NormTPOT, o.NormTPOT}, {f.E2E, o.E2E}} {
		if err := p[0].Merge(p[1]); err != nil {
			return err
		}
	}
	f.PromptTokens += o.PromptTokens
	f.OutputTokens += o.OutputTokens
	f.Goodput += o.Goodput
	// Shards run side by side over the same window: throughputs add up.
	total := f.Throughput.WindowSeconds
	if o.Throughput.WindowSeconds > total {
		total = o.Throughput.WindowSeconds
	}
	f.Throughput = Throughput{
		WindowSeconds:       total,
		RequestsPerSecond:   f.Throughput.RequestsPerSecond + o.Throughput.RequestsPerSecond,
		InputTokensPerSec:   f.Throughput.InputTokensPerSec + o.Throughput.InputTokensPerSec,
		OutputTokensPerSec:  f.Throughput.OutputTokensPerSec + o.Throughput.OutputTokensPerSec,
		SuccessfulPerSecond: f.Throughput.SuccessfulPerSecond + o.Throughput.SuccessfulPerSecond,
	}
	var n int64
	for _, v := range f.Requests {
		n += v
	}
	if n > 0 {
		f.GoodputRatio = float64(f.Goodput) / float64(n)
	}
	return nil
}

// Figure names the headline figures that repeat statistics are computed for.
const (
	FigureTTFTP50       = "ttft_p50"
	FigureTTFTP99       = "ttft_p99"
	FigureITLP50        = "itl_p50"
	FigureTPOTP50       = "tpot_p50"
	FigureE2EP50        = "e2e_p50"
	FigureOutputTokPerS = "output_tokens_per_second"
	FigureRequestsPerS  = "requests_per_second"
	FigureGoodputRatio  = "goodput_ratio"
)

// headlines returns the headline figures of f.
func headlines(f *Figures) map[string]float64 {
	return map[string]float64{
		FigureTTFTP50:       f.TTFT.Quantile(0.5),
		FigureTTFTP99:       f.TTFT.Quantile(0.99),
		FigureITLP50:        f.ITL.Quantile(0.5),
		FigureTPOTP50:       f.TPOT.Quantile(0.5),
		FigureE2EP50:        f.E2E.Quantile(0.5),
		FigureOutputTokPerS: f.Throughput.OutputTokensPerSec,
		FigureRequestsPerS:  f.Throughput.RequestsPerSecond,
		FigureGoodputRatio:  f.GoodputRatio,
	}
}

// Figures returns the names of the headline figures, sorted.
func FigureNames() []string {
	names := make([]string, 0, 8)
	for k := range headlines(newFigures()) {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// RepeatStats are the statistics of one target's stage's headline figures across runs.
type RepeatStats struct {
	Target string `json:"target"`
	Stage  int    `json:"stage"`
	// Figures maps a headline figure name to its statistics.
	Figures map[string]Stat `json:"figures"`
}

// Stat summarises one figure over n runs: mean, sample standard deviation, coefficient of
// variation (stddev / mean) and the 95% confidence interval of the mean (Student's t).
type Stat struct {
	N      int        `json:"n"`
	Values []float64  `json:"values"`
	Mean   float64    `json:"mean"`
	Stddev float64    `json:"stddev"`
	CV     float64    `json:"cv"`
	CI95   [2]float64 `json:"ci95"`
}

// NewStat computes the statistics of values.
func NewStat(values []float64) Stat {
	s := Stat{N: len(values), Values: slices.Clone(values)}
	if s.N == 0 {
		return s
	}
	for _, v := range values {
		s.Mean += v
	}
	s.Mean /= float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, v := range values {
			ss += (v - s.Mean) * (v - s.Mean)
		}
		s.Stddev = math.Sqrt(ss / float64(s.N-1))
	}
	if s.Mean != 0 {
		s.CV = s.Stddev / math.Abs(s.Mean)
	}
	half := TCritical95(s.N-1) * s.Stddev / math.Sqrt(float64(s.N))
	s.CI95 = [2]float64{s.Mean - half, s.Mean + half}
	return s
}

// TCritical95 returns the two-sided 95% critical value of Student's t with df degrees of
// freedom (0 for df < 1, where no interval exists).
func TCritical95(df int) float64 {
	table := [...]float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	switch {
	case df < 1:
		return 0
	case df < len(table):
		return table[df]
	// Between the tabled values up to df 119, the value at a band's lower end: never narrower
	// than the exact interval (t falls with df), at most 1% wider. From 120 on, the normal
	// 1.960, at most 1% narrow.
	case df < 40:
		return 2.042
	case df < 60:
		return 2.021
	case df < 80:
		return 2.000
	case df < 120:
		return 1.990
	}
	return 1.960
}

// repeatStats computes RepeatStats over runs, per target and stage.
func repeatStats(runs []Pass) []RepeatStats {
	if len(runs) < 2 {
		return nil
	}
	var out []RepeatStats
	for ti, t := range runs[0].Targets {
		for si := range t.Stages {
			values := map[string][]float64{}
			for _, r := range runs {
				if ti >= len(r.Targets) || si >= len(r.Targets[ti].Stages) {
					continue
				}
				for k, v := range headlines(&r.Targets[ti].Stages[si].Figures) {
					values[k] = append(values[k], v)
				}
			}
			rs := RepeatStats{Target: t.Name, Stage: si, Figures: map[string]Stat{}}
			for k, v := range values {
				rs.Figures[k] = NewStat(v)
			}
			out = append(out, rs)
		}
	}
	return out
}
