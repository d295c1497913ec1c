package traffic

import (
	"math"
	"math/rand/v2"
)

// Seeded randomness. Every pacer and source owns its generator: a PCG-DXSM (math/rand/v2.PCG)
// seeded from the object's seed and a per-purpose stream constant. Only PCG's raw Uint64 output
// is used; uniforms, exponentials, normals and gammas are derived here rather than through
// rand.Rand, so a seed keeps producing the same sequence even if the standard library changes
// how rand.Rand turns bits into floats. (Floating-point results may still differ in the last
// bit between CPU architectures that fuse multiply-adds; on one platform they are exact.)
//
// Changing anything in this file (or ziggurat.go) changes reproduced request sequences: do it
// only for a reason, and say so in docs/configuration.md's "Reproducing a run".

// Stream constants keep the generators of different purposes independent for one seed.
const (
	streamArrivals = 0x6172726976616c73 // "arrivals"
	streamWords    = 0x776f726473000001
	streamFixed    = 0x6669786564000002
	streamAdapters = 0x6164617074000003
	streamNonce    = 0x6e6f6e6365000004
	streamCycle    = 0x6379636c65000005
	streamBlock    = 0x626c6f636b000006 // a shared-prefix block's words (trace hash ids, groups)
	streamLengths  = 0x6c656e6774000007 // drawn input and output lengths
	streamSample   = 0x73616d706c000008 // which data set entry a request sends
	streamTurn     = 0x7475726e00000009 // a conversation's later turns

	// golden is 2^64 divided by the golden ratio: odd, so multiplying by it permutes uint64.
	golden = 0x9e3779b97f4a7c15
)

// mix64 is the splitmix64 finalizer: a bijection on uint64 with good avalanche, used to turn
// structured inputs (seed, n, stream) into well-spread generator seeds.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// hashIndex maps (key, n) to a well-mixed value. For a fixed key it is a bijection of n
// (an odd multiply, an add and mix64 all permute uint64), so distinct n never collide.
func hashIndex(key, n uint64) uint64 {
	return mix64(key + n*golden)
}

// seedPCG resets p to the generator for (seed, stream). Distinct seeds give distinct states
// for one stream because mix64 is a bijection.
func seedPCG(p *rand.PCG, seed, stream uint64) {
	p.Seed(mix64(seed^stream), mix64(seed+stream*golden))
}

// SubSeed derives an independent seed from a base seed and names, e.g.
// SubSeed(base, target, "arrivals") and SubSeed(base, target, "prompts"), so that one base
// seed reproduces the exact request sequence of every target and every purpose while the
// streams stay uncorrelated. It hashes base and each part (length-prefixed, so ("ab","c") and
// ("a","bc") differ) with 64-bit FNV-1a and finishes with the splitmix64 finalizer. The result
// is stable across releases and platforms.
func SubSeed(base uint64, parts ...string) uint64 {
	const (
		offset = 0xcbf29ce484222325
		prime  = 0x100000001b3
	)
	h := uint64(offset)
	word := func(v uint64) {
		for i := 0; i < 8; i++ {
			h ^= v & 0xff
			h *= prime
			v >>= 8
		}
	}
	word(base)
	for _, p := range parts {
		word(uint64(len(p)))
		for i := 0; i < len(p); i++ {
			h ^= uint64(p[i])
			h *= prime
		}
	}
	return mix64(h)
}

// gapSampler draws unit-mean gaps (multiply by the mean gap to scale). It keeps only the PCG
// state, so resetting it replays the same draws.
type gapSampler struct {
	pcg rand.PCG
	// shape is the gamma shape k = 1/cv²; 1 selects the exponential (Poisson) path.
	shape float64
	// invShape is 1/k, for the boost of shapes below 1 and the final scaling.
	invShape float64
	// d and c are Marsaglia–Tsang's constants for shape max(k, k+1).
	d, c float64
}

func newGapSampler(seed uint64, shape float64) gapSampler {
	g := gapSampler{shape: shape, invShape: 1 / shape}
	a := shape
	if a < 1 {
		a++ // boost: Gamma(k) = Gamma(k+1) · U^(1/k)
	}
	g.d = a - 1.0/3
	g.c = 1 / math.Sqrt(9*g.d)
	g.reset(seed)
	return g
}

func (g *gapSampler) reset(seed uint64) {
	seedPCG(&g.pcg, seed, streamArrivals)
}

// uniform returns a float64 in [0, 1) with 53 random bits.
func (g *gapSampler) uniform() float64 {
	return float64(g.pcg.Uint64()>>11) * 0x1p-53
}

// uniformOpen returns a float64 in (0, 1), safe for logarithms and negative powers.
func (g *gapSampler) uniformOpen() float64 {
	return (float64(g.pcg.Uint64()>>11) + 0.5) * 0x1p-53
}

// next returns one gap with mean 1: Exp(1) for shape 1 (by the exponential ziggurat),
// otherwise Gamma(k, 1/k).
func (g *gapSampler) next() float64 {
	if g.shape == 1 {
		return g.zigExponential()
	}
	if g.shape < 1 {
		// U^(1/k) = e^(-E/k) with E = -log U a unit exponential: a ziggurat draw and one
		// table exponential instead of a logarithm and math.Exp (or Pow). Drawn before the
		// gamma so the exponential's dependent arithmetic overlaps the gamma's draws.
		boost := expNeg(-g.zigExponential() * g.invShape)
		return g.gamma() * boost * g.invShape
	}
	return g.gamma() * g.invShape
}

// gamma draws Gamma(d+1/3, 1) by Marsaglia and Tsang's squeeze-and-reject method
// ("A simple method for generating gamma variables", 2000), valid for shape ≥ 1.
func (g *gapSampler) gamma() float64 {
	for {
		x := g.zigNormal()
		v := 1 + g.c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := g.uniformOpen()
		x2 := x * x
		if u < 1-0.0331*x2*x2 {
			return g.d * v
		}
		if math.Log(u) < 0.5*x2+g.d*(1-v+math.Log(v)) {
			return g.d * v
		}
	}
}
