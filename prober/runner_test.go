package prober

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/inferprobe/inferprobe/traffic"
)

// stepPacer releases request n at n*gap, up to limit requests.
type stepPacer struct {
	gap   time.Duration
	limit uint64
}

func (p stepPacer) Next(n uint64) (time.Duration, bool) {
	return time.Duration(n) * p.gap, n < p.limit
}
func (p stepPacer) Rate(time.Duration) float64 { return float64(time.Second / p.gap) }

type seqSource struct{}

func (seqSource) Next(n uint64) traffic.Request { return traffic.Request{Prompt: "p", PromptTokens: 1} }

// blockingClient succeeds once release is closed, or fails canceled when ctx ends first.
type blockingClient struct{ release chan struct{} }

func (c blockingClient) Do(ctx context.Context, _ traffic.Request, rec *Record) {
	rec.Start = time.Now()
	select {
	case <-c.release:
		rec.Chunks, rec.FirstToken, rec.LastToken, rec.OutputTokens = 1, time.Millisecond, time.Millisecond, 1
		rec.Result = ResultSuccess
	case <-ctx.Done():
		rec.Result = ResultCanceled
	}
	rec.End = time.Since(rec.Start)
}

type recordingObserver struct {
	mu                         sync.Mutex
	started, dropped, finished int
	warmup, measured           []uint64
	results                    map[string]int
	warmupEvents               []bool
	coldStarts                 int
	rates                      []float64
}

func (o *recordingObserver) Observe(ev Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch ev.Kind {
	case EventRequestStarted:
		o.started++
	case EventRequestDropped:
		o.dropped++
	case EventRequestFinished:
		r := ev.Record
		o.finished++
		if o.results == nil {
			o.results = map[string]int{}
		}
		o.results[r.Result]++
		if r.Warmup {
			o.warmup = append(o.warmup, r.Seq)
		} else {
			o.measured = append(o.measured, r.Seq)
		}
	case EventWarmup:
		o.warmupEvents = append(o.warmupEvents, ev.Complete)
	case EventColdStart:
		o.coldStarts++
	case EventTargetRate:
		o.rates = append(o.rates, ev.Value)
	}
}

func TestRunnerDropsBeyondInFlightCap(t *testing.T) {
	defer goleak.VerifyNone(t)
	release := make(chan struct{})
	obs := &recordingObserver{}
	r := NewRunner(RunnerConfig{
		Target: &TargetInfo{Name: "t"}, Pacer: stepPacer{gap: time.Millisecond, limit: 20},
		Source: seqSource{}, Client: blockingClient{release}, Gate: NewGate(WarmupConfig{}, nil),
		Observer: obs, MaxInFlight: 2,
	})
	done := make(chan struct{})
	go func() { defer close(done); r.Run(context.Background()) }()
	deadline := time.After(10 * time.Second)
	for {
		obs.mu.Lock()
		n := obs.started + obs.dropped
		obs.mu.Unlock()
		if n == 20 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("pacer did not release 20 requests: %d", n)
		case <-time.After(time.Millisecond):
		}
	}
	if got := r.InFlight(); got != 2 {
		t.Errorf("in flight %d, want 2", got)
	}
	close(release)
	<-done
	if obs.started != 2 || obs.dropped != 18 || obs.finished != 2 || obs.results[ResultSuccess] != 2 {
		t.Fatalf("started %d dropped %d finished %d results %v; want 2, 18, 2 successes", obs.started, obs.dropped, obs.finished, obs.results)
	}
	if len(obs.rates) != 1 || obs.rates[0] != 1000 {
		t.Errorf("target rate reports %v, want one report of 1000", obs.rates)
	}
}

// instantClient succeeds at once.
type instantClient struct{}

func (instantClient) Do(_ context.Context, _ traffic.Request, rec *Record) {
	rec.Start = time.Now()
	rec.Chunks, rec.FirstToken, rec.LastToken, rec.OutputTokens = 1, time.Microsecond, time.Microsecond, 1
	rec.Result = ResultSuccess
}

func TestRunnerWarmupRequestsAreFlagged(t *testing.T) {
	defer goleak.VerifyNone(t)
	obs := &recordingObserver{}
	r := NewRunner(RunnerConfig{
		Target: &TargetInfo{Name: "t"}, Pacer: stepPacer{gap: 5 * time.Millisecond, limit: 10},
		Source: seqSource{}, Client: instantClient{}, Gate: NewGate(WarmupConfig{Requests: 3}, nil),
		// No drops even when a loaded machine delays a request past the next one's due time.
		Observer: obs, MaxInFlight: 10,
	})
	r.Run(context.Background())
	if len(obs.warmup) != 3 || len(obs.measured) != 7 {
		t.Fatalf("warmup %v measured %v; want the first 3 as warmup", obs.warmup, obs.measured)
	}
	for _, seq := range obs.warmup {
		if seq > 2 {
			t.Errorf("request %d flagged warmup after the gate opened", seq)
		}
	}
	if len(obs.warmupEvents) != 2 || obs.warmupEvents[0] || !obs.warmupEvents[1] {
		t.Errorf("warmup events %v, want closed at start then open", obs.warmupEvents)
	}
	if obs.coldStarts != 1 {
		t.Errorf("%d cold starts, want 1", obs.coldStarts)
	}
}

func TestRunnerStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	obs := &recordingObserver{}
	r := NewRunner(RunnerConfig{
		Target: &TargetInfo{Name: "t"}, Pacer: stepPacer{gap: time.Millisecond, limit: 1 << 62},
		Source: seqSource{}, Client: blockingClient{make(chan struct{})}, Gate: NewGate(WarmupConfig{}, nil),
		Observer: obs, MaxInFlight: 5,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	time.Sleep(30 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if obs.started != obs.finished || obs.results[ResultCanceled] != obs.finished || obs.finished == 0 {
		t.Fatalf("started %d finished %d results %v; every in-flight request must finish canceled", obs.started, obs.finished, obs.results)
	}
}

func TestRunnerRearmReported(t *testing.T) {
	obs := &recordingObserver{}
	g := NewGate(WarmupConfig{}, nil)
	NewRunner(RunnerConfig{Target: &TargetInfo{Name: "t"}, Pacer: stepPacer{gap: time.Second}, Source: seqSource{},
		Client: instantClient{}, Gate: g, Observer: obs})
	g.Rearm("test")
	if len(obs.warmupEvents) != 1 || obs.warmupEvents[0] {
		t.Fatalf("warmup events %v, want one 'not complete' after Rearm", obs.warmupEvents)
	}
}

// TestRunnerDropsStaleGateEvents: an opening decided before a Rearm must not reach the
// observer after the Rearm's closing, or warmup_complete would read 1 while the gate is closed.
func TestRunnerDropsStaleGateEvents(t *testing.T) {
	obs := &recordingObserver{}
	g := NewGate(WarmupConfig{Requests: 1}, nil)
	r := NewRunner(RunnerConfig{Target: &TargetInfo{Name: "t"}, Pacer: stepPacer{gap: time.Second}, Source: seqSource{},
		Client: instantClient{}, Gate: g, Observer: obs})
	_, ev := g.Finish(success(time.Millisecond), g.Generation())
	if !ev.Opened || !ev.ColdStart {
		t.Fatalf("setup: %+v", ev)
	}
	g.Rearm("restart") // lands between the gate's decision and its report
	r.report(ev)
	if len(obs.warmupEvents) != 1 || obs.warmupEvents[0] || obs.coldStarts != 0 {
		t.Fatalf("warmup events %v, cold starts %d; want only the re-arm's closing", obs.warmupEvents, obs.coldStarts)
	}
	if _, ev := g.Finish(success(time.Millisecond), g.Generation()); ev.Opened {
		r.report(ev)
	}
	if len(obs.warmupEvents) != 2 || !obs.warmupEvents[1] || obs.coldStarts != 1 {
		t.Fatalf("warmup events %v, cold starts %d; want the new opening and cold start reported", obs.warmupEvents, obs.coldStarts)
	}
}

// stageRecorder notes when each stage, rate and concurrency event arrives.
type stageRecorder struct {
	mu     sync.Mutex
	events []stageEvent
}

type stageEvent struct {
	at    time.Time
	kind  EventKind
	value float64
}

func (s *stageRecorder) Observe(ev Event) {
	switch ev.Kind {
	case EventStage, EventTargetRate, EventTargetConcurrency:
		s.mu.Lock()
		s.events = append(s.events, stageEvent{time.Now(), ev.Kind, ev.Value})
		s.mu.Unlock()
	}
}

// TestRunnerStagesLandOnSchedule: a looping plan of open- and closed-loop stages reports each
// stage within 10 ms of its offset from the start, with the rate and concurrency it runs at,
// and the closed-loop stage holds its concurrency.
func TestRunnerStagesLandOnSchedule(t *testing.T) {
	defer goleak.VerifyNone(t)
	const stage = 250 * time.Millisecond
	plan := traffic.Plan{Loop: true, Staged: true, Phases: []traffic.Phase{
		traffic.OpenPhase(stage, traffic.KindConstant, 40, 1, 1),
		traffic.ClosedPhase(stage, 3),
		traffic.OpenPhase(stage, traffic.KindPoisson, 80, 1, 2),
	}}
	rec := &stageRecorder{}
	obs := &recordingObserver{}
	r := NewRunner(RunnerConfig{Target: &TargetInfo{Name: "t"}, Plan: plan, Source: seqSource{},
		Client: sleepClient{5 * time.Millisecond}, Gate: NewGate(WarmupConfig{}, nil),
		Observer: Observers{rec, obs}, MaxInFlight: 100})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	// Two cycles: six stages; stop in the middle of the seventh.
	time.Sleep(6*stage + stage/2)
	cancel()
	<-done

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var stages []stageEvent
	values := map[int][2]float64{} // stage start index → (rate, concurrency)
	for _, ev := range rec.events {
		switch ev.kind {
		case EventStage:
			stages = append(stages, ev)
		case EventTargetRate, EventTargetConcurrency:
			k := len(stages) - 1
			v := values[k]
			if ev.kind == EventTargetRate {
				v[0] = ev.value
			} else {
				v[1] = ev.value
			}
			values[k] = v
		}
	}
	if len(stages) != 7 {
		t.Fatalf("%d stage events, want 7 (two cycles of three and the start of a third)", len(stages))
	}
	want := [][2]float64{{40, 0}, {0, 3}, {80, 0}}
	for i, ev := range stages {
		if int(ev.value) != i%3 {
			t.Errorf("stage event %d reports stage %v, want %d", i, ev.value, i%3)
		}
		late := ev.at.Sub(stages[0].at) - time.Duration(i)*stage
		if late < -time.Millisecond || late > 10*time.Millisecond {
			t.Errorf("stage %d started %v off its offset %v", i, late, time.Duration(i)*stage)
		}
		if values[i] != want[i%3] {
			t.Errorf("stage %d reported rate, concurrency %v, want %v", i, values[i], want[i%3])
		}
	}
	if obs.dropped != 0 {
		t.Errorf("%d dropped", obs.dropped)
	}
	// Constant 40/s for 250 ms is 10 requests per cycle; closed loop of 3 at 5 ms is about
	// 150; Poisson 80/s about 20: far more than the open stages alone.
	if obs.started < 2*(10+20)+100 {
		t.Errorf("only %d requests started", obs.started)
	}
}

// sleepClient succeeds after a fixed time, or fails canceled when ctx ends first.
type sleepClient struct{ d time.Duration }

func (c sleepClient) Do(ctx context.Context, _ traffic.Request, rec *Record) {
	rec.Start = time.Now()
	select {
	case <-time.After(c.d):
		rec.Chunks, rec.FirstToken, rec.LastToken, rec.OutputTokens = 1, c.d, c.d, 1
		rec.Result = ResultSuccess
	case <-ctx.Done():
		rec.Result = ResultCanceled
	}
	rec.End = time.Since(rec.Start)
}

// TestRunnerClosedLoopHoldsConcurrency: InFlight reads exactly the concurrency throughout a
// closed-loop phase, and a failing server is not flooded.
func TestRunnerClosedLoopHoldsConcurrency(t *testing.T) {
	defer goleak.VerifyNone(t)
	obs := &recordingObserver{}
	r := NewRunner(RunnerConfig{Target: &TargetInfo{Name: "t"},
		Plan:   traffic.Plan{Phases: []traffic.Phase{traffic.ClosedPhase(400*time.Millisecond, 5)}},
		Source: seqSource{}, Client: sleepClient{2 * time.Millisecond}, Gate: NewGate(WarmupConfig{}, nil),
		Observer: obs, MaxInFlight: 1})
	done := make(chan struct{})
	begin := time.Now()
	go func() { defer close(done); r.Run(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	samples := 0
	for time.Since(begin) < 300*time.Millisecond {
		if got := r.InFlight(); got != 5 {
			t.Fatalf("in flight %d, want 5", got)
		}
		samples++
		time.Sleep(5 * time.Millisecond)
	}
	<-done
	if samples < 10 {
		t.Errorf("only %d samples", samples)
	}
	if r.InFlight() != 0 || obs.dropped != 0 || obs.started != obs.finished || obs.started < 100 {
		t.Errorf("after the phase: in flight %d, dropped %d, started %d, finished %d", r.InFlight(), obs.dropped, obs.started, obs.finished)
	}

	// A server that fails at once: each slot waits 100 ms from the start of its failed request.
	failing := &recordingObserver{}
	r = NewRunner(RunnerConfig{Target: &TargetInfo{Name: "t"},
		Plan:   traffic.Plan{Phases: []traffic.Phase{traffic.ClosedPhase(500*time.Millisecond, 4)}},
		Source: seqSource{}, Client: failClient{}, Gate: NewGate(WarmupConfig{}, nil), Observer: failing})
	r.Run(context.Background())
	if failing.started > 4*6 || failing.results[ResultConnection] != failing.started {
		t.Errorf("a failing server got %d requests in 500 ms from 4 slots (results %v), want at most 24", failing.started, failing.results)
	}
}

// failClient fails every request at once, as a refused connection does.
type failClient struct{}

func (failClient) Do(_ context.Context, _ traffic.Request, rec *Record) {
	rec.Start = time.Now()
	rec.Result = ResultConnection
}

// TestRecordCopyTo: a copy shares no backing array with the record the prober reuses.
func TestRecordCopyTo(t *testing.T) {
	r := &Record{Gaps: []time.Duration{1, 2, 3}, GapTokens: []int32{1, 2, 3}, Chunks: 4, Result: ResultSuccess}
	var c Record
	r.CopyTo(&c)
	r.Gaps[0], r.GapTokens[0] = 99, 99
	r.Reset()
	if c.Gaps[0] != 1 || c.GapTokens[0] != 1 || len(c.Gaps) != 3 || c.Chunks != 4 || c.Result != ResultSuccess {
		t.Fatalf("copy changed with the original: %+v", c)
	}
}
