package otlp

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// ctxExporter fails every export with its context's error, or with err when that is nil.
type ctxExporter struct {
	sdkmetric.Exporter
	err error
}

func (e ctxExporter) Export(ctx context.Context, _ *metricdata.ResourceMetrics) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.err
}

// An export the reader canceled at its shutdown is not an export error; with delta temporality
// its points are dropped. A timed-out or refused export is an error, and its points dropped.
func TestCanceledExportIsNoError(t *testing.T) {
	rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
		{Name: "a", Data: metricdata.Sum[float64]{DataPoints: []metricdata.DataPoint[float64]{{Value: 1}, {Value: 2}}}},
	}}}}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), 0)
	defer cancel2()
	for _, c := range []struct {
		name           string
		ctx            context.Context
		delta          bool
		errors, points float64
	}{
		{"canceled, cumulative", canceled, false, 0, 0},
		{"canceled, delta", canceled, true, 0, 2},
		{"timed out", expired, false, 1, 2},
		{"refused", context.Background(), false, 1, 2},
	} {
		tel := New(Options{})
		e := &countingMetricExporter{Exporter: ctxExporter{err: errors.New("refused")}, t: tel, delta: c.delta}
		if err := e.Export(c.ctx, rm); err != nil {
			t.Fatalf("%s: Export returned %v; errors are counted, not returned", c.name, err)
		}
		gotErr := testutil.ToFloat64(tel.exportErrors.WithLabelValues(SignalMetrics))
		gotDropped := testutil.ToFloat64(tel.dropped.WithLabelValues(SignalMetrics))
		if gotErr != c.errors || gotDropped != c.points {
			t.Errorf("%s: %v export errors, %v dropped; want %v and %v", c.name, gotErr, gotDropped, c.errors, c.points)
		}
	}
}
