package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/internal/simtest"
	"github.com/inferprobe/inferprobe/internal/testkit"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/simulator"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func startSim(t *testing.T, mutate func(*simulator.Config)) string {
	t.Helper()
	_, url := simtest.Start(t, 5, mutate)
	return url
}

func parse(t *testing.T, y string) *config.Config {
	t.Helper()
	c, err := engine.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exactQuantile is the value of 0-based rank ⌊q·(n−1)⌋ of sorted values: the quantile a
// report's percentile approximates within RelativeAccuracy.
func exactQuantile(sorted []float64, q float64) float64 {
	i := int(math.Floor(q * float64(len(sorted)-1)))
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// TestRunAgainstSimulator: a two-stage run with one warmup pass and two measured ones against a
// simulator with known timing. Warmup passes are absent; every percentile is within the stated
// relative error of the exact percentile of the same requests (from the per-request output);
// TTFT and ITL sit where the simulator puts them; repeat statistics cover both passes.
func TestRunAgainstSimulator(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase, c.TTFTPerPromptToken, c.ITL, c.ITLJitter = 30*time.Millisecond, 0, 4*time.Millisecond, 0.5
	})
	cfg := parse(t, fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic:
      pacer: stages
      seed: 9
      stages: [{rate: 40, duration: 1s}, {concurrency: 4, duration: 1s}]
    request: {input_tokens: 16, max_tokens: 12, ignore_eos: true}
    warmup: {requests: 2, min_duration: 0s}
    slo: {ttft: 1s}
`, url))
	var lines bytes.Buffer
	rep, err := Run(context.Background(), cfg, Options{WarmupRuns: 1, RepeatRuns: 2, Requests: &lines})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 2 || rep.WarmupRuns != 1 || rep.SchemaVersion != SchemaVersion {
		t.Fatalf("runs %d warmup %d schema %d", len(rep.Runs), rep.WarmupRuns, rep.SchemaVersion)
	}
	// Ground truth: the per-request lines of the measured runs, by run and stage.
	ttfts := map[[2]int][]float64{}
	e2es := map[[2]int][]float64{}
	runsSeen := map[int]bool{}
	sc := bufio.NewScanner(&lines)
	for sc.Scan() {
		var l RequestLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		runsSeen[l.Run] = true
		if !l.Warmup && l.Result == prober.ResultSuccess {
			k := [2]int{l.Run, l.Stage}
			ttfts[k] = append(ttfts[k], l.TTFT)
			e2es[k] = append(e2es[k], l.E2E)
		}
	}
	if len(runsSeen) != 2 || !runsSeen[0] || !runsSeen[1] {
		t.Errorf("per-request output has runs %v, want only the measured 0 and 1", runsSeen)
	}
	for ri, run := range rep.Runs {
		st := run.Targets[0].Stages
		if len(st) != 2 || st[0].Rate != 40 || st[1].Concurrency != 4 {
			t.Fatalf("run %d stages %+v", ri, st)
		}
		if st[0].Load.Sent != 40 || st[0].Warmup != 2 {
			t.Errorf("run %d stage 0: sent %d warmup %d, want 40 sent, 2 warmup", ri, st[0].Load.Sent, st[0].Warmup)
		}
		if math.Abs(st[0].Load.AchievedRate-40) > 0.5 {
			t.Errorf("run %d stage 0 achieved %.2f req/s, want 40", ri, st[0].Load.AchievedRate)
		}
		for si, s := range st {
			for name, pair := range map[string]struct {
				d     *Dist
				exact []float64
			}{"ttft": {s.TTFT, ttfts[[2]int{ri, si}]}, "e2e": {s.E2E, e2es[[2]int{ri, si}]}} {
				exact := slices.Clone(pair.exact)
				slices.Sort(exact)
				if int64(len(exact)) != pair.d.Count() || len(exact) < 20 {
					t.Fatalf("run %d stage %d %s: %d values in the sketch, %d in the records", ri, si, name, pair.d.Count(), len(exact))
				}
				sum := pair.d.Summary()
				for i, q := range quantiles {
					want := exactQuantile(exact, q)
					got := sum.Percentiles[percentileNames[i]]
					if math.Abs(got-want) > RelativeAccuracy*want*1.0001 {
						t.Errorf("run %d stage %d %s %s = %.6f, exact %.6f: off by more than %.1f%%", ri, si, name, percentileNames[i], got, want, RelativeAccuracy*100)
					}
				}
				if sum.Min != exact[0] || sum.Max != exact[len(exact)-1] {
					t.Errorf("%s min/max %v/%v, exact %v/%v", name, sum.Min, sum.Max, exact[0], exact[len(exact)-1])
				}
			}
			// The simulator's timing, in the right unit: TTFT about 30 ms, ITL a mean 4 ms
			// (a loaded machine only adds: its timers fire late, never early).
			if p50 := s.TTFT.Quantile(0.5); p50 < 0.029 || p50 > 0.060 {
				t.Errorf("stage %d TTFT p50 %.4f, want about 30 ms", si, p50)
			}
			if itl := s.ITL.Summary(); itl.Mean < 0.0038 || itl.Mean > 0.008 {
				t.Errorf("stage %d ITL mean %.4f, want 4 ms", si, itl.Mean)
			}
			if s.GoodputRatio != 1 || s.OutputTokens != 12*s.Requests[prober.ResultSuccess] {
				t.Errorf("stage %d goodput %.3f, output tokens %d for %d requests", si, s.GoodputRatio, s.OutputTokens, s.Requests[prober.ResultSuccess])
			}
		}
	}
	if len(rep.Repeats) != 2 || rep.Repeats[0].Figures[FigureTTFTP50].N != 2 {
		t.Errorf("repeats %+v, want two stages over two runs", rep.Repeats)
	}
	validate(t, rep)
}

// TestEveryDistributionMatchesTheRecords: every percentile of every distribution of a run
// (TTFT, TTFOT, ITL, inter-chunk gaps, TPOT, normalised TPOT, e2e and the schedule delay) is
// within the sketch's stated bound of the exact one computed from requests.jsonl, against a
// simulator that sends 3 tokens per chunk with jittered gaps, so ITL's per-token weighting
// (a k-token chunk after a gap g is k values g/k) is what is checked, not a copy of the gaps.
func TestEveryDistributionMatchesTheRecords(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase, c.TTFTPerPromptToken, c.ITL, c.ITLJitter, c.ChunkTokens = 20*time.Millisecond, 0, 3*time.Millisecond, 0.6, 3
	})
	cfg := parse(t, fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic:
      pacer: stages
      seed: 5
      stages: [{rate: 30, duration: 1s}, {concurrency: 3, duration: 1s}]
    request: {input_tokens: 8, max_tokens: 13, ignore_eos: true}
    warmup: {requests: 1, min_duration: 0s}
`, url))
	var lines bytes.Buffer
	rep, err := Run(context.Background(), cfg, Options{Requests: &lines})
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		stage int
		name  string
	}
	exact := map[key][]float64{}
	sc := bufio.NewScanner(&lines)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l RequestLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		exact[key{l.Stage, "schedule_delay"}] = append(exact[key{l.Stage, "schedule_delay"}], l.Delay)
		if l.Warmup || l.Result != prober.ResultSuccess {
			continue
		}
		add := func(name string, v ...float64) { exact[key{l.Stage, name}] = append(exact[key{l.Stage, name}], v...) }
		add("ttft", l.TTFT)
		add("ttfot", l.TTFOT)
		add("e2e", l.E2E)
		add("tpot", l.TPOT)
		add("normalized_tpot", l.NormTPOT)
		add("inter_chunk", l.Gaps...)
		if len(l.GapTokens) != len(l.Gaps) {
			t.Fatalf("request %d: %d gaps, %d gap token counts", l.Seq, len(l.Gaps), len(l.GapTokens))
		}
		var tokens int
		for i, g := range l.Gaps {
			k := l.GapTokens[i]
			tokens += k
			for range k {
				add("itl", g/float64(k))
			}
		}
		// 13 tokens in chunks of 3: the first chunk holds 3, the rest follow in 4 gaps.
		if len(l.Gaps) != 4 || tokens != 10 || l.OutputTokens != 13 {
			t.Errorf("request %d: %d gaps carrying %d tokens of %d, want 4 gaps and 10 of 13", l.Seq, len(l.Gaps), tokens, l.OutputTokens)
		}
	}
	st := rep.Runs[0].Targets[0].Stages
	if len(st) != 2 {
		t.Fatalf("%d stages", len(st))
	}
	for si, s := range st {
		dists := map[string]*Dist{"ttft": s.TTFT, "ttfot": s.TTFOT, "itl": s.ITL, "inter_chunk": s.InterChunk,
			"tpot": s.TPOT, "normalized_tpot": s.NormTPOT, "e2e": s.E2E, "schedule_delay": s.Load.ScheduleDelay}
		for name, d := range dists {
			values := slices.Clone(exact[key{si, name}])
			slices.Sort(values)
			if int64(len(values)) != d.Count() || len(values) < 20 {
				t.Errorf("stage %d %s: %d values in the sketch, %d in the records", si, name, d.Count(), len(values))
				continue
			}
			sum := d.Summary()
			for i, q := range quantiles {
				want := exactQuantile(values, q)
				if got := sum.Percentiles[percentileNames[i]]; math.Abs(got-want) > RelativeAccuracy*want*1.0001+1e-9 {
					t.Errorf("stage %d %s %s = %.7f, exact %.7f: off by more than %.1f%%", si, name, percentileNames[i], got, want, RelativeAccuracy*100)
				}
			}
			var mean float64
			for _, v := range values {
				mean += v / float64(len(values))
			}
			if math.Abs(sum.Min-values[0]) > 1e-9 || math.Abs(sum.Max-values[len(values)-1]) > 1e-9 || math.Abs(sum.Mean-mean) > 1e-9*max(1, mean) {
				t.Errorf("stage %d %s min/mean/max %v/%v/%v, exact %v/%v/%v", si, name, sum.Min, sum.Mean, sum.Max, values[0], mean, values[len(values)-1])
			}
		}
		// ITL is per token: 3 tokens come about 3 ms apart each, so a gap is about 9 ms and
		// ITL about 3 ms (a loaded machine only adds).
		if itl, gap := s.ITL.Summary().Mean, s.InterChunk.Summary().Mean; itl < 0.0027 || math.Abs(gap/itl-10.0/4) > 0.01 {
			t.Errorf("stage %d: ITL mean %.5f, gap mean %.5f; want ITL about 3 ms and gaps 10/4 of it (10 tokens in 4 gaps)", si, itl, gap)
		}
	}
}

// TestRepeatUntilCV: with a CV threshold every pair of passes meets, the runs stop after two of
// at most four and say so; with one no real figure meets, all four run.
func TestRepeatUntilCV(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = 5*time.Millisecond, time.Millisecond })
	y := fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, seed: 6, stages: [{rate: 30, duration: 300ms}]}
    request: {input_tokens: 4, max_tokens: 3, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`, url)
	for _, tc := range []struct {
		cv       float64
		wantRuns int
		stops    bool
	}{
		{1e6, 2, true},    // any two passes' CV is below a million
		{1e-12, 4, false}, // two passes' throughputs never agree to 12 digits
	} {
		progress := &testkit.LockedBuffer{}
		rep, err := Run(context.Background(), parse(t, y), Options{RepeatRuns: 4, RepeatUntilCV: tc.cv,
			CVFigure: FigureRequestsPerS, Progress: progress})
		if err != nil {
			t.Fatal(err)
		}
		stopped := strings.Contains(progress.String(), "the coefficient of variation of requests_per_second is below")
		if len(rep.Runs) != tc.wantRuns || stopped != tc.stops || rep.Repeats[0].Figures[FigureRequestsPerS].N != tc.wantRuns {
			t.Errorf("repeat-until-cv %g: %d runs (stop line %v), want %d (%v); progress:\n%s", tc.cv, len(rep.Runs), stopped, tc.wantRuns, tc.stops, progress)
		}
	}
}

// fakeAccelerator serves accelerator series as the NVML collector names them, for two GPUs:
// each draws 150 W (its energy counter grows with the time since start) and has 10 GiB in use
// during stage 0 and 20 GiB after the switch time.
type fakeAccelerator struct {
	start, switchAt time.Time
}

var (
	fakeAccelUp     = prometheus.NewDesc("inferprobe_accelerator_up", "up", nil, nil)
	fakeAccelEnergy = prometheus.NewDesc("inferprobe_accelerator_energy_joules_total", "energy", []string{"gpu"}, nil)
	fakeAccelMemory = prometheus.NewDesc("inferprobe_accelerator_memory_used_bytes", "memory", []string{"gpu"}, nil)
)

func (f *fakeAccelerator) Describe(ch chan<- *prometheus.Desc) {
	ch <- fakeAccelUp
	ch <- fakeAccelEnergy
	ch <- fakeAccelMemory
}

func (f *fakeAccelerator) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	mem := 10.0 * (1 << 30)
	if now.After(f.switchAt) {
		mem = 20.0 * (1 << 30)
	}
	ch <- prometheus.MustNewConstMetric(fakeAccelUp, prometheus.GaugeValue, 1)
	for _, gpu := range []string{"0", "1"} {
		ch <- prometheus.MustNewConstMetric(fakeAccelEnergy, prometheus.CounterValue, 1000+150*now.Sub(f.start).Seconds(), gpu)
		ch <- prometheus.MustNewConstMetric(fakeAccelMemory, prometheus.GaugeValue, mem, gpu)
	}
}

// TestAcceleratorSummaryPerStage: with an accelerator collector that is up, each stage's
// summary has the GPUs' power (the energy counter's rate, summed) and their memory in use at
// the stage's end.
func TestAcceleratorSummaryPerStage(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = 2*time.Millisecond, time.Millisecond })
	cfg := parse(t, fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, seed: 8, stages: [{rate: 10, duration: 600ms}, {rate: 10, duration: 600ms}]}
    request: {input_tokens: 4, max_tokens: 2, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`, url))
	now := time.Now()
	// Stage 0 ends 600 ms into the pass: the memory switches well after its start, and stage
	// 0's end is read when stage 1 starts, after it (a late timer only delays both).
	acc := &fakeAccelerator{start: now, switchAt: now.Add(300 * time.Millisecond)}
	rep, err := Run(context.Background(), cfg, Options{Accelerator: acc})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range rep.Runs[0].Targets[0].Stages {
		a := st.Accelerator
		if a == nil || !a.Up {
			t.Fatalf("stage %d accelerator summary %+v, want one that is up", st.Index, a)
		}
		// The counter is read in Collect and the window timed after Gather: on a loaded
		// machine the two clocks may be some milliseconds apart, hence 10%.
		if w := a.Rates["inferprobe_accelerator_energy_joules_total"]; math.Abs(w-300) > 30 {
			t.Errorf("stage %d power %.2f W, want 2 × 150 W (not one GPU's, not joules)", st.Index, w)
		}
		if m := a.Gauges["inferprobe_accelerator_memory_used_bytes"]; m != 40*(1<<30) {
			t.Errorf("stage %d memory in use %v at its end, want 2 × 20 GiB", st.Index, m)
		}
		if _, ok := a.Gauges["inferprobe_accelerator_up"]; ok {
			t.Errorf("stage %d: up counted as a gauge", st.Index)
		}
	}
	validate(t, rep)
}

// TestAdapterFigures: with a LoRA split, each stage's per-adapter figures add up to the stage's
// (requests by result, tokens, distribution counts), every adapter got requests, and merging
// two shards adds each adapter's figures.
func TestAdapterFigures(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase, c.ITL, c.Adapters = 2*time.Millisecond, time.Millisecond, []string{"sql-lora", "chat-lora"}
	})
	y := fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, seed: 12, stages: [{rate: 60, duration: 1s}]}
    request:
      input_tokens: 4
      max_tokens: 3
      ignore_eos: true
      lora_traffic_split: [{name: inferprobe-sim, split: 0.5}, {name: sql-lora, split: 0.3}, {name: chat-lora, split: 0.2}]
    warmup: {requests: 0, min_duration: 0s}
`, url)
	sumAdapters := func(t *testing.T, what string, st Stage) {
		t.Helper()
		if len(st.Adapters) != 3 {
			t.Fatalf("%s: adapters %v, want the three of the split", what, slices.Collect(maps.Keys(st.Adapters)))
		}
		requests := map[string]int64{}
		var out, prompt, e2e, itl int64
		for name, f := range st.Adapters {
			if f.Requests[prober.ResultSuccess] == 0 {
				t.Errorf("%s: adapter %q got no successful request", what, name)
			}
			for k, v := range f.Requests {
				requests[k] += v
			}
			out, prompt, e2e, itl = out+f.OutputTokens, prompt+f.PromptTokens, e2e+f.E2E.Count(), itl+f.ITL.Count()
		}
		if !maps.Equal(requests, st.Requests) || out != st.OutputTokens || prompt != st.PromptTokens || e2e != st.E2E.Count() || itl != st.ITL.Count() {
			t.Errorf("%s: adapters add up to %v, tokens %d/%d, counts e2e %d itl %d; the stage has %v, %d/%d, %d, %d",
				what, requests, prompt, out, e2e, itl, st.Requests, st.PromptTokens, st.OutputTokens, st.E2E.Count(), st.ITL.Count())
		}
	}
	var shards []*Report
	for i := range 2 {
		rep, err := Run(context.Background(), parse(t, y), Options{Shard: &Shard{Index: i, Count: 2}})
		if err != nil {
			t.Fatal(err)
		}
		sumAdapters(t, fmt.Sprint("shard ", i), rep.Runs[0].Targets[0].Stages[0])
		shards = append(shards, rep)
	}
	merged, err := Merge(shards...)
	if err != nil {
		t.Fatal(err)
	}
	ms := merged.Runs[0].Targets[0].Stages[0]
	sumAdapters(t, "merged", ms)
	for name, f := range ms.Adapters {
		a, b := shards[0].Runs[0].Targets[0].Stages[0].Adapters[name], shards[1].Runs[0].Targets[0].Stages[0].Adapters[name]
		if f.E2E.Count() != a.E2E.Count()+b.E2E.Count() || f.OutputTokens != a.OutputTokens+b.OutputTokens {
			t.Errorf("merged adapter %q: e2e count %d, output tokens %d; shards %d+%d, %d+%d", name, f.E2E.Count(), f.OutputTokens,
				a.E2E.Count(), b.E2E.Count(), a.OutputTokens, b.OutputTokens)
		}
	}
	validate(t, merged)
}

// validate checks a report against report.schema.json.
func validate(t *testing.T, rep *Report) {
	t.Helper()
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	f, err := os.Open("report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("report.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("report does not validate against report.schema.json: %v", err)
	}
	// A report that breaks the schema must fail it, or the check proves nothing.
	var bad map[string]any
	_ = json.Unmarshal(data, &bad)
	bad["schema_version"] = 99
	if sch.Validate(bad) == nil {
		t.Error("the schema accepts schema_version 99")
	}
}

// TestSchemaResultClasses: the schema lists exactly the prober's result classes.
func TestSchemaResultClasses(t *testing.T) {
	data, err := os.ReadFile("report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Defs struct {
			Figures struct {
				Properties struct {
					Requests struct {
						PropertyNames struct {
							Enum []string `json:"enum"`
						} `json:"propertyNames"`
					} `json:"requests"`
				} `json:"properties"`
			} `json:"figures"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(s.Defs.Figures.Properties.Requests.PropertyNames.Enum))
	for _, r := range prober.Results {
		if !slices.Contains(got, r) {
			t.Errorf("schema lacks result class %q", r)
		}
	}
}

func TestStat(t *testing.T) {
	s := NewStat([]float64{10, 12, 14})
	if s.N != 3 || s.Mean != 12 || math.Abs(s.Stddev-2) > 1e-12 || math.Abs(s.CV-2.0/12) > 1e-12 {
		t.Fatalf("stat %+v", s)
	}
	// t(0.975, 2) = 4.303: half width 4.303 × 2 / √3.
	half := 4.303 * 2 / math.Sqrt(3)
	if math.Abs(s.CI95[0]-(12-half)) > 1e-9 || math.Abs(s.CI95[1]-(12+half)) > 1e-9 {
		t.Errorf("ci95 %v, want 12 ± %.4f", s.CI95, half)
	}
	if one := NewStat([]float64{5}); one.Stddev != 0 || one.CI95 != [2]float64{5, 5} {
		t.Errorf("one value: %+v", one)
	}
	if big := NewStat(make([]float64, 200)); TCritical95(199) != 1.96 || big.N != 200 {
		t.Errorf("large n: %+v", big)
	}
}

func TestDistSummaryAndMerge(t *testing.T) {
	a, b, all := NewDist(), NewDist(), NewDist()
	var values []float64
	for i := 1; i <= 10000; i++ {
		v := float64(i) * 1e-4 * (1 + 0.3*math.Sin(float64(i)))
		values = append(values, v)
		all.Add(v)
		if i%3 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	a.Add(math.NaN())
	a.Add(-1)
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	sa, sall := a.Summary(), all.Summary()
	if sa.Count != 10000 || math.Abs(sa.Mean-sall.Mean) > 1e-12 || math.Abs(sa.Stddev-sall.Stddev) > 1e-9 || sa.Min != sall.Min || sa.Max != sall.Max {
		t.Errorf("merged %+v, whole %+v", sa, sall)
	}
	slices.Sort(values)
	for i, q := range quantiles {
		want := exactQuantile(values, q)
		if got := sa.Percentiles[percentileNames[i]]; math.Abs(got-want) > RelativeAccuracy*want {
			t.Errorf("%s = %v, exact %v", percentileNames[i], got, want)
		}
	}
	// JSON round trip keeps the sketch.
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Dist
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Summary(); got.Count != sa.Count || got.Percentiles["p99"] != sa.Percentiles["p99"] || math.Abs(got.Stddev-sa.Stddev) > 1e-12 {
		t.Errorf("round trip %+v, want %+v", got, sa)
	}
	if err := json.Unmarshal([]byte(`{"count": 3, "sketch": "bm90IGEgc2tldGNo"}`), &back); err == nil {
		t.Error("a corrupt sketch was accepted")
	}
}

// goldenReport is a fixed report for the console table.
func goldenReport() *Report {
	stage := func(idx int, rate float64, conc int, base float64) Stage {
		f := newFigures()
		for i := range 100 {
			v := base * (1 + float64(i)/100)
			f.TTFT.Add(v)
			f.ITL.Add(v / 10)
			f.TPOT.Add(v / 10)
			f.E2E.Add(v * 5)
		}
		f.Requests = map[string]int64{"success": 98, "http_5xx": 2}
		f.Warmup = 3
		f.Goodput = 95
		f.OutputTokens = 98 * 16
		f.firstStart = time.Unix(0, 0)
		f.lastEnd = time.Unix(10, 0)
		f.finish()
		return Stage{Index: idx, Rate: rate, Concurrency: conc, Duration: 10, Figures: *f,
			Load: LoadSummary{RequestedRate: rate, Sent: 103, Dropped: 1, ScheduleDelay: NewDist()}}
	}
	run := func(i int, scale float64) Pass {
		return Pass{Index: i, Targets: []Target{{Name: "llama", Model: "m", Stages: []Stage{stage(0, 10, 0, 0.05*scale), stage(1, 0, 8, 0.08*scale)}}}}
	}
	r := &Report{SchemaVersion: SchemaVersion, Runs: []Pass{run(0, 1), run(1, 1.02), run(2, 0.99)}}
	r.Repeats = repeatStats(r.Runs)
	return r
}

func TestTableGolden(t *testing.T) {
	var b bytes.Buffer
	if err := goldenReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("table differs from %s (go test -run TestTableGolden -update to accept):\n%s", path, b.String())
	}
}

func TestCheckRejectsEndlessPlans(t *testing.T) {
	cfg := parse(t, "targets: [{name: a, url: 'http://127.0.0.1:1', model: m, traffic: {pacer: poisson, rate: 2}}]\n")
	if err := Check(cfg); err == nil || !strings.Contains(err.Error(), `target "a"`) || !strings.Contains(err.Error(), "never ends") {
		t.Errorf("Check = %v, want an error naming target a", err)
	}
	if _, err := Run(context.Background(), cfg, Options{}); err == nil {
		t.Error("Run accepted a plan that never ends")
	}
	Quick(cfg, 0, 0, 2*time.Second)
	if err := cfg.Validate(engine.Extensions()...); err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg); err != nil {
		t.Errorf("after Quick: %v", err)
	}
	tr := cfg.Targets[0].Traffic
	if tr.Stages[0].Rate != 2 || tr.Stages[0].Pacer != "poisson" || tr.Stages[0].Duration != 2*time.Second {
		t.Errorf("Quick kept %+v, want the target's own poisson rate for 2s", tr.Stages[0])
	}
	Quick(cfg, 0, 16, time.Second)
	if st := cfg.Targets[0].Traffic.Stages[0]; st.Concurrency != 16 || cfg.Targets[0].Traffic.MaxInFlight < 16 {
		t.Errorf("Quick concurrency: %+v", cfg.Targets[0].Traffic)
	}
}

// BenchmarkBuilder measures report building: one finished record (16 gaps) per op. Run with
// -benchtime=1000000x for the 1,000,000-record figure.
func BenchmarkBuilder(b *testing.B) {
	cfg := &config.Config{Targets: []config.Target{{Name: "t", Model: "m",
		Traffic: config.Traffic{Pacer: "stages", Stages: []config.Stage{{Rate: 100, Duration: time.Hour}}}}}}
	bl, err := NewBuilder(cfg, 0, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	info := &prober.TargetInfo{Name: "t", Model: "m"}
	now := time.Now()
	rec := &prober.Record{Target: info, Result: prober.ResultSuccess, Chunks: 17, OutputTokens: 17, PromptTokens: 100}
	for i := range 16 {
		rec.Gaps = append(rec.Gaps, time.Duration(8+i%5)*time.Millisecond)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec.Intended = now.Add(time.Duration(i) * time.Millisecond)
		rec.Start = rec.Intended.Add(time.Duration(i%7) * time.Microsecond)
		rec.FirstToken = time.Duration(40+i%50) * time.Millisecond
		rec.LastToken = rec.FirstToken + 160*time.Millisecond
		rec.End = rec.LastToken + time.Millisecond
		bl.Observe(prober.Event{Kind: prober.EventRequestFinished, Target: info, Record: rec})
		i++
	}
	b.StopTimer()
	if p := bl.Pass(nil); p.Targets[0].Stages[0].Requests["success"] != int64(i) {
		b.Fatalf("built %d of %d", p.Targets[0].Stages[0].Requests["success"], i)
	}
}

// BenchmarkReportFinish times what follows BenchmarkBuilder's loop at the end of a run: Pass
// (the derived figures of every stage) and the JSON encoding of the report, sketches included,
// for a stage that took 1,000,000 records (fed once, untimed). Its cost follows the sketches'
// bins, not the number of records.
func BenchmarkReportFinish(b *testing.B) {
	cfg := &config.Config{Targets: []config.Target{{Name: "t", Model: "m",
		Traffic: config.Traffic{Pacer: "stages", Stages: []config.Stage{{Rate: 100, Duration: time.Hour}}}}}}
	bl, err := NewBuilder(cfg, 0, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	info := &prober.TargetInfo{Name: "t", Model: "m"}
	now := time.Now()
	rec := &prober.Record{Target: info, Result: prober.ResultSuccess, Chunks: 17, OutputTokens: 17, PromptTokens: 100}
	for i := range 16 {
		rec.Gaps = append(rec.Gaps, time.Duration(8+i%5)*time.Millisecond)
	}
	const n = 1_000_000
	for i := range n {
		rec.Intended = now.Add(time.Duration(i) * time.Millisecond)
		rec.Start = rec.Intended.Add(time.Duration(i%7) * time.Microsecond)
		rec.FirstToken = time.Duration(40+i%50) * time.Millisecond
		rec.LastToken = rec.FirstToken + 160*time.Millisecond
		rec.End = rec.LastToken + time.Millisecond
		bl.Observe(prober.Event{Kind: prober.EventRequestFinished, Target: info, Record: rec})
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		rep := &Report{SchemaVersion: SchemaVersion, SketchRelativeAccuracy: RelativeAccuracy, Runs: []Pass{bl.Pass(nil)}}
		data, err := json.Marshal(rep)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
		if got := rep.Runs[0].Targets[0].Stages[0].Requests["success"]; got != n {
			b.Fatalf("built %d of %d", got, n)
		}
	}
	b.ReportMetric(float64(size), "report-bytes")
}

// TestShardsMergeExactly: two shards of a run, written as JSON and merged, count exactly what
// one unsharded run sends, and the merged percentiles are within the sketch's bound of the
// exact percentiles of both shards' requests.
func TestShardsMergeExactly(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase, c.TTFTPerPromptToken, c.ITL = 10*time.Millisecond, 0, 2*time.Millisecond
	})
	y := fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, seed: 4, stages: [{rate: 60, duration: 1s, pacer: poisson}, {concurrency: 3, duration: 500ms}]}
    request: {input_tokens: 8, max_tokens: 4, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`, url)
	single, err := Run(context.Background(), parse(t, y), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var shards []*Report
	var lines bytes.Buffer
	for i := range 2 {
		var l bytes.Buffer
		rep, err := Run(context.Background(), parse(t, y), Options{Shard: &Shard{Index: i, Count: 2}, Requests: &l})
		if err != nil {
			t.Fatal(err)
		}
		lines.Write(l.Bytes())
		data, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, &back)
	}
	merged, err := Merge(shards[1], shards[0])
	if err != nil {
		t.Fatal(err)
	}
	ms, ss := merged.Runs[0].Targets[0].Stages, single.Runs[0].Targets[0].Stages
	// The open-loop stage's schedule is the same arrivals split over the shards.
	if ms[0].Load.Sent != ss[0].Load.Sent || ms[0].Rate != 60 || ms[1].Concurrency != 3 {
		t.Errorf("merged stage 0 sent %d at %v/s, single run %d; stage 1 concurrency %d", ms[0].Load.Sent, ms[0].Rate, ss[0].Load.Sent, ms[1].Concurrency)
	}
	// The simulator has no faults and the lengths are fixed, so the merged open-loop stage's
	// counts are the single run's exactly, not only its arrivals.
	m0, s0 := ms[0], ss[0]
	if !maps.Equal(m0.Requests, s0.Requests) || m0.OutputTokens != s0.OutputTokens || m0.PromptTokens != s0.PromptTokens ||
		m0.Goodput != s0.Goodput || m0.GoodputRatio != s0.GoodputRatio || m0.E2E.Count() != s0.E2E.Count() ||
		m0.TTFT.Count() != s0.TTFT.Count() || m0.ITL.Count() != s0.ITL.Count() || m0.Load.ScheduleDelay.Count() != s0.Load.ScheduleDelay.Count() {
		t.Errorf("merged stage 0: requests %v, tokens %d/%d, goodput %d (%v), counts e2e %d ttft %d itl %d delay %d; single run: %v, %d/%d, %d (%v), %d %d %d %d",
			m0.Requests, m0.PromptTokens, m0.OutputTokens, m0.Goodput, m0.GoodputRatio, m0.E2E.Count(), m0.TTFT.Count(), m0.ITL.Count(), m0.Load.ScheduleDelay.Count(),
			s0.Requests, s0.PromptTokens, s0.OutputTokens, s0.Goodput, s0.GoodputRatio, s0.E2E.Count(), s0.TTFT.Count(), s0.ITL.Count(), s0.Load.ScheduleDelay.Count())
	}
	if m0.Requests[prober.ResultSuccess] == 0 {
		t.Errorf("merged stage 0 has no successful request: %v", m0.Requests)
	}
	var e2e []float64
	sc := bufio.NewScanner(&lines)
	for sc.Scan() {
		var l RequestLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.Stage == 0 && l.Result == prober.ResultSuccess {
			e2e = append(e2e, l.E2E)
		}
	}
	slices.Sort(e2e)
	if int64(len(e2e)) != ms[0].E2E.Count() {
		t.Fatalf("merged e2e count %d, shards' requests %d", ms[0].E2E.Count(), len(e2e))
	}
	sum := ms[0].E2E.Summary()
	for i, q := range quantiles {
		want := exactQuantile(e2e, q)
		if got := sum.Percentiles[percentileNames[i]]; math.Abs(got-want) > RelativeAccuracy*want*1.0001 {
			t.Errorf("merged e2e %s = %v, exact %v", percentileNames[i], got, want)
		}
	}
	validate(t, merged)
	if _, err := Merge(shards[0], shards[0]); err == nil {
		t.Error("a shard merged with itself")
	}
	if _, err := Merge(shards[0]); err == nil {
		t.Error("one of two shards merged alone")
	}
	if _, err := Merge(single); err == nil {
		t.Error("a whole-run report merged as a shard")
	}
}

// TestSweepFindsCapacity: against a simulator that runs at most 4 sequences of a known
// service time, the saturation probe finds max_num_seqs / service time within 10%, the stages
// climb to it, and the knee is the highest stage that kept the goodput target.
func TestSweepFindsCapacity(t *testing.T) {
	const ttft, itl = 100 * time.Millisecond, 20 * time.Millisecond
	url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase, c.TTFTPerPromptToken, c.ITL, c.ITLJitter, c.MaxNumSeqs = ttft, 0, itl, 0, 4
	})
	cfg := parse(t, fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {rate: 1, seed: 3}
    request: {input_tokens: 4, max_tokens: 2, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
    slo: {e2e: 400ms, target_ratio: 0.95}
`, url))
	rep, err := RunSweep(context.Background(), cfg, Options{}, Sweep{Type: SweepLinear, Stages: 3,
		StageDuration: 2 * time.Second, ProbeDuration: 3 * time.Second, ProbeConcurrency: 16})
	if err != nil {
		t.Fatal(err)
	}
	capacity := 4 / (ttft + itl).Seconds() // two tokens: the first at TTFT, one gap after it
	sw := rep.Sweeps[0]
	t.Logf("probe sustained %.2f req/s, configured capacity %.2f; stage rates %v; knee stage %d at %.2f", sw.ProbeRate, capacity, sw.Rates, sw.KneeStage, sw.KneeRate)
	if math.Abs(sw.ProbeRate-capacity)/capacity > 0.10 {
		t.Errorf("probe sustained %.2f req/s, want the capacity %.2f ± 10%%", sw.ProbeRate, capacity)
	}
	st := rep.Runs[0].Targets[0].Stages
	if len(st) != 3 || math.Abs(st[2].Rate-sw.ProbeRate) > 1e-9 || math.Abs(st[0].Rate-sw.ProbeRate/3) > 1e-9 {
		t.Fatalf("stages %v, want thirds of %v", sw.Rates, sw.ProbeRate)
	}
	if sw.GoodputTarget != 0.95 {
		t.Errorf("goodput target %g, want the target's slo.target_ratio 0.95", sw.GoodputTarget)
	}
	// The knee is where the goodput ratio stays at or above the target: every stage up to
	// it kept the target, and the one after it did not.
	for k, s := range st {
		kept := s.GoodputRatio >= sw.GoodputTarget
		if k <= sw.KneeStage && !kept {
			t.Errorf("stage %d, at or below the knee %d, has goodput %.3f below the target", k, sw.KneeStage, s.GoodputRatio)
		}
		if k == sw.KneeStage+1 && kept {
			t.Errorf("stage %d kept the goodput target (%.3f) right above the knee %d", k, s.GoodputRatio, sw.KneeStage)
		}
	}
	if sw.KneeStage >= 0 && sw.KneeRate != sw.Rates[sw.KneeStage] {
		t.Errorf("knee rate %v is not stage %d's rate %v", sw.KneeRate, sw.KneeStage, sw.Rates[sw.KneeStage])
	}
	if sw.KneeStage < 0 {
		t.Errorf("no stage kept the goodput target: %+v", st[0].Requests)
	}
	validate(t, rep)
	if got := sweepRates(SweepGeometric, 3, 100); math.Abs(got[0]-10) > 1e-9 || math.Abs(got[1]-math.Sqrt(1000)) > 1e-9 || got[2] != 100 {
		t.Errorf("geometric rates %v", got)
	}
	if _, err := RunSweep(context.Background(), cfg, Options{}, Sweep{Type: "log"}); err == nil {
		t.Error("a sweep of an unknown type ran")
	}
}

// TestKneeStaysAtTarget feeds goodput ratios to the knee rule: the knee is the last stage up
// to which every stage's ratio is at or above the target, so a stage that passes after a dip
// is not the knee, and a target met exactly counts as met.
func TestKneeStaysAtTarget(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ratios []float64
		target float64
		want   int
	}{
		{"all kept", []float64{1, 1, 0.995}, 0.99, 2},
		{"falls off at the third", []float64{1, 0.999, 0.98, 0.7}, 0.99, 1},
		{"a dip and a recovery above it", []float64{1, 0.97, 0.995, 0.999}, 0.99, 0},
		{"first below", []float64{0.98, 1, 1}, 0.99, -1},
		{"exactly at the target", []float64{0.95, 0.95, 0.949}, 0.95, 1},
		{"not a number is not kept", []float64{1, math.NaN(), 1}, 0.9, 0},
		{"a target of one", []float64{1, 1, 0.9999}, 1, 1},
		{"no stages", nil, 0.99, -1},
	} {
		if got := Knee(tc.ratios, tc.target); got != tc.want {
			t.Errorf("%s: Knee(%v, %g) = %d, want %d", tc.name, tc.ratios, tc.target, got, tc.want)
		}
	}
}

// TestWritePlots: the plots are real PNG and SVG images and the page shows each with the table.
func TestWritePlots(t *testing.T) {
	dir := t.TempDir()
	files, err := goldenReport().WritePlots(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range files {
		names[filepath.Base(f)] = true
	}
	for _, want := range []string{"latency.png", "latency.svg", "ttft_cdf.png", "itl_cdf.svg", "throughput.png", "index.html"} {
		if !names[want] {
			t.Errorf("no %s among %v", want, names)
		}
	}
	f, err := os.Open(filepath.Join(dir, "latency.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 500 {
		t.Errorf("latency.png: %v, bounds %v", err, img)
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "ttft_cdf.svg"))
	if !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("llama stage 1")) {
		t.Errorf("ttft_cdf.svg is not an SVG with the stage legend")
	}
	page, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	for _, want := range []string{`<img src="latency.svg"`, `<img src="throughput.svg"`, "TTFT p50", "across 3 runs", `href="report.json"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if bytes.Contains(page, []byte("http://")) || bytes.Contains(page, []byte("https://")) {
		t.Error("index.html refers to the network")
	}
}

// TestProgressBar: with ProgressBar the pass draws a bar with the counts, not periodic lines.
func TestProgressBar(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = time.Millisecond, time.Millisecond })
	cfg := parse(t, fmt.Sprintf("targets: [{name: s, url: %s, model: inferprobe-sim, traffic: {pacer: stages, stages: [{rate: 20, duration: 1s}]}, request: {max_tokens: 2}, warmup: {requests: 0, min_duration: 0s}}]\n", url))
	var out bytes.Buffer
	if _, err := Run(context.Background(), cfg, Options{Progress: &out, ProgressBar: true}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.Contains(s, "run 1/1: ") || !strings.Contains(s, " sent, ") || !strings.Contains(s, "%") || strings.Contains(s, "s, 0 sent") {
		t.Errorf("progress output:\n%q", s)
	}
}

// TestReportITLIsPerToken: with 4-token chunks the report's ITL is per token (as the metric
// is), its inter-chunk distribution per chunk, four times as long.
func TestReportITLIsPerToken(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase, c.TTFTPerPromptToken, c.ITL, c.ITLJitter, c.ChunkTokens = 5*time.Millisecond, 0, 3*time.Millisecond, 0, 4
	})
	cfg := parse(t, fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, stages: [{concurrency: 2, duration: 1s}]}
    request: {input_tokens: 4, max_tokens: 33, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`, url))
	rep, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := rep.Runs[0].Targets[0].Stages[0]
	itl, chunk := st.ITL.Summary(), st.InterChunk.Summary()
	t.Logf("ITL mean %.2f ms over %d, inter-chunk mean %.2f ms over %d, TTFOT p50 %.2f ms", itl.Mean*1e3, itl.Count, chunk.Mean*1e3, chunk.Count, st.TTFOT.Quantile(0.5)*1e3)
	// 33 tokens a request: a first chunk of 4, seven more of 4 and a last one of 1, so the
	// per-token ITL has N − k₁ = 29 values a request and the 8 chunk gaps are mostly 4 ITLs long.
	n := st.Requests[prober.ResultSuccess]
	if itl.Count != st.OutputTokens-4*n || chunk.Count != 8*n || itl.Mean < 0.0029 || itl.Mean > 0.006 || chunk.Mean < 3*itl.Mean {
		t.Errorf("ITL %d values, mean %.4f; inter-chunk %d values, mean %.4f; %d requests, %d tokens", itl.Count, itl.Mean, chunk.Count, chunk.Mean, n, st.OutputTokens)
	}
	if st.TTFOT.Count() != st.TTFT.Count() || st.TTFOT.Count() == 0 {
		t.Errorf("TTFOT count %d, TTFT count %d", st.TTFOT.Count(), st.TTFT.Count())
	}
}

// TestServerSummaryPerStage: with a metrics block, each stage reports what the model server's
// own metrics said over it; the server's generation-token rate agrees with the client's.
func TestServerSummaryPerStage(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase, c.TTFTPerPromptToken, c.ITL = 5*time.Millisecond, 0, 2*time.Millisecond
	})
	cfg := parse(t, fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, stages: [{rate: 10, duration: 3s}, {concurrency: 4, duration: 3s}]}
    request: {input_tokens: 8, max_tokens: 16, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
    metrics: {interval: 250ms, engine: vllm}
`, url))
	rep, err := Run(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range rep.Runs[0].Targets[0].Stages {
		s := st.Server
		if s == nil || !s.Up {
			t.Fatalf("stage %d: server summary %+v", i, s)
		}
		server := s.Rates["inferprobe_server_generation_tokens_total"]
		client := st.Throughput.OutputTokensPerSec
		t.Logf("stage %d: server %.1f tok/s, client %.1f tok/s, running %v", i, server, client, s.Gauges["inferprobe_server_requests_running"])
		if client == 0 || math.Abs(server-client)/client > 0.3 {
			t.Errorf("stage %d: the server generated %.1f tok/s, the client measured %.1f", i, server, client)
		}
		if _, ok := s.Gauges["inferprobe_server_requests_running"]; !ok {
			t.Errorf("stage %d: no requests_running gauge: %v", i, s.Gauges)
		}
	}
	validate(t, rep)
}

// TestReportPageInABrowser: a real headless browser opens index.html from the output directory
// (no server, no network) and renders the table and every plot.
func TestReportPageInABrowser(t *testing.T) {
	chromium := testkit.Tool(t, "chromium", "apt-get install chromium")
	dir := t.TempDir()
	if _, err := goldenReport().WritePlots(dir); err != nil {
		t.Fatal(err)
	}
	colour := func(dir string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shot := filepath.Join(t.TempDir(), "page.png")
		cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
			"--no-first-run", "--user-data-dir="+t.TempDir(), "--window-size=1200,3000", "--screenshot="+shot,
			"file://"+filepath.Join(dir, "index.html"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("chromium: %v\n%s", err, out)
		}
		f, err := os.Open(shot)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		// The plots are drawn in colour on white; the page's text is black.
		n := 0
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y += 2 {
			for x := b.Min.X; x < b.Max.X; x += 2 {
				r, g, bl, _ := img.At(x, y).RGBA()
				if max(r, g, bl)-min(r, g, bl) > 0x3000 {
					n++
				}
			}
		}
		return n
	}
	with := colour(dir)
	// The control: the same page with its plot files gone.
	svgs, _ := filepath.Glob(filepath.Join(dir, "*.svg"))
	for _, f := range svgs {
		_ = os.Remove(f)
	}
	without := colour(dir)
	t.Logf("coloured pixels (every other row and column): %d with the plots, %d without", with, without)
	if with < 3*without+300 {
		t.Errorf("the rendered page has %d coloured pixels, %d without its plot files: the plots did not render", with, without)
	}
}

// TestTCritical95BetweenTheTable: past the table, the critical value is never below the exact
// one (a too-narrow interval) and at most 1% above it, up to df 119. Exact values to 3 decimals
// from Student's t quantile 0.975.
func TestTCritical95BetweenTheTable(t *testing.T) {
	exact := map[int]float64{31: 2.040, 35: 2.030, 39: 2.023, 40: 2.021, 45: 2.014, 50: 2.009, 59: 2.001,
		60: 2.000, 79: 1.990, 80: 1.990, 100: 1.984, 119: 1.980}
	for df, want := range exact {
		if got := TCritical95(df); got < want-5e-4 || got > want*1.01 {
			t.Errorf("TCritical95(%d) = %.3f, want %.3f to 1%% above it", df, got, want)
		}
	}
}
