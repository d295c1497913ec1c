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

// The per-gap series (inter-token and inter-chunk latency) take one observation per token or
// chunk, dozens per request. client_golang's histogram finds each native bucket in a sync.Map
// (about half its cost per observation); gapHistogram keeps the same classic and native buckets
// in plain arrays under one lock taken once per request, so a request's gaps cost a few
// nanoseconds each. Its exposition is what client_golang's histogram with the same options
// exposes (TestGapHistogramMatchesClientGolang holds it to that), except that a histogram
// that outgrows nativeMaxBuckets is exposed at a coarser schema rather than reset after
// nativeMinReset: the stored resolution never drops, so nothing needs to be reset to regain it.

// gapSchema is the native schema client_golang picks for nativeFactor (1.1): 3, 8 buckets per
// power of two.
const gapSchema = 3

// gapKeyMin and gapKeys bound the native bucket keys kept in the array: at schema 3 they span
// 2^-48 s (about 4 ps) to 2^16 s (18 h); keys outside land in a map.
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

// gapZeroThreshold is client_golang's default zero bucket width.
const gapZeroThreshold = prometheus.DefNativeHistogramZeroThreshold

// gapFamily is a family of gap histograms, one per adapter.
type gapFamily struct {
	desc   *prometheus.Desc
	bounds []float64

	mu       sync.Mutex
	children []*gapHistogram
}

func newGapFamily(name, help string, constLabels prometheus.Labels, bounds []float64) *gapFamily {
	return &gapFamily{
		desc:   prometheus.NewDesc(name, help, []string{"adapter"}, constLabels),
		bounds: bounds,
	}
}

// child returns a new histogram for one adapter; the caller caches it.
func (f *gapFamily) child(adapter string) *gapHistogram {
	h := &gapHistogram{
		desc:    f.desc,
		labels:  prometheus.MakeLabelPairs(f.desc, []string{adapter}),
		bounds:  f.bounds,
		classic: make([]uint64, len(f.bounds)+1),
		created: time.Now(),
	}
	f.mu.Lock()
	f.children = append(f.children, h)
	f.mu.Unlock()
	return h
}

// Describe implements prometheus.Collector.
func (f *gapFamily) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect implements prometheus.Collector.
func (f *gapFamily) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	children := f.children
	f.mu.Unlock()
	for _, h := range children {
		ch <- h
	}
}

// gapHistogram is one series. Observations are added between lock and unlock; Write takes the
// same lock, so a scrape never sees half a request.
type gapHistogram struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	bounds  []float64
	created time.Time

	mu      sync.Mutex
	classic []uint64 // per bucket, the last one +Inf
	native  [gapKeys]uint64
	far     map[int]uint64 // native keys outside the array
	zero    uint64
	count   uint64
	sum     float64
}

func (h *gapHistogram) lock()   { h.mu.Lock() }
func (h *gapHistogram) unlock() { h.mu.Unlock() }

// add records n observations of v; the lock is held.
func (h *gapHistogram) add(v float64, n uint64) {
	i := len(h.bounds)
	if v <= h.bounds[i-1] {
		i = 0
		for v > h.bounds[i] {
			i++
		}
	}
	h.classic[i] += n
	h.count += n
	h.sum += v * float64(n)
	if math.IsNaN(v) {
		return
	}
	if v <= gapZeroThreshold && v >= -gapZeroThreshold {
		h.zero += n
		return
	}
	if v < 0 {
		return // durations are never negative; client_golang would keep a negative bucket
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
func (h *gapHistogram) Desc() *prometheus.Desc { return h.desc }

// Write implements prometheus.Metric.
func (h *gapHistogram) Write(out *dto.Metric) error {
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
