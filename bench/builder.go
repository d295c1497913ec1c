package bench

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/traffic"
)

// Builder builds one run's report from the prober's events. It is an observer for a queue
// (engine.Options.Observers): it keeps no record, only sketches and counters, so its memory
// does not grow with the number of requests.
type Builder struct {
	// server, when set, gathers the model-server collector, to summarise each stage; accel
	// likewise the accelerator collector.
	server, accel prometheus.Gatherer

	mu       sync.Mutex
	targets  map[string]*targetAcc
	order    []string
	requests *json.Encoder // per-request JSONL, nil when not asked for
	runIndex int
	// gaps and gapTokens are reused for every request line (encoded under mu before the next).
	gaps      []float64
	gapTokens []int
}

type targetAcc struct {
	name, model string
	split       bool
	stages      []*stageAcc
}

type stageAcc struct {
	Stage
	serverStart, accelStart *serverSnapshot
}

// NewBuilder returns a builder for one run of cfg (or of one shard of it, when shard is set).
// requests, when not nil, receives one JSON line per finished request (RequestLine).
func NewBuilder(cfg *config.Config, runIndex int, requests io.Writer, shard *Shard) (*Builder, error) {
	b := &Builder{targets: map[string]*targetAcc{}, runIndex: runIndex}
	if requests != nil {
		b.requests = json.NewEncoder(requests)
	}
	for _, t := range cfg.Targets {
		plan, err := traffic.PlanFor(t.Traffic, 0)
		if err == nil && shard != nil {
			plan, err = traffic.Shard(plan, shard.Index, shard.Count)
		}
		if err != nil {
			return nil, err
		}
		ta := &targetAcc{name: t.Name, model: t.Model, split: len(t.Request.LoRATrafficSplit) > 0}
		for i, ph := range plan.Phases {
			st := &stageAcc{Stage: Stage{Index: i, Rate: ph.Rate, Concurrency: ph.Concurrency,
				Duration: ph.Duration.Seconds(), Figures: *newFigures()}}
			st.Load = LoadSummary{RequestedRate: ph.Rate, ScheduleDelay: NewDist()}
			if ta.split {
				st.Adapters = map[string]*Figures{}
				for _, a := range t.Request.LoRATrafficSplit {
					st.Adapters[a.Name] = newFigures()
				}
			}
			ta.stages = append(ta.stages, st)
		}
		b.targets[t.Name] = ta
		b.order = append(b.order, t.Name)
	}
	return b, nil
}

// RequestLine is one line of the per-request JSONL output. Times are in seconds; offsets are
// from the run's first intended send of the target.
type RequestLine struct {
	Run      int     `json:"run"`
	Target   string  `json:"target"`
	Stage    int     `json:"stage"`
	Seq      uint64  `json:"seq"`
	Adapter  string  `json:"adapter,omitempty"`
	Intended string  `json:"intended"`
	Result   string  `json:"result"`
	Status   int     `json:"status,omitempty"`
	Warmup   bool    `json:"warmup,omitempty"`
	TTFT     float64 `json:"ttft,omitempty"`
	TTFOT    float64 `json:"ttfot,omitempty"`
	TPOT     float64 `json:"tpot,omitempty"`
	NormTPOT float64 `json:"normalized_tpot,omitempty"`
	// Gaps are the times between token chunks, and GapTokens the tokens of the chunk that
	// ends each (ITL counts a k-token chunk after a gap g as k times g/k).
	Gaps         []float64 `json:"gaps,omitempty"`
	GapTokens    []int     `json:"gap_tokens,omitempty"`
	E2E          float64   `json:"e2e"`
	Delay        float64   `json:"schedule_delay"`
	OutputTokens int       `json:"output_tokens"`
	PromptTokens int       `json:"prompt_tokens"`
}

// Observe implements prober.Observer.
func (b *Builder) Observe(ev prober.Event) {
	switch ev.Kind {
	case prober.EventRequestFinished:
		b.finished(ev.Record)
	case prober.EventRequestDropped:
		b.mu.Lock()
		if st := b.stage(ev.Target.Name, ev.Stage); st != nil {
			st.Load.Dropped++
		}
		b.mu.Unlock()
	case prober.EventStage:
		// A stage starts: the collectors' series now are the previous stage's end and this
		// one's start. The builder runs behind the engine's queue, so gathering never delays
		// the pacer.
		var snap, accel *serverSnapshot
		if b.server != nil {
			snap = snapshotServer(b.server, ev.Target.Name)
		}
		if b.accel != nil {
			accel = snapshot(b.accel, "inferprobe_accelerator_", "")
		}
		b.mu.Lock()
		i := int(ev.Value)
		if prev := b.stage(ev.Target.Name, i-1); prev != nil {
			if prev.Server == nil {
				prev.Server = summarize(prev.serverStart, snap)
			}
			if prev.Accelerator == nil {
				prev.Accelerator = summarize(prev.accelStart, accel)
			}
		}
		if st := b.stage(ev.Target.Name, i); st != nil {
			st.serverStart, st.accelStart = snap, accel
		}
		b.mu.Unlock()
	}
}

// SetAccelerator makes the builder summarise the accelerator collector per stage, from g.
func (b *Builder) SetAccelerator(g prometheus.Gatherer) { b.accel = g }

// SetServer makes the builder summarise the model server's metrics per stage, from g (the
// engine's server collector).
func (b *Builder) SetServer(g prometheus.Gatherer) { b.server = g }

// EndServer summarises the server over each stage still open: call it once the pass's plans
// ended and before the engine set is closed (closing removes the server's series).
func (b *Builder) EndServer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	var accel *serverSnapshot
	if b.accel != nil {
		accel = snapshot(b.accel, "inferprobe_accelerator_", "")
	}
	for name, t := range b.targets {
		var snap *serverSnapshot
		for _, st := range t.stages {
			if b.server != nil && st.serverStart != nil && st.Server == nil {
				if snap == nil {
					snap = snapshotServer(b.server, name)
				}
				st.Server = summarize(st.serverStart, snap)
			}
			if st.accelStart != nil && st.Accelerator == nil {
				st.Accelerator = summarize(st.accelStart, accel)
			}
		}
	}
}

func (b *Builder) stage(target string, i int) *stageAcc {
	t := b.targets[target]
	if t == nil || i < 0 || i >= len(t.stages) {
		return nil
	}
	return t.stages[i]
}

func (b *Builder) finished(r *prober.Record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.stage(r.Target.Name, r.Stage)
	if st == nil {
		return
	}
	if b.requests != nil {
		line := RequestLine{Run: b.runIndex, Target: r.Target.Name, Stage: r.Stage, Seq: r.Seq, Adapter: r.Adapter,
			Intended: r.Intended.UTC().Format(time.RFC3339Nano), Result: r.Result, Status: r.Status, Warmup: r.Warmup,
			E2E: r.End.Seconds(), Delay: r.ScheduleDelay().Seconds(), OutputTokens: r.OutputTokens, PromptTokens: r.PromptTokens}
		if ttft, ok := r.TTFT(); ok {
			line.TTFT = ttft.Seconds()
		}
		if ttfo, ok := r.TTFO(); ok {
			line.TTFOT = ttfo.Seconds()
		}
		if tpot, ok := r.TPOT(); ok {
			line.TPOT = tpot.Seconds()
		}
		if r.OutputTokens > 0 {
			line.NormTPOT = r.End.Seconds() / float64(r.OutputTokens)
		}
		b.gaps, b.gapTokens = b.gaps[:0], b.gapTokens[:0]
		for i, g := range r.Gaps {
			b.gaps = append(b.gaps, g.Seconds())
			b.gapTokens = append(b.gapTokens, max(r.GapTokenCount(i), 1))
		}
		line.Gaps, line.GapTokens = b.gaps, b.gapTokens
		_ = b.requests.Encode(line) // a failed write of the optional file must not stop the run
	}
	l := &st.Load
	l.Sent++
	l.ScheduleDelay.Add(r.ScheduleDelay().Seconds())
	if l.firstSend.IsZero() || r.Start.Before(l.firstSend) {
		l.firstSend = r.Start
	}
	if r.Start.After(l.lastSend) {
		l.lastSend = r.Start
	}
	add(&st.Figures, r)
	if st.Adapters != nil {
		f := st.Adapters[r.Adapter]
		if f == nil {
			f = newFigures()
			st.Adapters[r.Adapter] = f
		}
		add(f, r)
	}
}

// add records one finished request in f.
func add(f *Figures, r *prober.Record) {
	if r.Warmup {
		f.Warmup++
		f.WarmupResults[r.Result]++
		return
	}
	f.Requests[r.Result]++
	if f.firstStart.IsZero() || r.Intended.Before(f.firstStart) {
		f.firstStart = r.Intended
	}
	if end := r.Start.Add(r.End); end.After(f.lastEnd) {
		f.lastEnd = end
	}
	if r.Result != prober.ResultSuccess {
		return
	}
	if ttft, ok := r.TTFT(); ok {
		f.TTFT.Add(ttft.Seconds())
	}
	if ttfo, ok := r.TTFO(); ok {
		f.TTFOT.Add(ttfo.Seconds())
	}
	for i, g := range r.Gaps {
		f.InterChunk.Add(g.Seconds())
		k := max(r.GapTokenCount(i), 1)
		f.ITL.AddN(g.Seconds()/float64(k), k)
	}
	if tpot, ok := r.TPOT(); ok {
		f.TPOT.Add(tpot.Seconds())
	}
	if r.OutputTokens > 0 {
		f.NormTPOT.Add(r.End.Seconds() / float64(r.OutputTokens))
	}
	f.E2E.Add(r.End.Seconds())
	f.PromptTokens += int64(r.PromptTokens)
	f.OutputTokens += int64(r.OutputTokens)
	if r.Target.SLO.Met(r) {
		f.Goodput++
	}
}

// Pass returns the pass's report part; call it once the pass's events were all delivered.
func (b *Builder) Pass(seeds map[string]uint64) Pass {
	b.mu.Lock()
	defer b.mu.Unlock()
	run := Pass{Index: b.runIndex}
	for _, name := range b.order {
		ta := b.targets[name]
		t := Target{Name: ta.name, Model: ta.model, Seed: seeds[name]}
		for _, st := range ta.stages {
			s := st.Stage
			s.Figures.finish()
			for _, f := range s.Adapters {
				f.finish()
			}
			if s.Duration > 0 {
				s.Load.AchievedRate = float64(s.Load.Sent) / s.Duration
			}
			if !s.Load.firstSend.IsZero() {
				s.Load.SendDuration = s.Load.lastSend.Sub(s.Load.firstSend).Seconds()
			}
			t.Stages = append(t.Stages, s)
		}
		run.Targets = append(run.Targets, t)
	}
	return run
}
