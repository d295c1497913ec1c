package sensitivity

import (
	"math"
	"slices"

	"github.com/inferprobe/inferprobe/bench"
)

// Classifications, as the slowdown method names them.
const (
	// Linear: throughput falls in proportion to the delay: the code is on the critical path.
	Linear = "linear"
	// SubLinear: throughput falls, but less than in proportion (partly overlapped).
	SubLinear = "sub-linear"
	// None: no drop beyond noise: the code is off the critical path.
	None = "none"
	// Threshold: no drop until the delay exceeds a slack, then a drop.
	Threshold = "threshold"
)

// FlatTolerance is the relative throughput change below which two levels count as equal
// (throughput between levels measured minutes apart on a shared two-core machine varied by up
// to 8% with nothing changed).
const FlatTolerance = 0.10

// Point is one measurement: a delay in seconds and a throughput.
type Point struct{ X, Y float64 }

// Fit is an ordinary least-squares line y = Intercept + Slope·x with its R² and the 95%
// confidence interval of the slope (Student's t with n−2 degrees of freedom).
type Fit struct {
	Slope     float64    `json:"slope"`
	Intercept float64    `json:"intercept"`
	R2        float64    `json:"r2"`
	SlopeCI95 [2]float64 `json:"slope_ci95"`
	N         int        `json:"n"`
	sse       float64
}

// FitLine fits pts; it needs two distinct x values (else the zero Fit).
func FitLine(pts []Point) Fit {
	n := float64(len(pts))
	if len(pts) < 2 {
		return Fit{N: len(pts)}
	}
	var mx, my float64
	for _, p := range pts {
		mx += p.X
		my += p.Y
	}
	mx /= n
	my /= n
	var sxx, sxy, syy float64
	for _, p := range pts {
		sxx += (p.X - mx) * (p.X - mx)
		sxy += (p.X - mx) * (p.Y - my)
		syy += (p.Y - my) * (p.Y - my)
	}
	if sxx == 0 {
		return Fit{N: len(pts), Intercept: my}
	}
	f := Fit{N: len(pts), Slope: sxy / sxx}
	f.Intercept = my - f.Slope*mx
	for _, p := range pts {
		r := p.Y - (f.Intercept + f.Slope*p.X)
		f.sse += r * r
	}
	if syy > 0 {
		f.R2 = 1 - f.sse/syy
	} else {
		f.R2 = 1
	}
	if len(pts) > 2 {
		se := math.Sqrt(f.sse / (n - 2) / sxx)
		half := bench.TCritical95(len(pts)-2) * se
		f.SlopeCI95 = [2]float64{f.Slope - half, f.Slope + half}
	} else {
		f.SlopeCI95 = [2]float64{f.Slope, f.Slope}
	}
	return f
}

// At returns the fitted value at x.
func (f Fit) At(x float64) float64 { return f.Intercept + f.Slope*x }

// Analysis is what the experiment concludes from throughput per level.
type Analysis struct {
	// Figure is the throughput measured (output tokens per second).
	Figure string `json:"figure"`
	// Fit is the line through every measurement (x: delay in seconds).
	Fit Fit `json:"fit"`
	// AtZero is the fitted throughput at no delay; AtNegative the fitted throughput at minus
	// the smallest non-zero level ("if this code were that much faster"): an extrapolation
	// beyond the measured range, flagged as such.
	AtZero        float64 `json:"at_zero"`
	AtNegative    float64 `json:"at_negative"`
	NegativeDelay float64 `json:"negative_delay_seconds"`
	Extrapolated  bool    `json:"extrapolated"`
	// Drop is the relative throughput drop from the first to the last level.
	Drop float64 `json:"drop"`
	// Classification is linear, sub-linear, none or threshold; Breakpoint is a threshold's
	// last level without a drop (seconds of delay).
	Classification string   `json:"classification"`
	Breakpoint     *float64 `json:"breakpoint_seconds,omitempty"`
	// Advice says what the classification means for where to optimise.
	Advice string `json:"advice"`
}

// Analyze classifies throughput against delay. means are the per-level means in level order
// (delays ascending); pts every measurement.
func Analyze(delays, means []float64, pts []Point) Analysis {
	a := Analysis{Figure: "output_tokens_per_second", Fit: FitLine(pts)}
	a.AtZero = a.Fit.At(0)
	for _, d := range delays {
		if d > 0 {
			a.NegativeDelay = -d
			break
		}
	}
	a.AtNegative = a.Fit.At(a.NegativeDelay)
	a.Extrapolated = a.NegativeDelay < 0
	if len(means) < 2 || means[0] <= 0 {
		a.Classification, a.Advice = None, "too few levels measured to tell"
		return a
	}
	y0 := means[0]
	a.Drop = (y0 - means[len(means)-1]) / y0
	noSlope := a.Fit.SlopeCI95[0] <= 0 && a.Fit.SlopeCI95[1] >= 0 && a.Fit.N > 2
	switch {
	case a.Drop < FlatTolerance, noSlope && a.Drop < 2*FlatTolerance:
		// No drop beyond noise: under the tolerance, or a slope indistinguishable from zero
		// with a drop the noise of a shared machine can explain.
		a.Classification = None
	case breakpoint(means) >= 0 && piecewiseBetter(delays, means, breakpoint(means)):
		a.Classification = Threshold
		b := delays[breakpoint(means)]
		a.Breakpoint = &b
	case a.Fit.R2 >= 0.9:
		a.Classification = Linear
	default:
		a.Classification = SubLinear
	}
	a.Advice = advice(a)
	return a
}

// breakpoint returns the last level k ≥ 1 such that every level up to k is within
// FlatTolerance of the first and every later level drops beyond it; −1 when there is none.
func breakpoint(means []float64) int {
	y0 := means[0]
	k := 0
	for k+1 < len(means) && math.Abs(means[k+1]-y0)/y0 < FlatTolerance {
		k++
	}
	if k == 0 || k >= len(means)-1 {
		return -1
	}
	for _, m := range means[k+1:] {
		if (y0-m)/y0 < FlatTolerance {
			return -1
		}
	}
	return k
}

// piecewiseBetter reports whether flat-then-line at breakpoint k explains the means clearly
// better (under half the squared error) than one line.
func piecewiseBetter(delays, means []float64, k int) bool {
	var line []Point
	for i := range means {
		line = append(line, Point{delays[i], means[i]})
	}
	lin := FitLine(line).sse
	flat := 0.0
	for _, m := range means[:k+1] {
		flat += (m - means[0]) * (m - means[0])
	}
	tail := FitLine(slices.Clone(line[k:])).sse
	return flat+tail < 0.5*lin || lin == 0
}

func advice(a Analysis) string {
	switch a.Classification {
	case None:
		return "not on the critical path: slowing this code costs no throughput; look elsewhere (GPU kernels, memory bandwidth, I/O, the scheduler)"
	case Threshold:
		return "hidden up to a slack, then on the critical path: there is headroom below the breakpoint; optimise it only if the code grows past it"
	case Linear:
		return "on the critical path: throughput falls with every added nanosecond, so making this code faster raises throughput roughly as the fit's extrapolation says"
	}
	return "partly on the critical path: throughput falls, less than in proportion; some of the time overlaps other work"
}
