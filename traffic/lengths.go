package traffic

import (
	"math"
	"math/rand/v2"

	"github.com/inferprobe/inferprobe/config"
)

// Lengths gives request n's length in tokens, a pure function of n (and the seed it was made
// with), safe for concurrent use.
type Lengths interface {
	Length(n uint64) int
}

// NewLengths returns the lengths of a validated distribution, drawn from seed: fixed is always
// round(mean); uniform is an integer between min and max, each equally likely; normal and
// lognormal draw with the given mean and standard deviation of the lengths themselves
// (lognormal's log has σ² = ln(1 + stddev²/mean²) and μ = ln(mean) − σ²/2), rounded to the
// nearest integer. Every draw is then kept within [min, max] (min 1 and max
// config.MaxTokensLimit when not given), so a clipped tail piles up at the bounds instead of
// being redrawn: the count of requests stays a function of n alone.
func NewLengths(d config.LengthDist, seed uint64) Lengths {
	l := lengthDist{dist: d.Dist, mean: d.Mean, stddev: d.Stddev, lo: d.Min, hi: d.Max, key: mix64(seed ^ streamLengths)}
	if l.lo < 1 {
		l.lo = 1
	}
	if l.hi < 1 {
		l.hi = config.MaxTokensLimit
	}
	if d.Dist == config.DistLognormal && d.Mean > 0 {
		v := math.Log1p(d.Stddev * d.Stddev / (d.Mean * d.Mean))
		l.sigma, l.mu = math.Sqrt(v), math.Log(d.Mean)-v/2
	}
	return l
}

type lengthDist struct {
	dist         string
	mean, stddev float64
	lo, hi       int
	mu, sigma    float64
	key          uint64
}

func (l lengthDist) Length(n uint64) int {
	var p rand.PCG
	seedPCG(&p, hashIndex(l.key, n), streamLengths)
	u := func() float64 { return (float64(p.Uint64()>>11) + 0.5) * 0x1p-53 } // in (0, 1)
	var x float64
	switch l.dist {
	case config.DistUniform:
		return l.lo + int(p.Uint64()%uint64(l.hi-l.lo+1))
	case config.DistNormal, config.DistLognormal:
		// Box–Muller: one standard normal from two uniforms.
		z := math.Sqrt(-2*math.Log(u())) * math.Cos(2*math.Pi*u())
		if l.dist == config.DistNormal {
			x = l.mean + l.stddev*z
		} else {
			x = math.Exp(l.mu + l.sigma*z)
		}
	default:
		x = l.mean
	}
	x = math.Round(x)
	switch {
	case !(x >= float64(l.lo)): // NaN included
		return l.lo
	case x > float64(l.hi):
		return l.hi
	}
	return int(x)
}

// lengthsOf returns the lengths a config length describes: nil for a plain number (the caller
// uses the number).
func lengthsOf(t config.Tokens, seed uint64, purpose string) Lengths {
	if t.Dist == nil {
		return nil
	}
	return NewLengths(*t.Dist, SubSeed(seed, purpose))
}
