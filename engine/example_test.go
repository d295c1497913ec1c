package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"

	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/simulator"
)

// summary is a report builder: it keeps what it needs of each finished record. The engine
// hands it events through a queue of its own, so it may be as slow as it likes.
type summary struct {
	mu      sync.Mutex
	results map[string]int
	tokens  int
}

func (s *summary) Observe(ev prober.Event) {
	if ev.Kind != prober.EventRequestFinished {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[ev.Record.Result]++
	s.tokens += ev.Record.OutputTokens
}

// Benchmark as code: a one-shot run of one stage against the simulator, read back from the
// records.
func Example() {
	sim, _ := simulator.New(simulator.DefaultConfig(), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	defer sim.Close()

	cfg, err := engine.Parse([]byte(`
targets:
  - name: sim
    url: ` + srv.URL + `
    model: inferprobe-sim
    traffic: {pacer: stages, stages: [{rate: 50, duration: 200ms}], seed: 1}
    request: {input_tokens: 16, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`))
	if err != nil {
		panic(err)
	}
	report := &summary{results: map[string]int{}}
	ctx := context.Background()
	set := engine.New(ctx, engine.Options{Observers: []prober.Observer{report}, Once: true})
	if err := set.Apply(cfg); err != nil {
		panic(err)
	}
	_ = set.Wait(ctx) // the stage ends after 200 ms; its requests finish
	set.Close(ctx)    // stops the targets, then delivers what the queue holds

	fmt.Println(report.results, report.tokens, "tokens")
	// Output: map[success:10] 80 tokens
}
