package otlp

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// deltaProducer turns the bridged series' cumulative counters and histograms into deltas
// when the export asks for delta temporality. The exporter's temporality selector only
// governs the SDK's own instruments (the GenAI metrics): a producer's data go out as it
// made them, and the Prometheus bridge reports Prometheus' cumulative values. Each export
// sends what changed since the previous one, from the previous export's time; a series seen
// for the first time sends its whole count since its start, and a series that went down (a
// counter reset, a histogram whose native buckets were reset) starts over from its new
// value. Gauges and non-monotonic sums stay as they are, as the delta preference of the OTLP
// exporter specification keeps up-down counters cumulative.
type deltaProducer struct {
	sdkmetric.Producer

	mu   sync.Mutex // Produce may be called by a periodic export and a shutdown flush at once
	last map[seriesKey]*cumulative
}

// seriesKey names one series: its metric and its attribute set.
type seriesKey struct {
	metric string
	attrs  attribute.Distinct
}

// cumulative is the last exported cumulative state of one series.
type cumulative struct {
	at    time.Time
	start time.Time
	value float64 // a sum's value
	count uint64
	sum   float64
	// buckets holds an explicit histogram's counts; zero, pos and neg an exponential one's
	// (its buckets by absolute index at scale).
	buckets  []uint64
	scale    int32
	zero     uint64
	pos, neg map[int32]uint64
	seen     bool // seen in the current Produce; series not seen are forgotten
}

func newDeltaProducer(p sdkmetric.Producer) *deltaProducer {
	return &deltaProducer{Producer: p, last: map[seriesKey]*cumulative{}}
}

// Produce implements sdkmetric.Producer.
func (d *deltaProducer) Produce(ctx context.Context) ([]metricdata.ScopeMetrics, error) {
	sms, err := d.Producer.Produce(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range sms {
		for j := range sms[i].Metrics {
			m := &sms[i].Metrics[j]
			switch data := m.Data.(type) {
			case metricdata.Sum[float64]:
				if data.IsMonotonic && data.Temporality == metricdata.CumulativeTemporality {
					for k := range data.DataPoints {
						d.sum(m.Name, &data.DataPoints[k])
					}
					data.Temporality = metricdata.DeltaTemporality
					m.Data = data
				}
			case metricdata.Histogram[float64]:
				if data.Temporality == metricdata.CumulativeTemporality {
					for k := range data.DataPoints {
						d.histogram(m.Name, &data.DataPoints[k])
					}
					data.Temporality = metricdata.DeltaTemporality
					m.Data = data
				}
			case metricdata.ExponentialHistogram[float64]:
				if data.Temporality == metricdata.CumulativeTemporality {
					for k := range data.DataPoints {
						d.exponential(m.Name, &data.DataPoints[k])
					}
					data.Temporality = metricdata.DeltaTemporality
					m.Data = data
				}
			}
		}
	}
	for k, c := range d.last {
		if !c.seen {
			delete(d.last, k) // a series that left the registry (a target removed by a reload)
		}
		c.seen = false
	}
	return sms, err
}

// swap stores next as the series' state and returns the one before it; ok is false for a
// series seen for the first time or whose start moved (a reset: Prometheus' created
// timestamp), which then sends its cumulative state as it is.
func (d *deltaProducer) swap(name string, attrs attribute.Set, next cumulative) (prev cumulative, ok bool) {
	k := seriesKey{name, attrs.Equivalent()}
	old := d.last[k]
	next.seen = true
	d.last[k] = &next
	if old == nil || !old.start.Equal(next.start) {
		return cumulative{}, false
	}
	return *old, true
}

func (d *deltaProducer) sum(name string, dp *metricdata.DataPoint[float64]) {
	prev, ok := d.swap(name, dp.Attributes, cumulative{at: dp.Time, start: dp.StartTime, value: dp.Value})
	if ok && dp.Value >= prev.value {
		dp.Value -= prev.value
		dp.StartTime = prev.at
	}
}

func (d *deltaProducer) histogram(name string, dp *metricdata.HistogramDataPoint[float64]) {
	prev, ok := d.swap(name, dp.Attributes, cumulative{at: dp.Time, start: dp.StartTime, count: dp.Count, sum: dp.Sum,
		buckets: slices.Clone(dp.BucketCounts)})
	if !ok || dp.Count < prev.count || len(prev.buckets) != len(dp.BucketCounts) {
		return
	}
	counts := make([]uint64, len(dp.BucketCounts))
	for i, n := range dp.BucketCounts {
		if n < prev.buckets[i] {
			return // a reset: send the new cumulative state as the first delta
		}
		counts[i] = n - prev.buckets[i]
	}
	dp.BucketCounts = counts
	dp.Count -= prev.count
	dp.Sum -= prev.sum
	dp.StartTime = prev.at
	// The extremes of the interval are unknown from two cumulative states.
	dp.Min, dp.Max = metricdata.Extrema[float64]{}, metricdata.Extrema[float64]{}
}

func (d *deltaProducer) exponential(name string, dp *metricdata.ExponentialHistogramDataPoint[float64]) {
	prev, ok := d.swap(name, dp.Attributes, cumulative{at: dp.Time, start: dp.StartTime, count: dp.Count, sum: dp.Sum,
		scale: dp.Scale, zero: dp.ZeroCount, pos: bucketMap(dp.PositiveBucket), neg: bucketMap(dp.NegativeBucket)})
	// Prometheus only ever lowers a native histogram's resolution (when it has too many
	// buckets); a higher scale than before means it was reset.
	if !ok || dp.Count < prev.count || dp.ZeroCount < prev.zero || dp.Scale > prev.scale {
		return
	}
	pos, okPos := bucketDelta(dp.PositiveBucket, prev.pos, prev.scale-dp.Scale)
	neg, okNeg := bucketDelta(dp.NegativeBucket, prev.neg, prev.scale-dp.Scale)
	if !okPos || !okNeg {
		return
	}
	dp.PositiveBucket, dp.NegativeBucket = pos, neg
	dp.Count -= prev.count
	dp.ZeroCount -= prev.zero
	dp.Sum -= prev.sum
	dp.StartTime = prev.at
	dp.Min, dp.Max = metricdata.Extrema[float64]{}, metricdata.Extrema[float64]{}
}

// bucketMap returns an exponential histogram's buckets by absolute index.
func bucketMap(b metricdata.ExponentialBucket) map[int32]uint64 {
	m := make(map[int32]uint64, len(b.Counts))
	for i, n := range b.Counts {
		if n > 0 {
			m[b.Offset+int32(i)] = n
		}
	}
	return m
}

// bucketDelta subtracts the previous buckets (at a scale down higher than now: each of
// their indexes maps to index >> down now) from the current ones; ok is false when a bucket
// went down, a reset.
func bucketDelta(cur metricdata.ExponentialBucket, prev map[int32]uint64, down int32) (metricdata.ExponentialBucket, bool) {
	counts := slices.Clone(cur.Counts)
	for idx, n := range prev {
		i := int(idx>>down) - int(cur.Offset)
		if i < 0 || i >= len(counts) || counts[i] < n {
			return cur, false
		}
		counts[i] -= n
	}
	return metricdata.ExponentialBucket{Offset: cur.Offset, Counts: counts}, true
}
