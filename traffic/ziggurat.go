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
