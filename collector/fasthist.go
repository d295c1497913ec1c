package collector

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Every histogram of the per-request path is kept here rather than in client_golang's
// histogram: the per-gap series (inter-token and inter-chunk latency) take one observation per
// token or chunk, dozens per request, and the per-request ones (TTFT, TTFO, TPOT, e2e, the
// rates, the schedule delay, the HTTP phases) a dozen more. client_golang's histogram finds
// each native bucket in a sync.Map (about half its cost per observation) and does atomic
// arithmetic per field; fastHist keeps the same classic and native buckets in plain arrays,
// and every histogram of one adapter shares one lock taken once per request. The native key
// comes from the float's bits and a table, and it gives the classic bucket's neighbourhood,
// so one observation costs a few nanoseconds. Its exposition is what client_golang's
// histogram with the same options exposes (TestGapHistogramMatchesClientGolang holds it to
// that), except that a histogram that outgrows nativeMaxBuckets is exposed at a coarser
// schema rather than reset after nativeMinReset: the stored resolution never drops, so
// nothing needs to be reset to regain it.

// gapSchema is the native schema client_golang picks for nativeFactor (1.1): 3, 8 buckets per
// power of two.
const gapSchema = 3

// gapKeyMin and gapKeys bound the native bucket keys kept in the array: at schema 3 they span
// 2^-48 s (about 4 ps) to 2^16 s (18 h), or as a rate 2^16 tokens/s; keys outside land in a
// map.
const (
	gapKeyMin = -384
	gapKeys   = 512
)

// gapNativeBounds are the fractions that split a power of two into the 8 buckets of schema 3:
// 2^(i/8)/2 for i = 0..7.
var gapNativeBounds = func() []float64 {
	b := make([]float64, 1<<gapSchema)
	for i := range b {
		b[i] = math.Exp2(float64(i)/(1<<gapSchema) - 1)
	}
	return b
}()

// mantissaBits is the width of a float64's stored mantissa; lutShift keeps its top 8 bits.
const (
	mantissaBits = 52
	mantissaMask = 1<<mantissaBits - 1
	lutShift     = mantissaBits - 8
)

// nativeMantissas are the stored mantissas of gapNativeBounds. Each bound lies in [0.5, 1),
// as does Frexp's fraction of any value, so comparing fractions is comparing these integers.
// nativeLUT[c] counts the bounds whose mantissa lies below cell c (the values whose top 8
// mantissa bits are c); the bounds are at least 9% of an octave apart and a cell is 0.4%, so
// a cell holds at most one bound and one comparison finishes the count.
var nativeMantissas, nativeLUT = func() ([1 << gapSchema]uint64, [256]uint8) {
	var ms [1 << gapSchema]uint64
	var lut [256]uint8
	for i, b := range gapNativeBounds {
		ms[i] = math.Float64bits(b) & mantissaMask
	}
	for c := range lut {
		for _, m := range ms {
			if m < uint64(c)<<lutShift {
				lut[c]++
			}
		}
	}
	return ms, lut
}()

// gapZeroThreshold is client_golang's default zero bucket width.
const gapZeroThreshold = prometheus.DefNativeHistogramZeroThreshold

// histFamily is a family of fast histograms, labelled adapter and the family's extra labels.
type histFamily struct {
	desc   *prometheus.Desc
	bounds []float64
	// below[k] counts the classic bounds whose native key is below in-array key k: a value
	// with key k is above all of them, so its classic search starts there.
	below *[gapKeys]uint8

	mu       sync.Mutex
	children []*fastHist
}

func newHistFamily(name, help string, constLabels prometheus.Labels, bounds []float64, extra ...string) *histFamily {
	if len(bounds) > math.MaxUint8 {
		panic("collector: too many classic buckets") // bounded by the layouts above plus three SLOs
	}
	below := new([gapKeys]uint8)
	for _, b := range bounds {
		if b <= gapZeroThreshold || math.IsInf(b, 1) {
			continue // no positive in-array key lies above such a bound's key
		}
		for k := max(nativeKey(b)-gapKeyMin+1, 0); k < gapKeys; k++ {
			below[k]++
		}
	}
	return &histFamily{
		desc:   prometheus.NewDesc(name, help, append([]string{"adapter"}, extra...), constLabels),
		bounds: bounds,
		below:  below,
	}
}

// child returns a new histogram for one set of label values (adapter first); mu is the lock
// it shares with the other histograms one request updates. The caller caches it.
func (f *histFamily) child(mu *sync.Mutex, values ...string) *fastHist {
	h := &fastHist{
		mu:      mu,
		desc:    f.desc,
		labels:  prometheus.MakeLabelPairs(f.desc, values),
		bounds:  f.bounds,
		below:   f.below,
		classic: make([]uint64, len(f.bounds)+1),
		created: time.Now(),
	}
	f.mu.Lock()
	f.children = append(f.children, h)
	f.mu.Unlock()
	return h
}

// Describe implements prometheus.Collector.
func (f *histFamily) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect implements prometheus.Collector.
func (f *histFamily) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	children := f.children
	f.mu.Unlock()
	for _, h := range children {
		ch <- h
	}
}

// fastHist is one series. Observations are added with mu held; Write takes the same lock, so
// a scrape never sees half a request.
type fastHist struct {
	mu      *sync.Mutex
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	bounds  []float64
	below   *[gapKeys]uint8
	created time.Time

	classic []uint64 // per bucket, the last one +Inf
	native  [gapKeys]uint64
	far     map[int]uint64 // native keys outside the array
	zero    uint64
	count   uint64
	sum     float64
}

// add records n observations of v; mu is held.
func (h *fastHist) add(v float64, n uint64) {
	h.count += n
	h.sum += v * float64(n)
	if v > gapZeroThreshold && v <= math.MaxFloat64 {
		// The common case: a positive finite value.
		if k := keyFromBits(v) - gapKeyMin; k >= 0 && k < gapKeys {
			c := int(h.below[k])
			for c < len(h.bounds) && v > h.bounds[c] {
				c++
			}
			h.classic[c] += n
			h.native[k] += n
			return
		}
	}
	h.addSlow(v, n)
}

// addGap records one gap g of a chunk of k tokens: once g in chunks and k times g/k in tokens
// (two histograms of one layout). For the common single-token chunk both take the same
// buckets, found once.
func addGap(chunks, tokens *fastHist, g float64, k int) {
	if k != 1 || !(g > gapZeroThreshold && g <= math.MaxFloat64) {
		chunks.add(g, 1)
		tokens.add(g/float64(k), uint64(k))
		return
	}
	key := keyFromBits(g) - gapKeyMin
	if key < 0 || key >= gapKeys {
		chunks.add(g, 1)
		tokens.add(g, 1)
		return
	}
	c := int(chunks.below[key])
	for c < len(chunks.bounds) && g > chunks.bounds[c] {
		c++
	}
	for _, h := range [2]*fastHist{chunks, tokens} {
		h.count++
		h.sum += g
		h.classic[c]++
		h.native[key]++
	}
}

// addSlow files what add's fast path does not: zero, negative, infinite, NaN and
// out-of-array values; count and sum are done.
func (h *fastHist) addSlow(v float64, n uint64) {
	i := len(h.bounds)
	if v <= h.bounds[i-1] {
		i = 0
		for v > h.bounds[i] {
			i++
		}
	}
	h.classic[i] += n
	if math.IsNaN(v) {
		return
	}
	if v <= gapZeroThreshold && v >= -gapZeroThreshold {
		h.zero += n
		return
	}
	if v < 0 {
		return // durations and rates are never negative; client_golang would keep a negative bucket
	}
	key := nativeKey(v)
	if k := key - gapKeyMin; k >= 0 && k < gapKeys {
		h.native[k] += n
		return
	}
	if h.far == nil {
		h.far = map[int]uint64{}
	}
	h.far[key] += n
}

// keyFromBits is nativeKey for a positive finite v above the zero threshold (so a normal
// float), from its bits: the table gives the count of bounds below the fraction.
// TestKeyFromBits holds it to nativeKey.
func keyFromBits(v float64) int {
	b := math.Float64bits(v)
	m := b & mantissaMask
	i := int(nativeLUT[m>>lutShift])
	if i < len(nativeMantissas) && nativeMantissas[i] < m {
		i++
	}
	// Frexp's exponent is the biased one minus 1022, and a key is i + (exp-1)*8.
	return i + (int(b>>mantissaBits)-1023)<<gapSchema
}

// nativeKey is the schema-3 bucket key of v > 0, computed as client_golang does.
func nativeKey(v float64) int {
	isInf := math.IsInf(v, 1)
	if isInf {
		v = math.MaxFloat64
	}
	frac, exp := math.Frexp(v)
	// The first bound ≥ frac, as sort.SearchFloat64s finds it; a scan of 8 is quicker.
	i := 0
	for i < len(gapNativeBounds) && gapNativeBounds[i] < frac {
		i++
	}
	key := i + (exp-1)*len(gapNativeBounds)
	if isInf {
		key++
	}
	return key
}

// Desc implements prometheus.Metric.
func (h *fastHist) Desc() *prometheus.Desc { return h.desc }

// Write implements prometheus.Metric.
func (h *fastHist) Write(out *dto.Metric) error {
	h.mu.Lock()
	count, sum, zero := h.count, h.sum, h.zero
	his := &dto.Histogram{
		Bucket:           make([]*dto.Bucket, len(h.bounds)),
		SampleCount:      &count,
		SampleSum:        &sum,
		CreatedTimestamp: timestamppb.New(h.created),
		ZeroCount:        &zero,
	}
	var cum uint64
	for i, ub := range h.bounds {
		cum += h.classic[i]
		his.Bucket[i] = &dto.Bucket{CumulativeCount: new(cum), UpperBound: new(ub)}
	}
	keys := make([]int, 0, 32)
	counts := map[int]uint64{}
	for k, c := range h.native {
		if c > 0 {
			keys = append(keys, k+gapKeyMin)
			counts[k+gapKeyMin] = c
		}
	}
	for k, c := range h.far {
		keys = append(keys, k)
		counts[k] = c
	}
	h.mu.Unlock()

	sort.Ints(keys)
	schema := int32(gapSchema)
	for len(keys) > nativeMaxBuckets && schema > -4 {
		// Halve the resolution: bucket i of schema s is bucket ceil(i/2) of s-1.
		merged := make([]int, 0, len(keys))
		next := map[int]uint64{}
		for _, k := range keys {
			nk := (k + 1) >> 1
			if _, ok := next[nk]; !ok {
				merged = append(merged, nk)
			}
			next[nk] += counts[k]
		}
		keys, counts, schema = merged, next, schema-1
	}
	his.Schema = &schema
	zt := gapZeroThreshold
	his.ZeroThreshold = &zt
	his.PositiveSpan, his.PositiveDelta = spans(keys, counts)
	out.Histogram = his
	out.Label = h.labels
	return nil
}

// spans encodes sorted bucket keys as native histogram spans and deltas, joining spans across
// gaps of up to two empty buckets as client_golang does.
func spans(keys []int, counts map[int]uint64) ([]*dto.BucketSpan, []int64) {
	if len(keys) == 0 {
		return nil, nil
	}
	var (
		ss     []*dto.BucketSpan
		deltas []int64
		prev   int64
		next   int
	)
	appendDelta := func(c int64) {
		*ss[len(ss)-1].Length++
		deltas = append(deltas, c-prev)
		prev = c
	}
	for n, k := range keys {
		gap := int32(k - next)
		if n == 0 || gap > 2 {
			ss = append(ss, &dto.BucketSpan{Offset: new(gap), Length: new(uint32(0))})
		} else {
			for range gap {
				appendDelta(0)
			}
		}
		appendDelta(int64(counts[k]))
		next = k + 1
	}
	return ss, deltas
}
