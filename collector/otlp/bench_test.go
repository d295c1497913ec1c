package otlp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
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

// discardReceiver accepts OTLP/HTTP exports and throws them away unread (an empty protobuf
// response is a valid ExportServiceResponse), so that benchmarks count the exporter's work,
// not a receiver's decoding; it counts the bytes it was sent.
func discardReceiver(b *testing.B) (url string, bytes *atomic.Int64) {
	bytes = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	return srv.URL, bytes
}

// benchTelemetry is export over HTTP/protobuf to a discarding receiver, metrics every 10 s
// and traces at ratio 1.
func benchTelemetry(b *testing.B, url string) *otlp.Telemetry {
	tel := otlp.New(otlp.Options{Gatherer: prometheus.NewRegistry(), QueueLimit: 1 << 20})
	ratio := 1.0
	cfg := &config.Config{OTel: &config.OTel{Endpoint: url, Protocol: config.OTelHTTPProtobuf, Interval: 10 * time.Second,
		Traces: &config.OTelTraces{SamplingRatio: &ratio}}}
	cfg.Targets = []config.Target{{Name: "simulator", URL: "http://127.0.0.1:8000/v1/chat/completions", Model: "m"}}
	pr, err := tel.Prepare(cfg)
	if err != nil {
		b.Fatal(err)
	}
	tel.Commit(context.Background(), pr)
	b.Cleanup(func() { tel.Close(context.Background()) })
	return tel
}

// sharedHeader is a transport's header map as the OpenAI client builds it once per target.
var sharedHeader = http.Header{"Content-Type": {"application/json"}, "Accept": {"text/event-stream"},
	"Authorization": {"Bearer x"}}

type nopObserver struct{}

func (nopObserver) Observe(prober.Event) {}

var sinkHeader http.Header

// BenchmarkRequestGoroutine is what a probe request goroutine itself pays with OTel on and
// traces at ratio 1: the trace context, the traceparent header, and the hand-off of the
// finished record into the exporter's bounded queue. The queue's goroutine is diverted to
// a no-op observer here, so the recorder's work (BenchmarkBackground) does not run beside
// the loop on the same cores.
func BenchmarkRequestGoroutine(b *testing.B) {
	url, _ := discardReceiver(b)
	tel := benchTelemetry(b, url)
	defer otlp.DivertQueue(tel, nopObserver{})()
	rec := benchRecord()
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		rec.Trace = prober.TraceContext{}
		tel.StartTrace(rec)
		sinkHeader = prober.WithTraceparent(sharedHeader, rec)
		tel.Observe(prober.Event{Kind: prober.EventRequestFinished, Record: rec})
	}
	// The process's CPU per request: the loop, the no-op queue goroutine and the GC of what
	// the loop allocated; steadier than ns/op on a shared machine.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkBackground is the exporter goroutines' work per request: the queue goroutine's
// GenAI measurements and span (SDK span start, attributes, two events, end, batching), run
// here on the loop's goroutine, plus the span batcher's exports (about one per 512 spans) on
// its own. cpu-ns/op is the process's CPU time (getrusage) per request, so it counts those
// exports' encoding and the HTTP client too; the periodic metric export (every 10 s) is
// measured at 100 req/s by BenchmarkExportAt100 instead.
func BenchmarkBackground(b *testing.B) {
	url, sent := discardReceiver(b)
	tel := benchTelemetry(b, url)
	rec := otlp.RecorderOf(tel)
	r := benchRecord()
	var seq uint64
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		seq++
		r.Trace = prober.TraceContext{TraceID: [16]byte{0: 1, 8: byte(seq), 9: byte(seq >> 8), 10: byte(seq >> 16)}, SpanID: [8]byte{0: 1, 7: byte(seq)}, Sampled: true}
		rec.Observe(prober.Event{Kind: prober.EventRequestFinished, Record: r})
	}
	b.StopTimer()
	tel.Close(context.Background()) // the last spans' export counts too
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(sent.Load())/float64(b.N), "sent-B/op")
}

// BenchmarkExportAt100 probes the simulator (in this process) at 100 req/s for b.N requests
// with OTel off and on (gRPC to the in-process receiver, metrics every 10 s, traces at ratio
// 1), and reports the process's CPU time (getrusage) and heap allocations per request: the
// difference between the two is the export's whole cost, periodic metric exports and span
// batches included. Run it with -benchtime 3000x (30 s each, three metric exports).
func BenchmarkExportAt100(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			sim := startTracedSim(b)
			var o *config.OTel
			if on {
				ratio := 1.0
				o = &config.OTel{Endpoint: startReceiver(b, config.OTelGRPC, false).URL, Interval: 10 * time.Second,
					Traces: &config.OTelTraces{SamplingRatio: &ratio}}
			}
			const rate = 100
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			cpu0 := processCPU()
			b.ResetTimer()
			dur := time.Duration(b.N) * time.Second / rate
			h := startHarness(b, sim.URL, o, rate, dur)
			time.Sleep(dur) // the stage's length; drain then waits for its last requests
			h.drain(b)
			h.stop() // the final flush counts too
			b.StopTimer()
			cpu := processCPU() - cpu0
			runtime.ReadMemStats(&m1)
			n, _, _, _ := h.sink.get()
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/req")
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(n), "allocs/req")
			b.ReportMetric(float64(n), "requests")
		})
	}
}
