package traffic

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

func TestSubSeedStable(t *testing.T) {
	// Golden values, computed independently of this code (FNV-1a 64 over the little-endian
	// base and parts prefixed by their byte length, then the splitmix64 finalizer). If they change, every
	// recorded seed stops reproducing its requests.
	tests := []struct {
		base  uint64
		parts []string
		want  uint64
	}{
		{0, nil, 0x813f0174a2367c13},
		{42, []string{"chat", "arrivals"}, 0x9efb228c80c8cdd0},
		{42, []string{"chat", "prompts"}, 0x04c9c71c77fdbbf5},
		{math.MaxUint64, []string{"héllo"}, 0x72824ff363269825},
	}
	for _, tc := range tests {
		if got := SubSeed(tc.base, tc.parts...); got != tc.want {
			t.Errorf("SubSeed(%d, %q) = %#x, want %#x", tc.base, tc.parts, got, tc.want)
		}
	}
}

func TestSubSeedDistinct(t *testing.T) {
	inputs := []struct {
		base  uint64
		parts []string
	}{
		{0, nil},
		{1, nil},
		{0, []string{""}},
		{0, []string{"", ""}},
		{0, []string{"a"}},
		{1, []string{"a"}},
		{0, []string{"ab", "c"}},
		{0, []string{"a", "bc"}},
		{0, []string{"abc"}},
		{7, []string{"target-a", "arrivals"}},
		{7, []string{"target-a", "prompts"}},
		{7, []string{"target-b", "arrivals"}},
		{7, []string{"arrivals", "target-a"}},
	}
	seen := make(map[uint64]int)
	for i, in := range inputs {
		s := SubSeed(in.base, in.parts...)
		if j, dup := seen[s]; dup {
			t.Errorf("SubSeed(%d, %q) equals SubSeed(%d, %q)", in.base, in.parts, inputs[j].base, inputs[j].parts)
		}
		seen[s] = i
	}
}

func TestGapSamplerMoments(t *testing.T) {
	// Unit-mean gaps with variance 1/shape (cv² = 1/shape), checked to 4 standard errors of
	// the mean and 5% of the variance over 400,000 draws.
	const draws = 400_000
	for _, shape := range []float64{0.25, 0.5, 1, 1.5, 4, 100} {
		g := newGapSampler(9, shape)
		var sum, sum2 float64
		for range draws {
			x := g.next()
			if !(x >= 0) || math.IsInf(x, 1) {
				t.Fatalf("shape %v: gap %v", shape, x)
			}
			sum += x
			sum2 += x * x
		}
		mean := sum / draws
		variance := sum2/draws - mean*mean
		wantVar := 1 / shape
		if se := math.Sqrt(wantVar / draws); math.Abs(mean-1) > 4*se {
			t.Errorf("shape %v: mean %.5f, want 1 ± %.5f", shape, mean, 4*se)
		}
		if math.Abs(variance/wantVar-1) > 0.05 {
			t.Errorf("shape %v: variance %.5f, want %.5f ± 5%%", shape, variance, wantVar)
		}
	}
}

// TestZigguratNormal: the ziggurat's deviates have the standard normal's moments and tails.
func TestZigguratNormal(t *testing.T) {
	g := newGapSampler(42, 2)
	const n = 2_000_000
	var sum, sum2, sum4 float64
	tail, beyond1 := 0, 0
	for range n {
		x := g.zigNormal()
		sum += x
		sum2 += x * x
		sum4 += x * x * x * x
		if math.Abs(x) > zigR {
			tail++
		}
		if math.Abs(x) > 1 {
			beyond1++
		}
	}
	mean, variance := sum/n, sum2/n
	kurtosis := sum4 / n / (variance * variance)
	if math.Abs(mean) > 0.003 || math.Abs(variance-1) > 0.005 || math.Abs(kurtosis-3) > 0.03 {
		t.Errorf("mean %.4f variance %.4f kurtosis %.4f, want 0, 1, 3", mean, variance, kurtosis)
	}
	// P(|X| > 1) = 0.31731; P(|X| > 3.4426) = 0.000576.
	if p := float64(beyond1) / n; math.Abs(p-0.31731) > 0.002 {
		t.Errorf("P(|X| > 1) = %.5f, want 0.31731", p)
	}
	if p := float64(tail) / n; math.Abs(p-0.000576) > 0.0001 {
		t.Errorf("P(|X| > r) = %.6f, want 0.000576 (the tail draws)", p)
	}
}

// TestZigguratExponential: the exponential ziggurat's deviates have the unit exponential's
// moments, tail beyond the ziggurat's base and distribution (Kolmogorov–Smirnov).
func TestZigguratExponential(t *testing.T) {
	g := newGapSampler(7, 1)
	const n = 1_000_000
	xs := make([]float64, n)
	var sum, sum2 float64
	tail := 0
	for i := range xs {
		x := g.zigExponential()
		if !(x >= 0) || math.IsInf(x, 1) {
			t.Fatalf("deviate %v", x)
		}
		xs[i] = x
		sum += x
		sum2 += x * x
		if x > zigExpR {
			tail++
		}
	}
	mean, variance := sum/n, sum2/n-(sum/n)*(sum/n)
	if math.Abs(mean-1) > 0.005 || math.Abs(variance-1) > 0.01 {
		t.Errorf("mean %.4f variance %.4f, want 1 and 1", mean, variance)
	}
	// P(X > 7.697) = e^-7.697 = 0.000454.
	if p := float64(tail) / n; math.Abs(p-math.Exp(-zigExpR)) > 0.0001 {
		t.Errorf("P(X > r) = %.6f, want %.6f", p, math.Exp(-zigExpR))
	}
	if d := ksDistance(xs, func(x float64) float64 { return -math.Expm1(-x) }); d > ksCritical(n) {
		t.Errorf("Kolmogorov–Smirnov distance %.5f to Exp(1), want ≤ %.5f", d, ksCritical(n))
	}
}

// TestExpNeg: the table exponential agrees with math.Exp to a few ulps over its whole
// domain, including the switch to math.Exp near the smallest normal float64.
func TestExpNeg(t *testing.T) {
	worst := 0.0
	check := func(y float64) {
		got, want := expNeg(y), math.Exp(y)
		if want == 0 {
			if got != 0 {
				t.Fatalf("expNeg(%v) = %v, want 0", y, got)
			}
			return
		}
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
			if rel > 1e-15 {
				t.Fatalf("expNeg(%v) = %v, math.Exp %v: relative error %.3g", y, got, want, rel)
			}
		}
	}
	for _, y := range []float64{0, math.Copysign(0, -1), -1e-300, -math.SmallestNonzeroFloat64, -math.Ln2 / 512, -math.Ln2, -1, -707.99, -708, -708.0001, -745, -746, -1e300} {
		check(y)
	}
	g := newGapSampler(3, 1)
	for range 2_000_000 {
		check(-g.uniform() * 710)
		check(-g.zigExponential())
	}
	if !math.IsNaN(expNeg(math.NaN())) {
		t.Error("expNeg(NaN) is not NaN")
	}
	t.Logf("largest relative error %.3g", worst)
}

// TestGammaDistribution: gaps of shapes below, at and above 1 follow the gamma distribution
// (Kolmogorov–Smirnov against gonum's gamma CDF), not only its first two moments.
func TestGammaDistribution(t *testing.T) {
	const n = 200_000
	for _, shape := range []float64{0.05, 0.25, 0.5, 0.9, 1, 1.5, 4} {
		g := newGapSampler(11, shape)
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = g.next()
		}
		want := distuv.Gamma{Alpha: shape, Beta: shape} // unit mean
		if d := ksDistance(xs, want.CDF); d > ksCritical(n) {
			t.Errorf("shape %v: Kolmogorov–Smirnov distance %.5f, want ≤ %.5f", shape, d, ksCritical(n))
		}
	}
}

// ksDistance sorts xs and returns the Kolmogorov–Smirnov statistic against cdf.
func ksDistance(xs []float64, cdf func(float64) float64) float64 {
	slices.Sort(xs)
	d := 0.0
	n := float64(len(xs))
	for i, x := range xs {
		f := cdf(x)
		d = max(d, math.Abs(f-float64(i)/n), math.Abs(float64(i+1)/n-f))
	}
	return d
}

// ksCritical is the Kolmogorov–Smirnov distance exceeded with probability 0.001 by a
// sample of n from the hypothesised distribution.
func ksCritical(n int) float64 { return 1.95 / math.Sqrt(float64(n)) }
