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
		Observer: obs, MaxInFlight: 1,
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
