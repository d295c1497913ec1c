package server

import (
	"math"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// reservedPrefixes are family names passthrough never re-exposes: inferprobe's own series and
// those the daemon's registry usually holds (Go runtime, process, promhttp). Re-exposing a
// server's process_start_time_seconds beside inferprobe's own would make every scrape of
// inferprobe fail on inconsistent help text.
var reservedPrefixes = [...]string{"inferprobe_", "go_", "process_", "promhttp_"}

// passthroughHelp is the help of every passthrough family: the same text whatever the target,
// because the registry refuses one family name with two help strings.
const passthroughHelp = "Model-server metric re-exposed unchanged by inferprobe (passthrough), with a target label added."

// maxPassthroughDescs bounds the cache of passthrough descriptors kept between scrapes.
const maxPassthroughDescs = 4096

// normaliser turns the families of one scrape into inferprobe_server_* series for one target.
// It is used by one scrape at a time.
type normaliser struct {
	target string
	// model is the target's configured model, put in model_name where the server labels its
	// series with a placeholder instead (trtllm-serve's "undefined").
	model string
	// labelSets caches, during one normalise call, the label pairs of each (engine, model):
	// every row of a model shares them.
	labelSets map[[2]string][]*dto.LabelPair
	sel       *selection
	rowDescs  []*prometheus.Desc // indexed like table
	loraDesc  *prometheus.Desc
	passDescs map[string]*prometheus.Desc
}

func newNormaliser(target string, sel *selection) *normaliser {
	n := &normaliser{
		target:    target,
		labelSets: map[[2]string][]*dto.LabelPair{},
		sel:       sel,
		rowDescs:  make([]*prometheus.Desc, len(table)),
		passDescs: map[string]*prometheus.Desc{},
		loraDesc: prometheus.NewDesc(MetricLoRAAdapterInfo,
			"LoRA adapters the model server reports, 1 per adapter and state (running or waiting).", nil, nil),
	}
	for i, r := range table {
		n.rowDescs[i] = prometheus.NewDesc(r.name, r.help, nil, nil)
	}
	return n
}

// result is what one successful scrape yields besides health.
type result struct {
	metrics     []prometheus.Metric
	passthrough []passFamily
	// counters holds the normalised token counters per model, keyed row name + "\xff" + model,
	// for counter-reset detection.
	counters map[string]float64
	// startTime is the server's process_start_time_seconds, when it has one.
	startTime     float64
	haveStartTime bool
}

// passFamily is one raw family re-exposed by passthrough.
type passFamily struct {
	name    string
	typ     dto.MetricType
	metrics []prometheus.Metric
}

// normalise maps fams through the table for engine eng and re-exposes the passthrough families
// of raw. counters is filled (it is cleared first) and returned in the result so the caller can
// recycle maps between scrapes.
func (n *normaliser) normalise(fams, raw map[string]*dto.MetricFamily, eng engineSpec, counters map[string]float64) result {
	clear(counters)
	clear(n.labelSets) // the previous snapshot keeps its own references
	res := result{counters: counters}
	for i, r := range table {
		for _, src := range r.from[eng.name] {
			if n.emitRow(&res, i, r, src, fams, eng) {
				break // first source present wins
			}
		}
	}
	if eng.lora != nil {
		res.metrics = n.lora(res.metrics, fams[eng.lora.family], eng.lora)
	}
	if fam := fams[processStartTimeFamily]; fam != nil {
		for _, m := range fam.GetMetric() {
			if v, ok := sampleValue(m); ok && (!res.haveStartTime || v > res.startTime) {
				res.startTime, res.haveStartTime = v, true
			}
		}
	}
	res.passthrough = n.passthrough(raw)
	return res
}

// emitRow appends one row's series and reports whether src was present.
func (n *normaliser) emitRow(res *result, i int, r row, src source, fams map[string]*dto.MetricFamily, eng engineSpec) bool {
	desc := n.rowDescs[i]
	switch {
	case r.kind == kindHistogram:
		groups := histogramGroups(fams[src.family], src, eng.modelLabel)
		if len(groups) == 0 {
			return false
		}
		for model, h := range groups {
			if h.mismatch {
				continue // engines disagree on buckets: no honest sum exists
			}
			res.metrics = append(res.metrics, constMetric{desc: desc, metric: &dto.Metric{
				Label: n.labels(eng.name, model), Histogram: h.dto(),
			}})
		}
		return true
	case src.per != nil:
		num := valueGroups(fams[src.family], src, eng.modelLabel, aggSum)
		den := valueGroups(fams[src.per.family], *src.per, eng.modelLabel, aggSum)
		if len(num) == 0 || len(den) == 0 {
			return false
		}
		for model, d := range den {
			if v, ok := num[model]; ok && d != 0 {
				res.metrics = append(res.metrics, n.scalar(desc, r.kind, eng.name, model, v/d))
			}
		}
		return true
	default:
		groups := valueGroups(fams[src.family], src, eng.modelLabel, r.agg)
		if len(groups) == 0 {
			return false
		}
		for model, v := range groups {
			res.metrics = append(res.metrics, n.scalar(desc, r.kind, eng.name, model, v))
			if r.kind == kindCounter {
				res.counters[r.name+"\xff"+model] = v
			}
		}
		return true
	}
}

func (n *normaliser) scalar(desc *prometheus.Desc, k kind, engine, model string, v float64) prometheus.Metric {
	m := &dto.Metric{Label: n.labels(engine, model)}
	if k == kindCounter {
		m.Counter = &dto.Counter{Value: &v}
	} else {
		m.Gauge = &dto.Gauge{Value: &v}
	}
	return constMetric{desc: desc, metric: m}
}

// labels builds the sorted label pairs of a normalised series; model_name is left out when the
// server has none, rather than exposed empty.
func (n *normaliser) labels(engine, model string) []*dto.LabelPair {
	if engine == EngineTRTLLMServe && model == trtllmUndefinedModel && n.model != "" {
		// trtllm-serve labels every series model_name="undefined"; the configured model is
		// what it serves.
		model = n.model
	}
	if ls, ok := n.labelSets[[2]string{engine, model}]; ok {
		return ls
	}
	ls := make([]*dto.LabelPair, 0, 3)
	ls = append(ls, labelPair(labelEngine, engine))
	if model != "" {
		ls = append(ls, labelPair(labelModelName, model))
	}
	ls = append(ls, labelPair(labelTarget, n.target))
	n.labelSets[[2]string{engine, model}] = ls
	return ls
}

func labelPair(name, value string) *dto.LabelPair {
	if !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	return &dto.LabelPair{Name: &name, Value: &value}
}

// selected reports whether m is one of the series src reads and returns its model name.
func selected(m *dto.Metric, src source, modelLabel string) (model string, ok bool) {
	ok = src.label == ""
	for _, lp := range m.GetLabel() {
		switch lp.GetName() {
		case src.label:
			ok = lp.GetValue() == src.value
		case modelLabel:
			model = lp.GetValue()
		}
	}
	return model, ok
}

// valueGroups folds the selected series of fam per model.
func valueGroups(fam *dto.MetricFamily, src source, modelLabel string, agg aggregation) map[string]float64 {
	if fam == nil {
		return nil
	}
	scale := src.scale
	if scale == 0 {
		scale = 1
	}
	var groups map[string]float64
	for _, m := range fam.GetMetric() {
		model, ok := selected(m, src, modelLabel)
		if !ok {
			continue
		}
		var v float64
		switch {
		case src.part != partHistogramSum:
			if v, ok = sampleValue(m); !ok {
				continue
			}
		case m.GetHistogram() != nil:
			v = m.GetHistogram().GetSampleSum()
		case m.GetSummary() != nil: // a server may render the same family as a summary
			v = m.GetSummary().GetSampleSum()
		default:
			continue
		}
		v *= scale
		if groups == nil {
			groups = map[string]float64{}
		}
		prev, seen := groups[model]
		switch {
		case !seen:
			groups[model] = v
		case agg == aggMax:
			groups[model] = math.Max(prev, v)
		default:
			groups[model] = prev + v
		}
	}
	return groups
}

// sampleValue is the value of a gauge, counter or untyped series.
func sampleValue(m *dto.Metric) (float64, bool) {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// histSum accumulates the classic histograms of one model.
type histSum struct {
	bounds   []float64 // upper bounds without +Inf, ascending
	counts   []float64 // cumulative, like the bounds
	count    float64
	sum      float64
	mismatch bool
}

// histogramGroups sums the selected histograms of fam per model. Histograms of one model that
// disagree on bucket bounds cannot be added; such a model is marked mismatched.
func histogramGroups(fam *dto.MetricFamily, src source, modelLabel string) map[string]*histSum {
	if fam == nil {
		return nil
	}
	scale := src.scale
	if scale == 0 {
		scale = 1
	}
	var groups map[string]*histSum
	for _, m := range fam.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		model, ok := selected(m, src, modelLabel)
		if !ok {
			continue
		}
		if groups == nil {
			groups = map[string]*histSum{}
		}
		g, seen := groups[model]
		if !seen {
			g = &histSum{}
			groups[model] = g
		}
		g.add(h, scale, !seen)
	}
	return groups
}

func (g *histSum) add(h *dto.Histogram, scale float64, first bool) {
	buckets := h.GetBucket()
	if !slices.IsSortedFunc(buckets, func(a, b *dto.Bucket) int { return cmpFloat(a.GetUpperBound(), b.GetUpperBound()) }) {
		buckets = slices.Clone(buckets)
		slices.SortFunc(buckets, func(a, b *dto.Bucket) int { return cmpFloat(a.GetUpperBound(), b.GetUpperBound()) })
	}
	n := 0
	for _, b := range buckets {
		if math.IsInf(b.GetUpperBound(), +1) {
			continue // implied by the count
		}
		bound := b.GetUpperBound() * scale
		c := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil {
			c = b.GetCumulativeCountFloat()
		}
		switch {
		case first:
			g.bounds = append(g.bounds, bound)
			g.counts = append(g.counts, c)
		case n >= len(g.bounds) || g.bounds[n] != bound:
			g.mismatch = true
			return
		default:
			g.counts[n] += c
		}
		n++
	}
	if !first && n != len(g.bounds) {
		g.mismatch = true
		return
	}
	if h.SampleCountFloat != nil {
		g.count += h.GetSampleCountFloat()
	} else {
		g.count += float64(h.GetSampleCount())
	}
	g.sum += h.GetSampleSum() * scale
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dto renders the sum, with integer counts where every count is a whole number (as client
// libraries write them) and float counts otherwise.
func (g *histSum) dto() *dto.Histogram {
	integral := isCount(g.count)
	for _, c := range g.counts {
		integral = integral && isCount(c)
	}
	h := &dto.Histogram{SampleSum: &g.sum, Bucket: make([]*dto.Bucket, len(g.bounds))}
	if integral {
		c := uint64(g.count)
		h.SampleCount = &c
	} else {
		h.SampleCountFloat = &g.count
	}
	for i, bound := range g.bounds {
		b := &dto.Bucket{UpperBound: &bound}
		if integral {
			c := uint64(g.counts[i])
			b.CumulativeCount = &c
		} else {
			b.CumulativeCountFloat = &g.counts[i]
		}
		h.Bucket[i] = b
	}
	return h
}

// isCount reports whether f is a whole number that float64 and uint64 both hold exactly.
func isCount(f float64) bool {
	return f >= 0 && f <= 1<<53 && f == math.Trunc(f)
}

// lora expands the newest series of spec.family into one info series per adapter and state.
func (n *normaliser) lora(out []prometheus.Metric, fam *dto.MetricFamily, spec *loraSpec) []prometheus.Metric {
	var latest *dto.Metric
	var latestAt float64
	for _, m := range fam.GetMetric() {
		if v, ok := sampleValue(m); ok && (latest == nil || v > latestAt) {
			latest, latestAt = m, v
		}
	}
	if latest == nil {
		return out
	}
	one := 1.0
	seen := map[[2]string]bool{}
	for _, lp := range latest.GetLabel() {
		var state string
		switch lp.GetName() {
		case spec.runningLabel:
			state = "running"
		case spec.waitingLabel:
			state = "waiting"
		default:
			continue
		}
		for adapter := range strings.SplitSeq(lp.GetValue(), ",") {
			adapter = strings.TrimSpace(adapter)
			if adapter == "" || seen[[2]string{adapter, state}] {
				continue
			}
			seen[[2]string{adapter, state}] = true
			out = append(out, constMetric{desc: n.loraDesc, metric: &dto.Metric{
				Label: []*dto.LabelPair{
					labelPair("adapter", adapter), labelPair("state", state), labelPair(labelTarget, n.target),
				},
				Gauge: &dto.Gauge{Value: &one},
			}})
		}
	}
	return out
}

// passthrough re-exposes the families the passthrough patterns match, unchanged but for an added
// target label (a target label of the server's own becomes exported_target, as in Prometheus).
// Families are admitted in name order under the registry's own consistency rules, so one odd
// exposition can never make a scrape of inferprobe fail.
func (n *normaliser) passthrough(fams map[string]*dto.MetricFamily) []passFamily {
	if len(n.sel.passthrough) == 0 {
		return nil
	}
	names := make([]string, 0, len(fams))
	for name := range fams {
		if n.sel.passes([]byte(name)) && !reserved(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []passFamily
	adm := admission{}
	for _, name := range names {
		fam := fams[name]
		typ := registryType(fam.GetType())
		desc := n.passDesc(name)
		if desc == nil || !adm.admit(name, typ) {
			continue
		}
		pf := passFamily{name: name, typ: typ}
		seen := map[string]bool{}
		for _, m := range fam.GetMetric() {
			if !valueMatches(m, typ) {
				continue
			}
			labels, key, ok := n.passLabels(m.GetLabel())
			if !ok || seen[key] {
				continue
			}
			seen[key] = true
			pf.metrics = append(pf.metrics, constMetric{desc: desc, metric: &dto.Metric{
				Label: labels, Gauge: m.Gauge, Counter: m.Counter, Untyped: m.Untyped,
				Summary: m.Summary, Histogram: m.Histogram,
			}})
		}
		if len(pf.metrics) > 0 {
			out = append(out, pf)
		}
	}
	return out
}

func reserved(name string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// registryType is the type client_golang's registry will infer for a family's series.
func registryType(t dto.MetricType) dto.MetricType {
	if t == dto.MetricType_GAUGE_HISTOGRAM {
		return dto.MetricType_HISTOGRAM
	}
	return t
}

// valueMatches reports whether m carries exactly the value its family type promises; protobuf
// from a buggy server could say otherwise, and the registry would reject the whole scrape.
func valueMatches(m *dto.Metric, typ dto.MetricType) bool {
	set := 0
	for _, present := range []bool{m.Gauge != nil, m.Counter != nil, m.Untyped != nil, m.Summary != nil, m.Histogram != nil} {
		if present {
			set++
		}
	}
	if set != 1 {
		return false
	}
	switch typ {
	case dto.MetricType_GAUGE:
		return m.Gauge != nil
	case dto.MetricType_COUNTER:
		return m.Counter != nil
	case dto.MetricType_UNTYPED:
		return m.Untyped != nil
	case dto.MetricType_SUMMARY:
		return m.Summary != nil
	case dto.MetricType_HISTOGRAM:
		return m.Histogram != nil
	}
	return false
}

// passLabels copies the labels of a raw series, adds target, renames a raw target label, drops
// empty and invalid ones, and returns them sorted with a key identifying the set.
func (n *normaliser) passLabels(in []*dto.LabelPair) ([]*dto.LabelPair, string, bool) {
	out := make([]*dto.LabelPair, 0, len(in)+1)
	hasExported := false
	for _, lp := range in {
		if lp.GetName() == labelExportedTarget {
			hasExported = true
		}
	}
	for _, lp := range in {
		name, value := lp.GetName(), lp.GetValue()
		if value == "" || strings.HasPrefix(name, model.ReservedLabelPrefix) || !model.UTF8Validation.IsValidLabelName(name) {
			continue
		}
		if name == labelTarget {
			if hasExported {
				continue // nowhere to keep it without inventing names
			}
			name = labelExportedTarget
		}
		out = append(out, labelPair(name, value))
	}
	out = append(out, labelPair(labelTarget, n.target))
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	var key strings.Builder
	for i, lp := range out {
		if i > 0 && out[i-1].GetName() == lp.GetName() {
			return nil, "", false // duplicate label names: the registry would refuse the scrape
		}
		key.WriteString(lp.GetName())
		key.WriteByte(0xff)
		key.WriteString(lp.GetValue())
		key.WriteByte(0xff)
	}
	return slices.Clip(out), key.String(), true
}

func (n *normaliser) passDesc(name string) *prometheus.Desc {
	if d, ok := n.passDescs[name]; ok {
		return d
	}
	d := prometheus.NewDesc(name, passthroughHelp, nil, nil)
	if d.Err() != nil {
		d = nil
	}
	if len(n.passDescs) >= maxPassthroughDescs {
		clear(n.passDescs)
	}
	n.passDescs[name] = d
	return d
}

// admission applies client_golang's registry rules on family names and types, so that the
// passthrough families of one scrape, and of all targets together, never collide.
type admission map[string]dto.MetricType

func (a admission) admit(name string, typ dto.MetricType) bool {
	if t, ok := a[name]; ok {
		return t == typ
	}
	for _, suffix := range [...]string{"_count", "_sum", "_bucket"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if t, exists := a[base]; exists && (t == dto.MetricType_HISTOGRAM || t == dto.MetricType_SUMMARY && suffix != "_bucket") {
			return false
		}
	}
	if typ == dto.MetricType_SUMMARY || typ == dto.MetricType_HISTOGRAM {
		for _, suffix := range [...]string{"_count", "_sum"} {
			if _, exists := a[name+suffix]; exists {
				return false
			}
		}
	}
	if typ == dto.MetricType_HISTOGRAM {
		if _, exists := a[name+"_bucket"]; exists {
			return false
		}
	}
	a[name] = typ
	return true
}

// constMetric is one immutable series of a snapshot. Write shares the label and value
// structures with every gather; they are never modified after the snapshot is published, and the
// label slice has no spare capacity, so a wrapping registry that appends labels copies it.
type constMetric struct {
	desc   *prometheus.Desc
	metric *dto.Metric
}

// Desc implements prometheus.Metric.
func (c constMetric) Desc() *prometheus.Desc { return c.desc }

// Write implements prometheus.Metric.
func (c constMetric) Write(out *dto.Metric) error {
	out.Label = slices.Clip(c.metric.Label)
	out.Gauge = c.metric.Gauge
	out.Counter = c.metric.Counter
	out.Untyped = c.metric.Untyped
	out.Summary = c.metric.Summary
	out.Histogram = c.metric.Histogram
	return nil
}
