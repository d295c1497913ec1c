package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/inferprobe/inferprobe/collector/otlp"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/testkit"
	"github.com/inferprobe/inferprobe/simulator"
)

// firstHeaders serves a simulator and keeps the traceparent of the requests in the order
// they arrived.
type firstHeaders struct {
	mu  sync.Mutex
	tps []string
}

func (f *firstHeaders) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tps...)
}

// deadEndpoint is an http:// URL on which nothing listens.
func deadEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// On the first start with traces on, the very first request already carries a traceparent
// (the export is in force before the targets start); the header secret never reaches the
// log; the SDK's global error handler writes to the daemon's log and counts export errors.
func TestOTelFirstRequestTracedSecretsAndSDKErrors(t *testing.T) {
	sim, err := simulator.New(simulator.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := &firstHeaders{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		seen.tps = append(seen.tps, r.Header.Get("traceparent"))
		seen.mu.Unlock()
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() { sim.Close(); srv.CloseClientConnections(); srv.Close() })

	const secret = "s3cr3t-otlp-token-value"
	t.Setenv("INFERPROBE_TEST_OTLP_TOKEN", secret)
	dir := t.TempDir()
	path := writeConfig(t, dir, fmt.Sprintf(`
otel:
  endpoint: %s
  interval: 200ms
  timeout: 100ms
  headers:
    authorization: {value_env: INFERPROBE_TEST_OTLP_TOKEN}
  traces: {sampling_ratio: 1}
targets:
  - name: a
    url: %s
    model: inferprobe-sim
    traffic: {rate: 20}
    request: {input_tokens: 8, max_tokens: 4}
    warmup: {requests: 2, min_duration: 0s}
`, deadEndpoint(t), srv.URL))
	// The first apply waits a while after the targets started: requests sent in that time
	// show whether the export was in force before them.
	var once sync.Once
	d := startDaemonWith(t, path, "", false, func(o *daemonOptions) {
		o.targetsApplied = func() { once.Do(func() { time.Sleep(500 * time.Millisecond) }) }
	})
	waitFor(t, 20*time.Second, "5 requests and a failed metric export", func() bool {
		v, _ := testkit.Value(d.scrape(t), "inferprobe_otel_export_errors_total", map[string]string{"signal": "metrics"})
		return len(seen.get()) >= 5 && v >= 1
	})
	tps := seen.get()
	for i, tp := range tps[:5] {
		if len(tp) != 55 || !strings.HasPrefix(tp, "00-") || !strings.HasSuffix(tp, "-01") {
			t.Fatalf("request %d reached the server with traceparent %q (all: %q)", i, tp, tps[:5])
		}
	}

	before, _ := testkit.Value(d.scrape(t), "inferprobe_otel_export_errors_total", map[string]string{"signal": "traces"})
	otel.Handle(fmt.Errorf("traces export: %w", errors.New("sdk-reported failure")))
	otel.Handle(errors.New("an sdk error that is no export"))
	after, _ := testkit.Value(d.scrape(t), "inferprobe_otel_export_errors_total", map[string]string{"signal": "traces"})
	// Real span exports to the dead endpoint may fail in between: at least one more.
	if after < before+1 {
		t.Errorf("export errors{signal=traces} went from %v to %v after one SDK-reported export error", before, after)
	}
	logs := d.logs.String()
	if !strings.Contains(logs, "sdk-reported failure") || !strings.Contains(logs, "an sdk error that is no export") || !strings.Contains(logs, "component=otlp") {
		t.Errorf("the SDK's error is not in the daemon's log:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("the OTLP header secret is in the log:\n%s", logs)
	}
}

// --otel.* flags fill what the file's otel block leaves empty and so come before
// OTEL_EXPORTER_OTLP_* (which Resolve reads only for what is still empty); the block wins.
func TestOTelFlagsPrecedence(t *testing.T) {
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_METRIC_EXPORT_INTERVAL": "20000"}
	getenv := func(k string) string { return env[k] }
	flags := otelFlags{endpoint: "http://flag:4318", protocol: "http/protobuf", interval: 7 * time.Second, samplingRatio: 0.5}

	s, ok, err := otlp.Resolve(withOTelFlags(&config.Config{}, flags).OTel, getenv)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if s.Endpoint != "http://flag:4318" || s.Protocol != "http/protobuf" || s.Interval != 7*time.Second || !s.Traces || s.SamplingRatio != 0.5 {
		t.Errorf("flags over env: %+v", s)
	}

	ratio := 1.0
	file := &config.Config{OTel: &config.OTel{Endpoint: "http://file:4317", Traces: &config.OTelTraces{SamplingRatio: &ratio}}}
	s, _, _ = otlp.Resolve(withOTelFlags(file, flags).OTel, getenv)
	if s.Endpoint != "http://file:4317" || s.Protocol != "http/protobuf" || s.Interval != 7*time.Second || s.SamplingRatio != 1 {
		t.Errorf("file block over flags: %+v", s)
	}
	if file.OTel.Protocol != "" {
		t.Error("withOTelFlags wrote into the loaded configuration")
	}

	s, _, _ = otlp.Resolve(withOTelFlags(&config.Config{}, otelFlags{samplingRatio: -1}).OTel, getenv)
	if s.Endpoint != "http://env:4317" || s.Interval != 20*time.Second || s.Traces {
		t.Errorf("no flags: env: %+v", s)
	}
}
