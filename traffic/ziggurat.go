package traffic

import "math"

// Marsaglia and Tsang's ziggurat for standard normal deviates ("The Ziggurat Method for
// Generating Random Variables", 2000), 128 layers: one 64-bit draw and a multiply for about
// 98.8% of deviates, against a log and a square root per pair for the polar method. The layer
// index comes from other bits than the value (the original drew both from the same 32 bits).
// The tables are computed once and never changed.
const (
	zigLayers = 128
	zigR      = 3.442619855899      // start of the tail
	zigV      = 9.91256303526217e-3 // area of each layer
	zigM      = 2147483648.0        // 2^31: the scale of the 32-bit signed draw
	zigInvR   = 1 / 3.442619855899  // for the tail's exponential draws
)

type zigTables struct {
	k [zigLayers]uint32
	w [zigLayers]float64
	f [zigLayers]float64
}

var zig = newZigTables()

func newZigTables() *zigTables {
	t := &zigTables{}
	dn, tn := zigR, zigR
	q := zigV / math.Exp(-0.5*dn*dn)
	t.k[0] = uint32(dn / q * zigM)
	t.k[1] = 0
	t.w[0] = q / zigM
	t.w[zigLayers-1] = dn / zigM
	t.f[0] = 1
	t.f[zigLayers-1] = math.Exp(-0.5 * dn * dn)
	for i := zigLayers - 2; i >= 1; i-- {
		dn = math.Sqrt(-2 * math.Log(zigV/dn+math.Exp(-0.5*dn*dn)))
		t.k[i+1] = uint32(dn / tn * zigM)
		tn = dn
		t.f[i] = math.Exp(-0.5 * dn * dn)
		t.w[i] = dn / zigM
	}
	return t
}

// zigNormal returns a standard normal deviate drawn from g's generator.
func (g *gapSampler) zigNormal() float64 {
	for {
		x := g.pcg.Uint64()
		hz := int32(uint32(x))
		iz := (x >> 32) & (zigLayers - 1)
		abs := uint32(hz)
		if hz < 0 {
			abs = uint32(-int64(hz))
		}
		if abs < zig.k[iz] {
			return float64(hz) * zig.w[iz]
		}
		v := float64(hz) * zig.w[iz]
		if iz == 0 {
			// The tail beyond zigR, by Marsaglia's exponential method.
			for {
				a := -math.Log(g.uniformOpen()) * zigInvR
				b := -math.Log(g.uniformOpen())
				if b+b >= a*a {
					if hz > 0 {
						return zigR + a
					}
					return -zigR - a
				}
			}
		}
		if zig.f[iz]+g.uniform()*(zig.f[iz-1]-zig.f[iz]) < math.Exp(-0.5*v*v) {
			return v
		}
	}
}

// Marsaglia and Tsang's ziggurat for unit exponential deviates (same paper), 256 layers: one
// 64-bit draw and a multiply for about 98.9% of deviates, against a logarithm per draw for the
// inverse transform. The value uses the top 53 bits and the layer index the low 8, so they are
// independent. The tables are computed once and never changed.
const (
	zigExpLayers = 256
	zigExpR      = 7.697117470131487    // start of the tail
	zigExpV      = 3.949659822581572e-3 // area of each layer
	zigExpM      = 9007199254740992.0   // 2^53: the scale of the value bits
)

type zigExpTables struct {
	k [zigExpLayers]uint64
	w [zigExpLayers]float64
	f [zigExpLayers]float64
}

var zigExp = newZigExpTables()

func newZigExpTables() *zigExpTables {
	t := &zigExpTables{}
	de, te := zigExpR, zigExpR
	q := zigExpV / math.Exp(-de)
	t.k[0] = uint64(de / q * zigExpM)
	t.k[1] = 0
	t.w[0] = q / zigExpM
	t.w[zigExpLayers-1] = de / zigExpM
	t.f[0] = 1
	t.f[zigExpLayers-1] = math.Exp(-de)
	for i := zigExpLayers - 2; i >= 1; i-- {
		de = -math.Log(zigExpV/de + math.Exp(-de))
		t.k[i+1] = uint64(de / te * zigExpM)
		te = de
		t.f[i] = math.Exp(-de)
		t.w[i] = de / zigExpM
	}
	return t
}

// zigExponential returns a unit exponential deviate drawn from g's generator.
func (g *gapSampler) zigExponential() float64 {
	for {
		x := g.pcg.Uint64()
		jz := x >> 11
		iz := x & (zigExpLayers - 1)
		if jz < zigExp.k[iz] {
			return float64(jz) * zigExp.w[iz]
		}
		if iz == 0 {
			// The tail beyond zigExpR is, by memorylessness, zigExpR plus a fresh deviate.
			return zigExpR - math.Log(g.uniformOpen())
		}
		v := float64(jz) * zigExp.w[iz]
		if zigExp.f[iz]+g.uniform()*(zigExp.f[iz-1]-zigExp.f[iz]) < math.Exp(-v) {
			return v
		}
	}
}

// expNeg returns e^y for y ≤ 0 to within a few ulps, faster than math.Exp on the hot path
// of burstier-than-Poisson gaps (it runs once per gap). It is the classic table method:
// y = (256m + j)·ln2/256 + r with |r| ≤ ln2/512, e^y = 2^m · 2^(j/256) · e^r, e^r by its
// degree-4 Taylor polynomial (truncation below 4e-17). Being plain Go it also gives the same
// bits on every platform without fused multiply-adds, unlike math.Exp's assembly.
func expNeg(y float64) float64 {
	if !(y >= -708) {
		// Results near or below the smallest normal float64 (and NaN): rare, leave them to
		// the library.
		return math.Exp(y)
	}
	const (
		perLn2 = exp2TableSize / math.Ln2
		// ln2/256 split in two (fdlibm's ln2 halves, scaled by 1/256) so k·hi is exact for
		// the |k| ≤ 2^18 reached here.
		ln2HiN = 6.93147180369123816490e-01 / exp2TableSize
		ln2LoN = 1.90821492927058770002e-10 / exp2TableSize
	)
	// The nearest integer k to y·256/ln2 by the 1.5·2^52 shifter: adding it leaves k in the
	// low mantissa bits (two's complement), subtracting it gives k as a float, without the
	// float→int→float conversions' latency.
	const shifter = 0x1.8p52
	kf := y*perLn2 + shifter
	ki := int64(math.Float64bits(kf))
	k := kf - shifter
	r := (y - k*ln2HiN) - k*ln2LoN
	// e^r to degree 4, grouped (Estrin) so the dependent chain is three steps, not five.
	r2 := r * r
	p := (1 + r) + r2*((0.5+r*(1.0/6))+r2*(1.0/24))
	// The low 32 bits of ki hold k (|k| < 2^18); sign-extend them before splitting k into
	// the exponent m and the table index j.
	ki = int64(int32(ki))
	scale := math.Float64frombits(uint64(1023+(ki>>exp2TableBits)) << 52)
	return exp2Table[ki&(exp2TableSize-1)] * p * scale
}

// expNeg's table: 2^(j/256) for j < 256.
const (
	exp2TableBits = 8
	exp2TableSize = 1 << exp2TableBits
)

var exp2Table = newExp2Table()

func newExp2Table() *[exp2TableSize]float64 {
	var t [exp2TableSize]float64
	for j := range t {
		t[j] = math.Exp2(float64(j) / exp2TableSize)
	}
	return &t
}
