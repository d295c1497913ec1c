package collector

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/simtest"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/traffic"
)

// TestUnstreamedSeriesAbsent: the records of real stream: false requests (TGI's /generate
// against the simulator) count in e2e and the token counters, while the first-token, TPOT
// and inter-token histograms are absent (not series at zero): no first token was timed. A
// streamed target registered beside it has them from the start.
func TestUnstreamedSeriesAbsent(t *testing.T) {
	sim, url := simtest.Start(t, 5, nil)
	off := false
	tgt := config.Target{Name: "u", URL: url, API: prober.APITGI, Path: "/generate", Model: "inferprobe-sim",
		Timeout: 5 * time.Second, ConnectTimeout: time.Second, FirstByteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxResponseBytes: 1 << 20,
		Traffic: config.Traffic{MaxInFlight: 1},
		Request: config.Request{MaxTokens: 5, Stream: &off}}
	c, err := prober.NewClient(tgt)
	if err != nil {
		t.Fatal(err)
	}
	info := &prober.TargetInfo{Name: "u", Model: "inferprobe-sim", Unstreamed: true}
	p := NewProbe()
	p.Register(info)
	p.Register(&prober.TargetInfo{Name: "s", Model: "inferprobe-sim"})
	const n = 3
	for range n {
		rec := &prober.Record{Target: info}
		c.Do(context.Background(), traffic.Request{Prompt: "a b c", PromptTokens: 3}, rec)
		if rec.Result != prober.ResultSuccess {
			t.Fatalf("result %s (%v)", rec.Result, rec.Err)
		}
		p.Observe(prober.Event{Kind: prober.EventRequestStarted, Target: info})
		finish(p, rec)
	}
	outTruth := 0
	for _, r := range sim.Stats().Requests {
		outTruth += r.OutputTokens
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	base := map[string]string{"target": "u"}
	if got := sample(t, reg, "inferprobe_request_duration_seconds_count", base); got != n {
		t.Errorf("e2e observations %v, want %d", got, n)
	}
	if got := sample(t, reg, "inferprobe_output_tokens_total", map[string]string{"target": "u", "source": prober.SourceUsage}); got != float64(outTruth) {
		t.Errorf("output tokens %v, want the server's %d", got, outTruth)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	absent := map[string]bool{
		"inferprobe_time_to_first_token_seconds":        true,
		"inferprobe_time_to_first_output_token_seconds": true,
		"inferprobe_time_per_output_token_seconds":      true,
		"inferprobe_inter_token_latency_seconds":        true,
		"inferprobe_inter_chunk_latency_seconds":        true,
		"inferprobe_decode_rate_tokens_per_second":      true,
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		if !absent[mf.GetName()] {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" {
					seen[mf.GetName()+"/"+l.GetValue()] = true
				}
			}
		}
	}
	for name := range absent {
		if seen[name+"/u"] {
			t.Errorf("%s is exposed for the unstreamed target", name)
		}
		if !seen[name+"/s"] {
			t.Errorf("%s is missing for the streamed target", name)
		}
	}
}
