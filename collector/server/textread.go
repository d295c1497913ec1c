package server

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
)

// Why a reader of our own for the table's families: expfmt's text parser spends about 30
// allocations and 3 µs per line, which put a 2,000-series vLLM scrape at the edge of its 5 ms
// budget. This reader builds the same dto families (tests and a fuzz target hold it to expfmt's
// output on every input both accept) for the few families the table reads, with interned label
// pairs and slab-allocated values. expfmt still decodes protobuf and every passthrough family.
// It follows expfmt's text-format rules: family lookup by exact name, then histogram or summary
// base name; le and quantile are not labels; TYPE after samples, duplicate or reserved label
// names, bad escapes and trailing garbage are errors.

// Interned strings and label pairs are kept between scrapes up to these sizes; a server with
// ever-changing label values only costs more allocations, not more memory.
const (
	maxInternedPairs  = 8192
	maxInternedFloats = 1024
	slabSize          = 256
)

// slab hands out zeroed values from chunks, so that a scrape's thousands of small dto values
// cost a few allocations. A value is never handed out twice: a chunk is dropped when used up and
// the garbage collector frees it once no family points into it.
type slab[T any] struct{ free []T }

func (s *slab[T]) next() *T {
	if len(s.free) == 0 {
		s.free = make([]T, slabSize)
	}
	p := &s.free[0]
	s.free = s.free[1:]
	return p
}

// tableReader assembles the families the table reads from text-format lines. One scrape at a
// time uses it; the families it returns are read by normalise and then dropped.
type tableReader struct {
	fams   map[string]*dto.MetricFamily
	types  map[string]dto.MetricType // families with a TYPE line, this scrape
	series map[string]*dto.Metric    // histogram and summary series by family and labels

	pairs  map[string]*dto.LabelPair // interned; never modified once made
	bounds map[string]*float64       // interned le and quantile values

	metrics    slab[dto.Metric]
	gauges     slab[dto.Gauge]
	counters   slab[dto.Counter]
	untyped    slab[dto.Untyped]
	histograms slab[dto.Histogram]
	summaries  slab[dto.Summary]
	buckets    slab[dto.Bucket]
	quantiles  slab[dto.Quantile]
	floats     slab[float64]
	uints      slab[uint64]

	scratch []byte // label value unescaping and series keys
	labels  []*dto.LabelPair
}

func newTableReader() *tableReader {
	return &tableReader{
		fams:   map[string]*dto.MetricFamily{},
		types:  map[string]dto.MetricType{},
		series: map[string]*dto.Metric{},
		pairs:  map[string]*dto.LabelPair{},
		bounds: map[string]*float64{},
	}
}

// reset starts a scrape. The previous scrape's families must no longer be in use.
func (r *tableReader) reset() {
	r.fams = map[string]*dto.MetricFamily{}
	clear(r.types)
	clear(r.series)
}

// families returns what the scrape read, without families that got no sample (as expfmt does).
func (r *tableReader) families() map[string]*dto.MetricFamily {
	for name, f := range r.fams {
		if len(f.Metric) == 0 {
			delete(r.fams, name)
		}
	}
	for _, f := range r.fams {
		if t := f.GetType(); t == dto.MetricType_HISTOGRAM || t == dto.MetricType_GAUGE_HISTOGRAM {
			for _, m := range f.Metric {
				floatHistogram(m.Histogram)
			}
		}
	}
	return r.fams
}

// typeLine records "# TYPE name typ".
func (r *tableReader) typeLine(name, typ []byte) error {
	t, ok := metricType(typ)
	if !ok {
		return fmt.Errorf("unknown metric type %q", truncateForError(typ))
	}
	if _, seen := r.types[string(name)]; seen {
		return fmt.Errorf("second TYPE line for metric name %q", name)
	}
	if _, sampled := r.fams[string(name)]; sampled {
		return fmt.Errorf("TYPE line for metric name %q after its samples", name)
	}
	n := string(name)
	r.types[n] = t
	r.fams[n] = &dto.MetricFamily{Name: &n, Type: t.Enum()}
	return nil
}

// metricType parses a TYPE keyword, in any case, as expfmt does.
func metricType(b []byte) (dto.MetricType, bool) {
	for _, t := range [...]struct {
		word string
		typ  dto.MetricType
	}{
		{"counter", dto.MetricType_COUNTER},
		{"gauge", dto.MetricType_GAUGE},
		{"untyped", dto.MetricType_UNTYPED},
		{"histogram", dto.MetricType_HISTOGRAM},
		{"summary", dto.MetricType_SUMMARY},
		{"gauge_histogram", dto.MetricType_GAUGE_HISTOGRAM},
		{"gaugehistogram", dto.MetricType_GAUGE_HISTOGRAM},
	} {
		if bytes.EqualFold(b, []byte(t.word)) {
			return t.typ, true
		}
	}
	return 0, false
}

// role is what a sample line contributes to its family.
type role int

const (
	roleValue role = iota
	roleBucket
	roleCount
	roleSum
)

// family finds or creates the family of a sample name, the way expfmt does.
func (r *tableReader) family(name []byte) (*dto.MetricFamily, role) {
	if f, ok := r.fams[string(name)]; ok {
		return f, roleValue
	}
	for _, s := range [...]struct {
		suffix string
		role   role
	}{{"_count", roleCount}, {"_sum", roleSum}, {"_bucket", roleBucket}} {
		base, ok := cutSuffix(name, s.suffix)
		if !ok || len(base) == 0 {
			continue
		}
		f, ok := r.fams[string(base)]
		if !ok {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			return f, s.role
		case dto.MetricType_SUMMARY:
			if s.role != roleBucket {
				return f, s.role
			}
		}
	}
	n := string(name)
	f := &dto.MetricFamily{Name: &n, Type: dto.MetricType_UNTYPED.Enum()}
	r.fams[n] = f
	return f, roleValue
}

// sample adds one sample line. labels is the "{...}" block or empty; tail is what follows the
// value (an optional timestamp).
func (r *tableReader) sample(name, labels, value, tail []byte) error {
	f, role := r.family(name)
	typ := f.GetType()
	composite := typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_GAUGE_HISTOGRAM || typ == dto.MetricType_SUMMARY
	special := ""
	switch {
	case typ == dto.MetricType_SUMMARY:
		special = "quantile"
	case composite:
		special = "le"
	}
	r.labels = r.labels[:0]
	bound, hasBound, err := r.parseLabels(labels, special)
	if err != nil {
		return err
	}
	v, err := parseValue(value)
	if err != nil {
		return err
	}
	if err := checkTimestamp(tail); err != nil {
		return err
	}
	if !composite {
		m := r.metrics.next()
		m.Label = r.copyLabels()
		switch typ {
		case dto.MetricType_COUNTER:
			c := r.counters.next()
			c.Value = r.float(v)
			m.Counter = c
		case dto.MetricType_GAUGE:
			g := r.gauges.next()
			g.Value = r.float(v)
			m.Gauge = g
		default:
			u := r.untyped.next()
			u.Value = r.float(v)
			m.Untyped = u
		}
		f.Metric = append(f.Metric, m)
		return nil
	}
	m := r.compositeSeries(f)
	if typ == dto.MetricType_SUMMARY {
		s := m.Summary
		switch {
		case role == roleCount:
			s.SampleCount = r.uint(uint64(v))
		case role == roleSum:
			s.SampleSum = r.float(v)
		case hasBound:
			q := r.quantiles.next()
			q.Quantile, q.Value = bound, r.float(v)
			s.Quantile = append(s.Quantile, q)
		}
		return nil
	}
	h := m.Histogram
	whole := v == math.Trunc(v) && v >= 0 && v < 1<<64
	switch {
	case role == roleCount:
		if whole {
			h.SampleCount = r.uint(uint64(v))
		} else if v < 0 {
			return fmt.Errorf("negative count for histogram %q", f.GetName())
		} else {
			h.SampleCountFloat = r.float(v)
		}
	case role == roleSum:
		h.SampleSum = r.float(v)
	case hasBound:
		b := r.buckets.next()
		b.UpperBound = bound
		if whole {
			b.CumulativeCount = r.uint(uint64(v))
		} else if v < 0 {
			return fmt.Errorf("negative bucket population for histogram %q", f.GetName())
		} else {
			b.CumulativeCountFloat = r.float(v)
		}
		h.Bucket = append(h.Bucket, b)
	}
	return nil
}

// compositeSeries finds the histogram or summary series of f with the labels just parsed.
func (r *tableReader) compositeSeries(f *dto.MetricFamily) *dto.Metric {
	// The key must not depend on label order, like expfmt's signature: sort a copy.
	sortLabels(r.labels)
	r.scratch = append(r.scratch[:0], f.GetName()...)
	for _, lp := range r.labels {
		r.scratch = append(r.scratch, 0xff)
		r.scratch = append(r.scratch, lp.GetName()...)
		r.scratch = append(r.scratch, 0xfe)
		r.scratch = append(r.scratch, lp.GetValue()...)
	}
	if m, ok := r.series[string(r.scratch)]; ok {
		return m
	}
	m := r.metrics.next()
	m.Label = r.copyLabels()
	if f.GetType() == dto.MetricType_SUMMARY {
		m.Summary = r.summaries.next()
	} else {
		m.Histogram = r.histograms.next()
	}
	r.series[string(r.scratch)] = m
	f.Metric = append(f.Metric, m)
	return m
}

// sortLabels is an insertion sort: label sets are short.
func sortLabels(ls []*dto.LabelPair) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].GetName() < ls[j-1].GetName(); j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

func (r *tableReader) copyLabels() []*dto.LabelPair {
	if len(r.labels) == 0 {
		return nil
	}
	out := make([]*dto.LabelPair, len(r.labels))
	copy(out, r.labels)
	return out
}

func (r *tableReader) float(v float64) *float64 {
	p := r.floats.next()
	*p = v
	return p
}

func (r *tableReader) uint(v uint64) *uint64 {
	p := r.uints.next()
	*p = v
	return p
}

// parseLabels reads a "{...}" block into r.labels. The label named special (le or quantile) is
// returned as a number instead, as expfmt does for histograms and summaries.
func (r *tableReader) parseLabels(b []byte, special string) (*float64, bool, error) {
	if len(b) == 0 {
		return nil, false, nil
	}
	var bound *float64
	hasBound := false
	i := 1 // past '{'
	for {
		i = skipBlanks(b, i)
		if i < len(b) && b[i] == '}' {
			if i != len(b)-1 {
				return nil, false, errors.New("unexpected text after label set")
			}
			return bound, hasBound, nil
		}
		nameStart := len(r.scratch)
		var err error
		if i, err = r.labelName(b, i); err != nil {
			return nil, false, err
		}
		name := r.scratch[nameStart:]
		i = skipBlanks(b, i)
		if i >= len(b) || b[i] != '=' {
			return nil, false, fmt.Errorf("expected '=' after label name %q", truncateForError(name))
		}
		i = skipBlanks(b, i+1)
		if i >= len(b) || b[i] != '"' {
			return nil, false, errors.New("expected '\"' at start of label value")
		}
		r.scratch = append(r.scratch, 0xff)
		valueStart := len(r.scratch)
		if i, err = r.quoted(b, i+1); err != nil {
			return nil, false, err
		}
		value := r.scratch[valueStart:]
		if !utf8.Valid(value) {
			return nil, false, fmt.Errorf("invalid label value %q", truncateForError(value))
		}
		if string(name) == "__name__" {
			return nil, false, errors.New(`label name "__name__" is reserved`)
		}
		if special != "" && string(name) == special {
			v, err := parseValue(value)
			if err != nil {
				return nil, false, fmt.Errorf("expected float as value for %q label: %w", special, err)
			}
			bound, hasBound = r.bound(value, v), true
		} else {
			for _, lp := range r.labels {
				if lp.GetName() == string(name) {
					return nil, false, fmt.Errorf("duplicate label name %q", truncateForError(name))
				}
			}
			r.labels = append(r.labels, r.pair(r.scratch[nameStart:], len(name)))
		}
		r.scratch = r.scratch[:nameStart]
		i = skipBlanks(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			continue
		}
		return nil, false, errors.New("expected ',' or '}' after label value")
	}
}

// labelName appends a label name read at b[i:] to r.scratch: legacy characters, or a quoted
// UTF-8 name.
func (r *tableReader) labelName(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '"' {
		start := len(r.scratch)
		j, err := r.quoted(b, i+1)
		if err != nil {
			return 0, err
		}
		if len(r.scratch) == start || !utf8.Valid(r.scratch[start:]) {
			return 0, errors.New("invalid quoted label name")
		}
		return j, nil
	}
	j := i
	for j < len(b) && (isLabelStart(b[j]) || j > i && b[j] >= '0' && b[j] <= '9') {
		j++
	}
	if j == i {
		return 0, errors.New("invalid label name")
	}
	r.scratch = append(r.scratch, b[i:j]...)
	return j, nil
}

func isLabelStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

// quoted appends the unescaped string starting at b[i] (just past the opening quote) to
// r.scratch and returns the index past the closing quote.
func (r *tableReader) quoted(b []byte, i int) (int, error) {
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			return i + 1, nil
		case '\\':
			i++
			if i >= len(b) {
				return 0, errors.New("unterminated escape sequence")
			}
			switch b[i] {
			case '"', '\\':
				r.scratch = append(r.scratch, b[i])
			case 'n':
				r.scratch = append(r.scratch, '\n')
			default:
				return 0, fmt.Errorf("invalid escape sequence '\\%c'", b[i])
			}
		default:
			r.scratch = append(r.scratch, c)
		}
	}
	return 0, errors.New("unterminated quoted string")
}

// pair interns the label pair held in kv as name, 0xff, value; nameLen is the name's length.
func (r *tableReader) pair(kv []byte, nameLen int) *dto.LabelPair {
	if lp, ok := r.pairs[string(kv)]; ok {
		return lp
	}
	if len(r.pairs) >= maxInternedPairs {
		clear(r.pairs)
	}
	key := string(kv)
	name, value := key[:nameLen], key[nameLen+1:]
	lp := &dto.LabelPair{Name: &name, Value: &value}
	r.pairs[key] = lp
	return lp
}

// bound interns the parsed value of an le or quantile label.
func (r *tableReader) bound(text []byte, v float64) *float64 {
	if p, ok := r.bounds[string(text)]; ok {
		return p
	}
	if len(r.bounds) >= maxInternedFloats {
		clear(r.bounds)
	}
	p := new(float64)
	*p = v
	r.bounds[string(text)] = p
	return p
}

func skipBlanks(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// parseValue parses a sample value like expfmt: Go float syntax without hex or underscores.
func parseValue(b []byte) (float64, error) {
	if bytes.ContainsAny(b, "pP_") {
		return 0, fmt.Errorf("unsupported character in float %q", truncateForError(b))
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("expected float as value, got %q", truncateForError(b))
	}
	return v, nil
}

// checkTimestamp accepts nothing, or blanks and an integer (milliseconds) and nothing after.
func checkTimestamp(tail []byte) error {
	if len(tail) == 0 {
		return nil
	}
	ts := bytes.TrimLeft(tail, " \t")
	if _, err := strconv.ParseInt(string(ts), 10, 64); err != nil {
		return fmt.Errorf("expected integer as timestamp, got %q", truncateForError(ts))
	}
	return nil
}

// floatHistogram makes a histogram's counts all integer or all float, as expfmt does.
func floatHistogram(h *dto.Histogram) {
	if h == nil {
		return
	}
	anyFloat := h.SampleCountFloat != nil
	for _, b := range h.Bucket {
		anyFloat = anyFloat || b.CumulativeCountFloat != nil
	}
	if !anyFloat {
		return
	}
	if h.SampleCountFloat == nil {
		v := float64(h.GetSampleCount())
		h.SampleCountFloat, h.SampleCount = &v, nil
	}
	for _, b := range h.Bucket {
		if b.CumulativeCountFloat == nil {
			v := float64(b.GetCumulativeCount())
			b.CumulativeCountFloat, b.CumulativeCount = &v, nil
		}
	}
}
