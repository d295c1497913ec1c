package collector

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// TestGapHistogramMatchesClientGolang feeds the same observations to gapHistogram and to
// client_golang's histogram with the probe's options and compares what each exposes: classic
// buckets, count, sum, schema, zero bucket, native spans and deltas. The wide case needs more
// than nativeMaxBuckets native buckets, which client_golang answers (within its first hour) by
// halving the resolution, as gapHistogram does at exposition.
func TestGapHistogramMatchesClientGolang(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name   string
		values func() []float64
	}{
		{"empty", func() []float64 { return nil }},
		{"typical gaps", func() []float64 {
			v := make([]float64, 5000)
			for i := range v {
				v[i] = 0.01 * math.Exp(rng.NormFloat64()*0.3)
			}
			return v
		}},
		{"zeros, bounds and extremes", func() []float64 {
			v := []float64{0, 0, 1e-300, 0.001, 0.0125, 2.5, 2.6, 1e6, 1e-12, 0.5, 0.25, math.Inf(1)}
			return append(v, tokenBuckets...)
		}},
		{"wide: more than 160 native buckets", func() []float64 {
			v := make([]float64, 20000)
			for i := range v {
				v[i] = math.Exp2(rng.Float64()*40 - 30) // 2^-30 .. 2^10 s
			}
			return v
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := tc.values()
			ref := prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "x_seconds", Help: "h", ConstLabels: prometheus.Labels{"target": "t"}, Buckets: tokenBuckets,
				NativeHistogramBucketFactor:     nativeFactor,
				NativeHistogramMaxBucketNumber:  nativeMaxBuckets,
				NativeHistogramMinResetDuration: nativeMinReset,
			}, []string{"adapter"}).WithLabelValues("a")
			got := newGapFamily("x_seconds", "h", prometheus.Labels{"target": "t"}, tokenBuckets).child("a")
			got.lock()
			for _, v := range values {
				ref.Observe(v)
				got.add(v, 1)
			}
			got.unlock()
			var want, have dto.Metric
			if err := ref.(prometheus.Metric).Write(&want); err != nil {
				t.Fatal(err)
			}
			if err := got.Write(&have); err != nil {
				t.Fatal(err)
			}
			want.Histogram.CreatedTimestamp, have.Histogram.CreatedTimestamp = nil, nil
			ws, hs := want.Histogram.GetSampleSum(), have.Histogram.GetSampleSum()
			if !(ws == hs || math.Abs(ws-hs) <= 1e-9*math.Abs(ws) || (math.IsInf(ws, 1) && math.IsInf(hs, 1))) {
				t.Errorf("sum %v, client_golang %v", hs, ws)
			}
			want.Histogram.SampleSum, have.Histogram.SampleSum = nil, nil
			if !proto.Equal(&want, &have) {
				t.Errorf("exposition differs from client_golang's:\n got %v\nwant %v", &have, &want)
			}
		})
	}
}

// TestGapHistogramAddN: n observations at once are n single ones.
func TestGapHistogramAddN(t *testing.T) {
	f := newGapFamily("x_seconds", "h", nil, tokenBuckets)
	one, many := f.child("a"), f.child("b")
	one.lock()
	many.lock()
	for range 4 {
		one.add(0.0105, 1)
	}
	many.add(0.0105, 4)
	one.unlock()
	many.unlock()
	var a, b dto.Metric
	_ = one.Write(&a)
	_ = many.Write(&b)
	a.Label, b.Label = nil, nil
	a.Histogram.CreatedTimestamp, b.Histogram.CreatedTimestamp = nil, nil
	if !proto.Equal(&a, &b) {
		t.Errorf("add(v, 4) %v, four add(v, 1) %v", &b, &a)
	}
}
