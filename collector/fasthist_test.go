package collector

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// TestGapHistogramMatchesClientGolang feeds the same observations to fastHist and to
// client_golang's histogram with the probe's options and compares what each exposes: classic
// buckets, count, sum, schema, zero bucket, native spans and deltas. The wide case needs more
// than nativeMaxBuckets native buckets, which client_golang answers (within its first hour) by
// halving the resolution, as fastHist does at exposition.
func TestGapHistogramMatchesClientGolang(t *testing.T) {
	for _, layout := range []struct {
		name   string
		bounds []float64
	}{
		{"token", tokenBuckets},
		{"ttft with SLOs", withSLO(ttftBuckets, []float64{0.1, 0.333, 0.9})},
		{"phase", phaseBuckets},
		{"rate", rateBuckets},
	} {
		t.Run(layout.name, func(t *testing.T) { matchClientGolang(t, layout.bounds) })
	}
}

// near returns every bound with its two float neighbours: where a classic search is off by
// one, one of them lands in the wrong bucket.
func near(bounds []float64) []float64 {
	var v []float64
	for _, b := range bounds {
		v = append(v, math.Nextafter(b, 0), b, math.Nextafter(b, math.Inf(1)))
	}
	return v
}

func matchClientGolang(t *testing.T, bounds []float64) {
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
			return append(v, near(bounds)...)
		}},
		{"rates", func() []float64 {
			v := make([]float64, 5000)
			for i := range v {
				v[i] = 100 * math.Exp(rng.NormFloat64())
			}
			return v
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
				Name: "x_seconds", Help: "h", ConstLabels: prometheus.Labels{"target": "t"}, Buckets: bounds,
				NativeHistogramBucketFactor:     nativeFactor,
				NativeHistogramMaxBucketNumber:  nativeMaxBuckets,
				NativeHistogramMinResetDuration: nativeMinReset,
			}, []string{"adapter"}).WithLabelValues("a")
			got := newHistFamily("x_seconds", "h", prometheus.Labels{"target": "t"}, bounds).child(new(sync.Mutex), "a")
			got.mu.Lock()
			for _, v := range values {
				ref.Observe(v)
				got.add(v, 1)
			}
			got.mu.Unlock()
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
	f := newHistFamily("x_seconds", "h", nil, tokenBuckets)
	var mu sync.Mutex
	one, many := f.child(&mu, "a"), f.child(&mu, "b")
	mu.Lock()
	for range 4 {
		one.add(0.0105, 1)
	}
	many.add(0.0105, 4)
	mu.Unlock()
	var a, b dto.Metric
	_ = one.Write(&a)
	_ = many.Write(&b)
	a.Label, b.Label = nil, nil
	a.Histogram.CreatedTimestamp, b.Histogram.CreatedTimestamp = nil, nil
	if !proto.Equal(&a, &b) {
		t.Errorf("add(v, 4) %v, four add(v, 1) %v", &b, &a)
	}
}

// TestKeyFromBits holds the bit-and-table native key of add's fast path to nativeKey (which
// computes it as client_golang does) over random values of every magnitude and every native
// bucket boundary with its neighbours.
func TestKeyFromBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var values []float64
	for range 200000 {
		values = append(values, math.Exp2(rng.Float64()*200-100))
	}
	for e := -130; e <= 130; e++ {
		for _, b := range gapNativeBounds {
			values = append(values, near([]float64{math.Ldexp(b, e)})...)
		}
	}
	values = append(values, math.MaxFloat64, math.Nextafter(gapZeroThreshold, 1), 1, 0.5, 2)
	for _, v := range values {
		if v <= gapZeroThreshold {
			continue
		}
		if got, want := keyFromBits(v), nativeKey(v); got != want {
			t.Fatalf("keyFromBits(%g) = %d, nativeKey %d", v, got, want)
		}
	}
}

// TestFastHistSharedLock: histograms of one adapter share the lock a request takes once, so a
// scrape that writes one of them while a request holds it waits for the request.
func TestFastHistSharedLock(t *testing.T) {
	var mu sync.Mutex
	f := newHistFamily("x_seconds", "h", nil, tokenBuckets)
	a, b := f.child(&mu, "a"), f.child(&mu, "b")
	mu.Lock()
	a.add(0.01, 1)
	done := make(chan struct{})
	go func() {
		var m dto.Metric
		_ = b.Write(&m)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Write did not wait for the shared lock")
	case <-time.After(20 * time.Millisecond):
	}
	mu.Unlock()
	<-done
}

// TestAddGapIsTwoAdds: addGap's shared bucket search for single-token chunks files exactly
// what one add per histogram files, for every chunk size and at the bounds.
func TestAddGapIsTwoAdds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	gaps := append(near(tokenBuckets), 0, 1e-300, 1e9, math.Inf(1))
	for range 5000 {
		gaps = append(gaps, 0.01*math.Exp(rng.NormFloat64()))
	}
	var mu sync.Mutex
	f := newHistFamily("x_seconds", "h", nil, tokenBuckets)
	chunks, tokens := f.child(&mu, "a"), f.child(&mu, "b")
	refChunks, refTokens := f.child(&mu, "a"), f.child(&mu, "b")
	for i, g := range gaps {
		k := []int{1, 1, 1, 2, 4}[i%5]
		addGap(chunks, tokens, g, k)
		refChunks.add(g, 1)
		refTokens.add(g/float64(k), uint64(k))
	}
	for _, pair := range [][2]*fastHist{{chunks, refChunks}, {tokens, refTokens}} {
		var got, want dto.Metric
		_ = pair[0].Write(&got)
		_ = pair[1].Write(&want)
		got.Histogram.CreatedTimestamp, want.Histogram.CreatedTimestamp = nil, nil
		if !proto.Equal(&got, &want) {
			t.Errorf("addGap filed\n%v\none add per histogram\n%v", &got, &want)
		}
	}
}
