package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferprobe/inferprobe/prober"
)

// SLO label values of inferprobe_slo_objective_seconds: which per-request measure an objective
// bounds.
const (
	SLITTFT = "ttft"
	SLITPOT = "tpot"
	SLIE2E  = "e2e"
)

// objectiveSeries returns a target's configured objectives as gauges that never change for
// one target generation. They exist so that the alert rules and dashboards read each target's
// objective from the series instead of from numbers written into the rule file: one static
// rule file then serves every target, and a reload (a new target generation, the old one
// forgotten) moves the thresholds with it. An objective that is not set exposes no series, so
// a rule joined on it has nothing to compare for that target rather than a made-up zero.
func objectiveSeries(t *prober.TargetInfo, labels prometheus.Labels) []prometheus.Collector {
	var out []prometheus.Collector
	gauge := func(name, help string, v float64, extra prometheus.Labels) {
		l := prometheus.Labels{}
		for k, val := range labels {
			l[k] = val
		}
		for k, val := range extra {
			l[k] = val
		}
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: l})
		g.Set(v)
		out = append(out, g)
	}
	const objectiveHelp = "The configured per-request latency objective of the target (slo.ttft, slo.tpot, slo.e2e), by sli; absent for a measure with no objective."
	for _, o := range []struct {
		sli string
		d   float64
	}{{SLITTFT, t.SLO.TTFT.Seconds()}, {SLITPOT, t.SLO.TPOT.Seconds()}, {SLIE2E, t.SLO.E2E.Seconds()}} {
		if o.d > 0 {
			gauge("inferprobe_slo_objective_seconds", objectiveHelp, o.d, prometheus.Labels{"sli": o.sli})
		}
	}
	if t.SLO.TargetRatio > 0 {
		gauge("inferprobe_slo_target_ratio",
			"The configured share of requests that must be good over the SLO window (slo.target_ratio); the error budget is 1 minus it.",
			t.SLO.TargetRatio, nil)
	}
	if t.SLO.Window > 0 {
		gauge("inferprobe_slo_window_seconds",
			"The configured period the error budget covers (slo.window), in seconds; burn-rate thresholds scale with it.",
			t.SLO.Window.Seconds(), nil)
	}
	if t.SLO.RegressionFactor > 0 {
		gauge("inferprobe_slo_regression_factor",
			"The configured ratio to its baseline above which a latency quantile is a regression (slo.regression_factor).",
			t.SLO.RegressionFactor, nil)
	}
	return out
}
