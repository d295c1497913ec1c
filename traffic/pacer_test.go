package traffic

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestConstantGapsExact(t *testing.T) {
	// want is 1e9/rate rounded to the nearest nanosecond, worked out by hand.
	tests := []struct {
		rate float64
		want time.Duration
	}{
		{rate: 1, want: time.Second},
		{rate: 3, want: 333333333},    // 333333333.33…
		{rate: 7, want: 142857143},    // 142857142.857…
		{rate: 0.3, want: 3333333333}, // 3333333333.33…
		{rate: 2000, want: 500 * time.Microsecond},
		{rate: 1.5e9, want: 1},            // 0.67 ns rounds up to 1
		{rate: 1e12, want: 1},             // below 1 ns: clamped to 1 ns
		{rate: 2.0 / 3, want: 1500000000}, // 1.5 s
	}
	for _, tc := range tests {
		p := NewConstant(tc.rate)
		if got := p.Rate(time.Hour); got != tc.rate {
			t.Errorf("rate %v: Rate = %v", tc.rate, got)
		}
		prev, ok := p.Next(0)
		if !ok || prev != 0 {
			t.Fatalf("rate %v: Next(0) = %v, %v; want 0, true", tc.rate, prev, ok)
		}
		for n := uint64(1); n <= 10000; n++ {
			at, ok := p.Next(n)
			if !ok {
				t.Fatalf("rate %v: Next(%d) ended", tc.rate, n)
			}
			if gap := at - prev; gap != tc.want {
				t.Fatalf("rate %v: gap before request %d = %d ns, want %d ns", tc.rate, n, gap, tc.want)
			}
			prev = at
		}
		// Far out the offset is still exactly n gaps: nothing accumulates.
		const far = 1_000_000_000
		if at, ok := p.Next(far); !ok || at != far*tc.want {
			t.Errorf("rate %v: Next(%d) = %v, %v; want %v", tc.rate, uint64(far), at, ok, far*tc.want)
		}
	}
}

func TestConstantEndsAtDurationLimit(t *testing.T) {
	p := NewConstant(1)
	last := uint64(math.MaxInt64 / int64(time.Second))
	if at, ok := p.Next(last); !ok || at != time.Duration(last)*time.Second {
		t.Errorf("Next(last) = %v, %v", at, ok)
	}
	if _, ok := p.Next(last + 1); ok {
		t.Errorf("Next(last+1) should end the schedule")
	}
	// A rate so low that not even a second request fits.
	p = NewConstant(1e-12)
	if at, ok := p.Next(0); !ok || at != 0 {
		t.Errorf("tiny rate: Next(0) = %v, %v", at, ok)
	}
	if _, ok := p.Next(1); ok {
		t.Errorf("tiny rate: Next(1) should end the schedule")
	}
}

func TestInvalidParametersEndAtOnce(t *testing.T) {
	tests := []struct {
		name string
		p    Pacer
	}{
		{"constant zero", NewConstant(0)},
		{"constant negative", NewConstant(-5)},
		{"constant NaN", NewConstant(math.NaN())},
		{"constant +Inf", NewConstant(math.Inf(1))},
		{"poisson zero", NewPoisson(0, 1)},
		{"poisson NaN", NewPoisson(math.NaN(), 1)},
		{"poisson +Inf", NewPoisson(math.Inf(1), 1)},
		{"gamma zero rate", NewGamma(0, 1, 1)},
		{"gamma negative cv", NewGamma(10, -1, 1)},
		{"gamma NaN cv", NewGamma(10, math.NaN(), 1)},
		{"gamma +Inf cv", NewGamma(10, math.Inf(1), 1)},
	}
	for _, tc := range tests {
		for _, n := range []uint64{0, 1, 1000} {
			if at, ok := tc.p.Next(n); ok {
				t.Errorf("%s: Next(%d) = %v, true; want ended", tc.name, n, at)
			}
		}
		if r := tc.p.Rate(0); r != 0 {
			t.Errorf("%s: Rate = %v, want 0", tc.name, r)
		}
	}
}

// gapStats walks p over requests 0..count-1 and returns the achieved rate (gaps per second of
// schedule) and the coefficient of variation of the gaps. It fails on decreasing offsets.
func gapStats(t *testing.T, p Pacer, count int) (rate, cv float64) {
	t.Helper()
	var sum, sum2 float64
	var prev time.Duration
	for n := 1; n < count; n++ {
		at, ok := p.Next(uint64(n))
		if !ok {
			t.Fatalf("Next(%d) ended", n)
		}
		if at < prev {
			t.Fatalf("Next(%d) = %v goes back from %v", n, at, prev)
		}
		g := float64(at - prev)
		sum += g
		sum2 += g * g
		prev = at
	}
	gaps := float64(count - 1)
	mean := sum / gaps
	return gaps / prev.Seconds(), math.Sqrt(sum2/gaps-mean*mean) / mean
}

func TestAchievedRate(t *testing.T) {
	// Sample sizes make 1% at least four standard errors of the mean gap (cv/√n ≤ 0.25%):
	// 10,000 arrivals suffice for the constant and cv=0.5 pacers, but Poisson needs 160,000
	// and cv=2 needs 640,000, or the check would pass or fail by the luck of the seed.
	const rate = 50
	tests := []struct {
		name  string
		p     Pacer
		count int
	}{
		{"constant", NewConstant(rate), 10_000},
		{"poisson", NewPoisson(rate, 11), 200_000},
		{"gamma cv 0.5", NewGamma(rate, 0.5, 12), 50_000},
		{"gamma cv 2", NewGamma(rate, 2, 13), 800_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := gapStats(t, tc.p, tc.count)
			if math.Abs(got-rate)/rate > 0.01 {
				t.Errorf("achieved rate %.4f, want %v ± 1%%", got, rate)
			}
		})
	}
}

func TestGapCoefficientOfVariation(t *testing.T) {
	// 200,000 gaps put the standard error of the sample cv under 1% even for cv=2.
	tests := []struct {
		name   string
		p      Pacer
		wantCV float64
		tol    float64
	}{
		{"poisson", NewPoisson(20, 21), 1, 0.03},
		{"gamma cv 1", NewGamma(20, 1, 22), 1, 0.03},
		{"gamma cv 0.5", NewGamma(20, 0.5, 23), 0.5, 0.05},
		{"gamma cv 2", NewGamma(20, 2, 24), 2, 0.05},
		{"gamma cv 0.1", NewGamma(20, 0.1, 25), 0.1, 0.05},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, cv := gapStats(t, tc.p, 200_000)
			if r := cv / tc.wantCV; r < 1-tc.tol || r > 1+tc.tol {
				t.Errorf("gap cv %.4f, want %v ± %v%%", cv, tc.wantCV, tc.tol*100)
			}
		})
	}
}

func TestGammaLimits(t *testing.T) {
	// cv=1 is the Poisson process itself, offset for offset.
	g, p := NewGamma(30, 1, 5), NewPoisson(30, 5)
	for n := uint64(0); n < 2000; n++ {
		a, _ := g.Next(n)
		b, _ := p.Next(n)
		if a != b {
			t.Fatalf("cv=1: Next(%d) = %v, Poisson gives %v", n, a, b)
		}
	}
	// cv=0 is the constant pacer.
	g, c := NewGamma(30, 0, 5), NewConstant(30)
	for n := uint64(0); n < 2000; n++ {
		a, _ := g.Next(n)
		b, _ := c.Next(n)
		if a != b {
			t.Fatalf("cv=0: Next(%d) = %v, constant gives %v", n, a, b)
		}
	}
}

// pacerMakers builds every seeded pacer kind for the determinism tests.
var pacerMakers = []struct {
	name string
	make func(seed uint64) Pacer
}{
	{"poisson", func(seed uint64) Pacer { return NewPoisson(100, seed) }},
	{"gamma cv 0.5", func(seed uint64) Pacer { return NewGamma(100, 0.5, seed) }},
	{"gamma cv 3", func(seed uint64) Pacer { return NewGamma(100, 3, seed) }},
	{"stages", func(seed uint64) Pacer {
		return NewStages([]Stage{
			{Duration: 3 * time.Second, Rate: 100, Kind: KindPoisson, Seed: seed},
			{Duration: 2 * time.Second, Rate: 50, Kind: KindGamma, CV: 2, Seed: seed + 1},
			{Duration: time.Second, Rate: 10},
		}, true)
	}},
}

func offsets(t *testing.T, p Pacer, count int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, count)
	for n := range out {
		at, ok := p.Next(uint64(n))
		if !ok {
			t.Fatalf("Next(%d) ended", n)
		}
		out[n] = at
	}
	return out
}

func TestSeededDeterminism(t *testing.T) {
	const count = 5000
	for _, m := range pacerMakers {
		t.Run(m.name, func(t *testing.T) {
			want := offsets(t, m.make(42), count)
			if got := offsets(t, m.make(42), count); !equalDurations(got, want) {
				t.Errorf("same seed gave a different sequence")
			}
			if other := offsets(t, m.make(43), count); equalDurations(other, want) {
				t.Errorf("seeds 42 and 43 gave the same sequence")
			}

			// Any order of questions gets the answers of the forward walk: backwards after
			// forwards, repeats, random jumps.
			p := m.make(42)
			rng := rand.New(rand.NewPCG(1, 2))
			order := []uint64{count - 1, 0, count / 2, count / 2, 1, count - 2, 7, 6, 5}
			for range 200 {
				order = append(order, rng.Uint64N(count))
			}
			for _, n := range order {
				if at, ok := p.Next(n); !ok || at != want[n] {
					t.Fatalf("Next(%d) = %v, %v after other questions; forward walk gave %v", n, at, ok, want[n])
				}
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRenewalEndsAtDurationLimit(t *testing.T) {
	// A mean gap of 1e19 ns overflows time.Duration within a few requests.
	p := NewPoisson(1e-10, 3)
	var n uint64
	var prev time.Duration
	for ; n < 1000; n++ {
		at, ok := p.Next(n)
		if !ok {
			break
		}
		if at < prev {
			t.Fatalf("Next(%d) = %v goes back from %v", n, at, prev)
		}
		prev = at
	}
	if n == 0 || n == 1000 {
		t.Fatalf("schedule ended at request %d; want after request 0 and soon", n)
	}
	for _, later := range []uint64{n, n + 1, n + 100} {
		if _, ok := p.Next(later); ok {
			t.Errorf("Next(%d) after the end should stay ended", later)
		}
	}
	if at, ok := p.Next(n - 1); !ok || at != prev {
		t.Errorf("Next(%d) = %v, %v; want %v, true", n-1, at, ok, prev)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		kind    string
		rate    float64
		wantErr string
		same    Pacer // the pacer New must match, offset for offset
	}{
		{kind: "constant", rate: 4, same: NewConstant(4)},
		{kind: "poisson", rate: 4, same: NewPoisson(4, 9)},
		{kind: "gamma", rate: 4, wantErr: `unknown pacer kind "gamma"`},
		{kind: "Poisson", rate: 4, wantErr: `unknown pacer kind "Poisson"`},
		{kind: "", rate: 4, wantErr: `unknown pacer kind ""`},
		{kind: "poisson", rate: 0, wantErr: "rate must be a positive"},
		{kind: "constant", rate: -1, wantErr: "rate must be a positive"},
		{kind: "constant", rate: math.NaN(), wantErr: "rate must be a positive"},
		{kind: "constant", rate: math.Inf(1), wantErr: "rate must be a positive"},
	}
	for _, tc := range tests {
		p, err := New(tc.kind, tc.rate, 9)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%q, %v): error %v, want one containing %q", tc.kind, tc.rate, err, tc.wantErr)
			}
			if p != nil {
				t.Errorf("New(%q, %v): pacer %v with an error", tc.kind, tc.rate, p)
			}
			continue
		}
		if err != nil {
			t.Fatalf("New(%q, %v): %v", tc.kind, tc.rate, err)
		}
		if p.Rate(0) != tc.rate {
			t.Errorf("New(%q, %v).Rate = %v", tc.kind, tc.rate, p.Rate(0))
		}
		if !equalDurations(offsets(t, p, 500), offsets(t, tc.same, 500)) {
			t.Errorf("New(%q, %v) differs from the direct constructor", tc.kind, tc.rate)
		}
	}
}

func BenchmarkPoissonNext(b *testing.B) {
	p := NewPoisson(2000, 1)
	var n uint64
	for b.Loop() {
		p.Next(n)
		n++
	}
}

func BenchmarkGammaNext(b *testing.B) {
	for _, cv := range []float64{0.5, 2} {
		b.Run("cv="+strconv.FormatFloat(cv, 'g', -1, 64), func(b *testing.B) {
			p := NewGamma(2000, cv, 1)
			var n uint64
			for b.Loop() {
				p.Next(n)
				n++
			}
		})
	}
}

func BenchmarkConstantNext(b *testing.B) {
	p := NewConstant(2000)
	var n uint64
	for b.Loop() {
		p.Next(n)
		n++
	}
}
