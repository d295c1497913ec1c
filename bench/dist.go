package bench

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// RelativeAccuracy is the relative error bound of every percentile in a report: a reported
// quantile q is within ±0.5% of a value whose rank is exactly q (DDSketch's guarantee). Count,
// mean, min, max and stddev are exact.
const RelativeAccuracy = 0.005

// quantiles are the percentiles every distribution reports, as fractions; percentileNames
// names them in the report. Arrays, so nothing can change them.
var (
	quantiles       = [...]float64{0.001, 0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999}
	percentileNames = [...]string{"p0.1", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "p99.9"}
)

// Dist is one distribution of a report (latencies in seconds, or rates): a mergeable sketch
// with exact summary statistics, so shard reports merge exactly instead of averaging
// percentiles.
type Dist struct {
	sk    *ddsketch.DDSketchWithExactSummaryStatistics
	sumSq float64
}

func newMapping() mapping.IndexMapping {
	m, err := mapping.NewCubicallyInterpolatedMapping(RelativeAccuracy)
	if err != nil {
		panic(err) // RelativeAccuracy is a valid constant
	}
	return m
}

// NewDist returns an empty distribution.
func NewDist() *Dist {
	return &Dist{sk: ddsketch.NewDDSketchWithExactSummaryStatistics(newMapping(), store.DenseStoreConstructor)}
}

// Add records one value; negative and non-finite values are ignored (a clock cannot produce
// them, and one must not poison a report).
func (d *Dist) Add(v float64) {
	if !(v >= 0) || math.IsInf(v, 1) {
		return
	}
	_ = d.sk.Add(v) // fails only for values the check above excludes
	d.sumSq += v * v
}

// AddN records value v n times (a k-token chunk's k per-token gaps).
func (d *Dist) AddN(v float64, n int) {
	if n <= 0 || !(v >= 0) || math.IsInf(v, 1) {
		return
	}
	_ = d.sk.AddWithCount(v, float64(n))
	d.sumSq += float64(n) * v * v
}

// Merge adds every value of o to d.
func (d *Dist) Merge(o *Dist) error {
	if o == nil || o.sk.IsEmpty() {
		return nil
	}
	if err := d.sk.MergeWith(o.sk); err != nil {
		return err
	}
	d.sumSq += o.sumSq
	return nil
}

// Count returns how many values were added.
func (d *Dist) Count() int64 { return int64(d.sk.GetCount()) }

// Quantile returns the value at quantile q (0..1), 0 when empty.
func (d *Dist) Quantile(q float64) float64 {
	if d.sk.IsEmpty() {
		return 0
	}
	v, err := d.sk.GetValueAtQuantile(q)
	if err != nil {
		return 0
	}
	return v
}

// Summary is what a report shows of a distribution.
type Summary struct {
	Count       int64              `json:"count"`
	Mean        float64            `json:"mean"`
	Min         float64            `json:"min"`
	Max         float64            `json:"max"`
	Stddev      float64            `json:"stddev"`
	Percentiles map[string]float64 `json:"percentiles"`
}

// Summary computes the distribution's summary.
func (d *Dist) Summary() Summary {
	s := Summary{Count: d.Count(), Percentiles: map[string]float64{}}
	if s.Count == 0 {
		return s
	}
	n := float64(s.Count)
	sum := d.sk.GetSum()
	s.Mean = sum / n
	s.Min, _ = d.sk.GetMinValue()
	s.Max, _ = d.sk.GetMaxValue()
	if s.Count > 1 {
		// Sample standard deviation from the exact sums; clamp rounding below zero.
		s.Stddev = math.Sqrt(max(0, (d.sumSq-sum*sum/n)/(n-1)))
	}
	vals, err := d.sk.GetValuesAtQuantiles(quantiles[:])
	if err == nil {
		for i, v := range vals {
			// A sketch answers with a bucket's representative value; keep it inside the
			// exact range.
			s.Percentiles[percentileNames[i]] = min(max(v, s.Min), s.Max)
		}
	}
	return s
}

// distJSON is a Dist in a report: the summary for readers, and the sketch and sum of squares
// for exact merging.
type distJSON struct {
	Summary
	Sketch     string  `json:"sketch"`
	SumSquares float64 `json:"sum_squares"`
}

// MarshalJSON implements json.Marshaler.
func (d *Dist) MarshalJSON() ([]byte, error) {
	var b []byte
	d.sk.Encode(&b, false)
	return json.Marshal(distJSON{Summary: d.Summary(), Sketch: base64.StdEncoding.EncodeToString(b), SumSquares: d.sumSq})
}

// UnmarshalJSON implements json.Unmarshaler: it restores the sketch (the summary is derived).
func (d *Dist) UnmarshalJSON(data []byte) error {
	var j distJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*d = *NewDist()
	if j.Sketch == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(j.Sketch)
	if err != nil {
		return fmt.Errorf("sketch: %w", err)
	}
	sk, err := ddsketch.DecodeDDSketchWithExactSummaryStatistics(b, store.DenseStoreConstructor, nil)
	if err != nil {
		return fmt.Errorf("sketch: %w", err)
	}
	if got := int64(sk.GetCount()); got != j.Count {
		return fmt.Errorf("sketch holds %d values, summary says %s", got, strconv.FormatInt(j.Count, 10))
	}
	d.sk, d.sumSq = sk, j.SumSquares
	return nil
}
