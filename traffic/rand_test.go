package traffic

import (
	"math"
	"testing"
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
