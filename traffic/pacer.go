package traffic

import (
	"fmt"
	"math"
	"time"
)

// Pacer kinds, as written in the configuration.
const (
	// KindConstant spaces requests evenly.
	KindConstant = "constant"
	// KindPoisson draws exponential gaps: a Poisson arrival process.
	KindPoisson = "poisson"
	// KindGamma draws gamma gaps with a configured coefficient of variation.
	KindGamma = "gamma"
)

// New builds the open-loop pacer named by kind ("constant" or "poisson") at rate requests per
// second. The seed only matters for random kinds.
//
// Every pacer in this package follows one pure-function model: a pacer is a function from the
// request number n to the offset at which request n is due, measured from the schedule start,
// with request 0 due at offset 0. The same (parameters, seed, n) always give the same offset,
// whatever was asked before, so a schedule can be replayed, compared between targets, or
// resumed. Offsets are whole
// nanoseconds. Pacers keep a cursor so that asking for n in increasing order costs O(1) per
// call; they are not safe for concurrent use (one runner goroutine owns each pacer).
//
// A pacer whose parameters cannot describe a schedule (a rate that is not a positive finite
// number, a negative or non-finite cv) has ended from the start: Next reports ok=false for
// every n and Rate is 0. Validate configuration before building pacers (New does) so such a
// schedule is an error the user sees, not a silent lack of traffic.
func New(kind string, rate float64, seed uint64) (Pacer, error) {
	if kind != KindConstant && kind != KindPoisson {
		return nil, fmt.Errorf("traffic: unknown pacer kind %q (want %q or %q)", kind, KindConstant, KindPoisson)
	}
	if !validRate(rate) {
		return nil, fmt.Errorf("traffic: %s pacer: rate must be a positive finite number of requests per second, got %v", kind, rate)
	}
	if kind == KindPoisson {
		return NewPoisson(rate, seed), nil
	}
	return NewConstant(rate), nil
}

func validRate(rate float64) bool {
	return rate > 0 && !math.IsInf(rate, 1) // NaN fails rate > 0
}

// ended is a schedule without requests.
type ended struct{}

func (ended) Next(uint64) (time.Duration, bool) { return 0, false }
func (ended) Rate(time.Duration) float64        { return 0 }

// NewConstant returns a pacer that spaces requests exactly evenly at rate requests per second.
//
// Rounding rule: the gap is 1/rate rounded once to the nearest nanosecond (at least 1 ns),
// and request n is due at exactly n × gap, computed from n in integer arithmetic each time.
// Every gap is therefore the same number of nanoseconds and nothing accumulates; the achieved
// rate differs from the configured one by the rounding of one gap, at most 0.5 ns per gap
// (zero at rates that divide 1e9, under 1e-6 relative below 2000 requests per second). The
// schedule ends (ok=false) only where n × gap would pass the largest time.Duration, about 292
// years; saturating there instead would release every later request at once.
func NewConstant(rate float64) Pacer {
	if !validRate(rate) {
		return ended{}
	}
	gap := math.Max(1, math.Round(float64(time.Second)/rate))
	if gap >= math.MaxInt64 { // 2^63 as a float: no second request fits
		return &constant{rate: rate, gap: math.MaxInt64, last: 0}
	}
	g := int64(gap)
	return &constant{rate: rate, gap: g, last: uint64(math.MaxInt64 / g)}
}

type constant struct {
	rate float64
	gap  int64
	// last is the highest n whose offset fits in a time.Duration.
	last uint64
}

func (c *constant) Next(n uint64) (time.Duration, bool) {
	if n > c.last {
		return 0, false
	}
	return time.Duration(int64(n) * c.gap), true
}

func (c *constant) Rate(time.Duration) float64 { return c.rate }

// NewPoisson returns a Poisson arrival process at rate requests per second: independent
// exponential gaps with mean 1/rate, each rounded to the nearest nanosecond. Request 0 is due
// at offset 0 and request n after the sum of the first n gaps. The gaps are a pure function
// of (seed, n): the pacer remembers the last (n, offset) and its generator state, so
// increasing n costs O(1) per call (amortised), and asking for an earlier n regenerates the
// sequence from the start.
func NewPoisson(rate float64, seed uint64) Pacer {
	if !validRate(rate) {
		return ended{}
	}
	return newRenewal(rate, 1, seed)
}

// NewGamma returns an arrival process whose gaps follow a gamma distribution with mean 1/rate
// and coefficient of variation cv (standard deviation / mean), which sets the burstiness:
// cv = 1 is exactly NewPoisson(rate, seed) (same seed, same offsets), cv < 1 is more regular,
// cv > 1 clusters requests into bursts separated by longer pauses, and cv = 0 degenerates to
// NewConstant(rate). Gaps are drawn with Marsaglia and Tsang's method (shape k = 1/cv²; for
// k < 1 boosted as Gamma(k+1)·U^(1/k)) and follow the same pure-function model (see New)
// and cursor as NewPoisson.
func NewGamma(rate, cv float64, seed uint64) Pacer {
	switch {
	case !validRate(rate) || !(cv >= 0) || math.IsInf(cv, 1):
		return ended{}
	case cv == 0:
		return NewConstant(rate)
	}
	shape := 1 / (cv * cv)
	if math.IsInf(shape, 1) || shape == 0 {
		// cv so small or so large that the gamma shape leaves float64's range; neither is a
		// meaningful schedule, so treat the extremes as their limits.
		if shape != 0 {
			return NewConstant(rate)
		}
		return ended{}
	}
	return newRenewal(rate, shape, seed)
}

// renewal is a renewal process: independent, identically distributed gaps.
type renewal struct {
	rate  float64
	seed  uint64
	mean  float64 // mean gap in nanoseconds
	shape float64
	g     gapSampler

	// Cursor: request n is due at offset at (nanoseconds).
	n  uint64
	at int64
	// end, when non-zero, is the first n whose offset would pass the largest time.Duration.
	end uint64
}

func newRenewal(rate, shape float64, seed uint64) *renewal {
	return &renewal{
		rate:  rate,
		seed:  seed,
		mean:  float64(time.Second) / rate,
		shape: shape,
		g:     newGapSampler(seed, shape),
	}
}

func (r *renewal) Next(n uint64) (time.Duration, bool) {
	if r.end != 0 && n >= r.end {
		return 0, false
	}
	if n < r.n {
		r.g.reset(r.seed)
		r.n, r.at = 0, 0
	}
	for r.n < n {
		g := r.g.next() * r.mean
		rest := math.MaxInt64 - r.at
		if !(g < float64(rest)) {
			r.end = r.n + 1
			return 0, false
		}
		gap := roundGap(g)
		if gap > rest {
			r.end = r.n + 1
			return 0, false
		}
		r.at += gap
		r.n++
	}
	return time.Duration(r.at), true
}

func (r *renewal) Rate(time.Duration) float64 { return r.rate }

// roundGap is math.Round for a gap in [0, 2^63) nanoseconds, inlined: below 2^52 adding a
// half and truncating rounds halves away from zero as math.Round does; from 2^52 on every
// float64 is already an integer (and adding a half could round up to the next one).
func roundGap(g float64) int64 {
	if g < 1<<52 {
		return int64(g + 0.5)
	}
	return int64(g)
}
