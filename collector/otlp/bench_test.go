package otlp_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferprobe/inferprobe/collector/otlp"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
)

func benchRecord() *prober.Record {
	rec := &prober.Record{Target: &prober.TargetInfo{Name: "simulator", Model: "m"}, Start: time.Now(),
		FirstToken: 50 * time.Millisecond, LastToken: 450 * time.Millisecond, End: 460 * time.Millisecond,
		Chunks: 32, OutputTokens: 32, PromptTokens: 128, Result: prober.ResultSuccess, FinishReason: prober.FinishLength}
	for range 31 {
		rec.Gaps = append(rec.Gaps, 12*time.Millisecond)
	}
	return rec
}

// BenchmarkRequestPath is what a probe request goroutine pays with OTel on and traces at
// ratio 1: the trace context, the traceparent header, and the hand-off into the queue.
func BenchmarkRequestPath(b *testing.B) {
	rcv := startReceiver(b, config.OTelGRPC, false)
	tel := otlp.New(otlp.Options{Gatherer: prometheus.NewRegistry(), QueueLimit: 1 << 20})
	ratio := 1.0
	pr, err := tel.Prepare(&config.Config{OTel: &config.OTel{Endpoint: rcv.URL, Interval: 10 * time.Second, Traces: &config.OTelTraces{SamplingRatio: &ratio}}})
	if err != nil {
		b.Fatal(err)
	}
	tel.Commit(context.Background(), pr)
	defer tel.Close(context.Background())
	rec := benchRecord()
	h := http.Header{}
	var buf [64]byte
	b.ReportAllocs()
	for b.Loop() {
		rec.Trace = prober.TraceContext{}
		tel.StartTrace(rec)
		h["Traceparent"] = []string{string(rec.Trace.AppendTraceparent(buf[:0]))}
		tel.Observe(prober.Event{Kind: prober.EventRequestFinished, Record: rec})
	}
}
