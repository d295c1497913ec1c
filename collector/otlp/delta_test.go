package otlp

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// scriptedProducer returns one prepared round of cumulative data per Produce.
type scriptedProducer struct{ rounds [][]metricdata.Metrics }

func (s *scriptedProducer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	r := s.rounds[0]
	s.rounds = s.rounds[1:]
	return []metricdata.ScopeMetrics{{Metrics: r}}, nil
}

var (
	t0    = time.Unix(1000, 0)
	attrA = attribute.NewSet(attribute.String("target", "a"))
)

func cumSum(v float64, at time.Time, start time.Time) metricdata.Metrics {
	return metricdata.Metrics{Name: "c_total", Data: metricdata.Sum[float64]{IsMonotonic: true,
		Temporality: metricdata.CumulativeTemporality,
		DataPoints:  []metricdata.DataPoint[float64]{{Attributes: attrA, StartTime: start, Time: at, Value: v}}}}
}

func cumHist(count uint64, sum float64, buckets []uint64, at time.Time) metricdata.Metrics {
	return metricdata.Metrics{Name: "h_seconds", Data: metricdata.Histogram[float64]{
		Temporality: metricdata.CumulativeTemporality,
		DataPoints: []metricdata.HistogramDataPoint[float64]{{Attributes: attrA, StartTime: t0, Time: at,
			Count: count, Sum: sum, Bounds: []float64{0.1, 1}, BucketCounts: buckets,
			Min: metricdata.NewExtrema(0.01), Max: metricdata.NewExtrema(3.0)}}}}
}

func cumExp(scale int32, zero uint64, offset int32, counts []uint64, at time.Time) metricdata.Metrics {
	var n uint64 = zero
	for _, c := range counts {
		n += c
	}
	return metricdata.Metrics{Name: "e_seconds", Data: metricdata.ExponentialHistogram[float64]{
		Temporality: metricdata.CumulativeTemporality,
		DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{{Attributes: attrA, StartTime: t0, Time: at,
			Count: n, Sum: float64(n), Scale: scale, ZeroCount: zero,
			PositiveBucket: metricdata.ExponentialBucket{Offset: offset, Counts: counts}}}}}
}

func produce(t *testing.T, d *deltaProducer) []metricdata.Metrics {
	t.Helper()
	sms, err := d.Produce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sms[0].Metrics
}

// TestDeltaProducerSums: a counter's exports are the increases since the previous export,
// from its time; a counter that went down (a reset) starts over from its new value; gauges
// pass unchanged.
func TestDeltaProducerSums(t *testing.T) {
	t1, t2, t3, t4 := t0.Add(10*time.Second), t0.Add(20*time.Second), t0.Add(30*time.Second), t0.Add(40*time.Second)
	gauge := metricdata.Metrics{Name: "g", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{Value: 7}}}}
	d := newDeltaProducer(&scriptedProducer{rounds: [][]metricdata.Metrics{
		{cumSum(5, t1, t0), gauge},
		{cumSum(12, t2, t0), gauge},
		{cumSum(3, t3, t0)}, // reset: went down
		{cumSum(4, t4, t3)}, // restarted: a new start time
	}})
	want := []struct {
		value float64
		start time.Time
	}{{5, t0}, {7, t1}, {3, t0}, {4, t3}}
	for i, w := range want {
		ms := produce(t, d)
		s := ms[0].Data.(metricdata.Sum[float64])
		if s.Temporality != metricdata.DeltaTemporality {
			t.Fatalf("round %d: temporality %v", i, s.Temporality)
		}
		if dp := s.DataPoints[0]; dp.Value != w.value || !dp.StartTime.Equal(w.start) {
			t.Errorf("round %d: delta %v from %v, want %v from %v", i, dp.Value, dp.StartTime, w.value, w.start)
		}
		if i < 2 {
			if g := ms[1].Data.(metricdata.Gauge[float64]); g.DataPoints[0].Value != 7 {
				t.Errorf("gauge changed to %v", g.DataPoints[0].Value)
			}
		}
	}
}

// TestDeltaProducerHistograms: explicit-bucket and exponential histograms send the counts,
// sums and buckets added since the previous export, with no extremes; an exponential
// histogram whose resolution dropped is compared at the new scale; a bucket that went down is
// a reset.
func TestDeltaProducerHistograms(t *testing.T) {
	t1, t2, t3 := t0.Add(10*time.Second), t0.Add(20*time.Second), t0.Add(30*time.Second)
	d := newDeltaProducer(&scriptedProducer{rounds: [][]metricdata.Metrics{
		{cumHist(4, 2, []uint64{1, 2, 1}, t1), cumExp(2, 1, 8, []uint64{1, 2, 3, 4}, t1)},
		// Scale 2 → 1: old indexes 8..11 fold into 4..5.
		{cumHist(9, 5.5, []uint64{3, 4, 2}, t2), cumExp(1, 3, 4, []uint64{4, 9, 1}, t2)},
		{cumHist(10, 6, []uint64{2, 5, 3}, t3), cumExp(1, 3, 4, []uint64{4, 9, 2}, t3)}, // first bucket went down
	}})
	produce(t, d)
	ms := produce(t, d)
	h := ms[0].Data.(metricdata.Histogram[float64])
	if dp := h.DataPoints[0]; h.Temporality != metricdata.DeltaTemporality || dp.Count != 5 || dp.Sum != 3.5 ||
		!slices.Equal(dp.BucketCounts, []uint64{2, 2, 1}) || !dp.StartTime.Equal(t1) {
		t.Errorf("histogram delta %+v", dp)
	} else if _, ok := dp.Min.Value(); ok {
		t.Error("a delta histogram kept the cumulative minimum")
	}
	e := ms[1].Data.(metricdata.ExponentialHistogram[float64])
	// Before, at scale 1: index 4 = 1+2, index 5 = 3+4; now 4, 9, 1 at 4..6.
	if dp := e.DataPoints[0]; e.Temporality != metricdata.DeltaTemporality || dp.ZeroCount != 2 || dp.Count != 17-11 ||
		dp.PositiveBucket.Offset != 4 || !slices.Equal(dp.PositiveBucket.Counts, []uint64{1, 2, 1}) {
		t.Errorf("exponential delta %+v", dp)
	}
	ms = produce(t, d)
	if dp := ms[0].Data.(metricdata.Histogram[float64]).DataPoints[0]; dp.Count != 10 || !slices.Equal(dp.BucketCounts, []uint64{2, 5, 3}) || !dp.StartTime.Equal(t0) {
		t.Errorf("after a reset the histogram sent %+v, want its cumulative state from its start", dp)
	}
	if dp := ms[1].Data.(metricdata.ExponentialHistogram[float64]).DataPoints[0]; dp.Count != 1 || !slices.Equal(dp.PositiveBucket.Counts, []uint64{0, 0, 1}) {
		t.Errorf("exponential delta %+v, want the one new observation", dp)
	}
}

// TestDeltaProducerForgetsGoneSeries: a series that left the registry is forgotten, so if it
// comes back (a target re-added) its first export is its whole count, not a negative delta.
func TestDeltaProducerForgetsGoneSeries(t *testing.T) {
	t1, t2, t3 := t0.Add(10*time.Second), t0.Add(20*time.Second), t0.Add(30*time.Second)
	d := newDeltaProducer(&scriptedProducer{rounds: [][]metricdata.Metrics{
		{cumSum(8, t1, t0)}, {}, {cumSum(2, t3, t2)},
	}})
	produce(t, d)
	produce(t, d)
	if len(d.last) != 0 {
		t.Fatalf("%d series remembered after they left", len(d.last))
	}
	if dp := produce(t, d)[0].Data.(metricdata.Sum[float64]).DataPoints[0]; dp.Value != 2 || !dp.StartTime.Equal(t2) {
		t.Errorf("returning series sent %v from %v", dp.Value, dp.StartTime)
	}
}
