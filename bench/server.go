package bench

import (
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// ServerSummary is what the model server's own metrics (the target's `metrics` block) said
// over a stage: counters as rates over the stage's window, gauges as their last scraped value
// at its end, summed over the series of the target. Values are as last scraped, so they are at
// most metrics.interval old at either end; a stage shorter than the interval may see no change.
type ServerSummary struct {
	// Up is whether the last scrape before the stage ended succeeded.
	Up bool `json:"up"`
	// Rates maps each counter (e.g. inferprobe_server_generation_tokens_total) to its increase
	// per second over the stage.
	Rates map[string]float64 `json:"rates"`
	// Gauges maps each gauge (e.g. inferprobe_server_requests_running) to its value at the end.
	Gauges map[string]float64 `json:"gauges"`
	// Histograms maps each server histogram (e.g. inferprobe_server_time_to_first_token_seconds)
	// to the mean of the observations made during the stage.
	Histograms map[string]float64 `json:"histogram_means"`
}

// serverSnapshot is the server series of one target at one moment.
type serverSnapshot struct {
	at       time.Time
	up       bool
	counters map[string]float64
	gauges   map[string]float64
	hsum     map[string]float64
	hcount   map[string]float64
}

// snapshotServer gathers g and keeps the inferprobe_server_* series of target, summed by name.
func snapshotServer(g prometheus.Gatherer, target string) *serverSnapshot {
	return snapshot(g, "inferprobe_server_", target)
}

// snapshot gathers g and keeps the series named with prefix (of target, when not ""), summed by
// name; prefix+"up" gives Up.
func snapshot(g prometheus.Gatherer, prefix, target string) *serverSnapshot {
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return nil
	}
	s := &serverSnapshot{at: time.Now(), counters: map[string]float64{}, gauges: map[string]float64{},
		hsum: map[string]float64{}, hcount: map[string]float64{}}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			if target != "" && !hasLabel(m, "target", target) {
				continue
			}
			switch {
			case name == prefix+"up":
				s.up = m.GetGauge().GetValue() == 1
			case mf.GetType() == dto.MetricType_COUNTER:
				s.counters[name] += m.GetCounter().GetValue()
			case mf.GetType() == dto.MetricType_GAUGE:
				if !strings.HasSuffix(name, "_info") && !strings.Contains(name, "scrape") {
					s.gauges[name] += m.GetGauge().GetValue()
				}
			case mf.GetType() == dto.MetricType_HISTOGRAM:
				s.hsum[name] += m.GetHistogram().GetSampleSum()
				s.hcount[name] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return s
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// summarize compares the snapshots at a stage's start and end.
func summarize(start, end *serverSnapshot) *ServerSummary {
	if start == nil || end == nil {
		return nil
	}
	sum := &ServerSummary{Up: end.up, Rates: map[string]float64{}, Gauges: end.gauges, Histograms: map[string]float64{}}
	if w := end.at.Sub(start.at).Seconds(); w > 0 {
		for name, v := range end.counters {
			// A counter that went down was reset (a server restart): count from zero.
			d := v - start.counters[name]
			if d < 0 {
				d = v
			}
			sum.Rates[name] = d / w
		}
	}
	for name, c := range end.hcount {
		if dc := c - start.hcount[name]; dc > 0 {
			if m := (end.hsum[name] - start.hsum[name]) / dc; !math.IsNaN(m) && m >= 0 {
				sum.Histograms[name] = m
			}
		}
	}
	return sum
}
