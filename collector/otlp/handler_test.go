package otlp_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/inferprobe/inferprobe/collector/otlp"
	"github.com/inferprobe/inferprobe/internal/metricdocs"
	"github.com/inferprobe/inferprobe/internal/testkit"
)

// The SDK's global error handler: export errors counted under their signal, every error
// logged through our logger at a bounded rate.
func TestHandleError(t *testing.T) {
	logs := &testkit.LockedBuffer{}
	reg := prometheus.NewRegistry()
	tel := otlp.New(otlp.Options{Gatherer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	reg.MustRegister(tel)
	// The messages the OTLP exporters produce (otlptrace's wrapper, otlpmetric's, and a
	// partial success's text).
	for range 3 {
		tel.HandleError(fmt.Errorf("traces export: %w", errors.New("connection refused")))
	}
	tel.HandleError(errors.New("failed to upload metrics: context deadline exceeded"))
	tel.HandleError(errors.New("OTLP partial success: too old (3 metric data points rejected)"))
	tel.HandleError(errors.New("OTLP partial success: empty message (2 spans rejected)"))
	tel.HandleError(errors.New("gather: collected metric was collected before"))
	tel.HandleError(nil)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, f := range mfs {
		fams[f.GetName()] = f
	}
	for signal, want := range map[string]float64{otlp.SignalTraces: 4, otlp.SignalMetrics: 2} {
		if v, _ := testkit.Value(fams, "inferprobe_otel_export_errors_total", map[string]string{"signal": signal}); v != want {
			t.Errorf("export errors{signal=%s} = %v, want %v", signal, v, want)
		}
	}
	// The export's own series are those docs/metrics.md lists (collector/probe_test.go leaves
	// them to this package).
	docs, err := metricdocs.ParseFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range metricdocs.Check(docs, mfs, "inferprobe_otel_") {
		t.Error(problem)
	}
	for name := range docs {
		if strings.HasPrefix(name, "inferprobe_otel_") && fams[name] == nil {
			t.Errorf("%s is documented but not exposed", name)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "connection refused"); n != 1 {
		t.Errorf("the repeated traces error was logged %d times, want once (rate limited):\n%s", n, out)
	}
	for _, want := range []string{"context deadline exceeded", "gather: collected metric", "OpenTelemetry SDK error"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
