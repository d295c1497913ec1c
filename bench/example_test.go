package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"

	"github.com/inferprobe/inferprobe/bench"
	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/simulator"
)

// A one-shot benchmark as code: two stages against the simulator, one warmup pass and two
// measured ones, then the report's figures.
func ExampleRun() {
	sim, _ := simulator.New(simulator.DefaultConfig(), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	defer sim.Close()

	cfg, err := engine.Parse([]byte(`
targets:
  - name: sim
    url: ` + srv.URL + `
    model: inferprobe-sim
    traffic: {pacer: stages, seed: 1, stages: [{rate: 20, duration: 500ms}, {concurrency: 2, duration: 500ms}]}
    request: {input_tokens: 16, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`))
	if err != nil {
		panic(err)
	}
	rep, err := bench.Run(context.Background(), cfg, bench.Options{WarmupRuns: 1, RepeatRuns: 2})
	if err != nil {
		panic(err)
	}
	st := rep.Runs[0].Targets[0].Stages[0]
	fmt.Println(len(rep.Runs), "measured runs;", st.Load.Sent, "requests in stage 0 at", st.Rate, "req/s")
	fmt.Println("all succeeded:", st.Requests["success"] == st.Load.Sent, "; output tokens:", st.OutputTokens)
	fmt.Println("TTFT p99 within the simulator's 20 ms base + prefill:", st.TTFT.Quantile(0.99) > 0.02)
	fmt.Println("repeat statistics for", len(rep.Repeats), "stages")
	// Output:
	// 2 measured runs; 10 requests in stage 0 at 20 req/s
	// all succeeded: true ; output tokens: 80
	// TTFT p99 within the simulator's 20 ms base + prefill: true
	// repeat statistics for 2 stages
}
