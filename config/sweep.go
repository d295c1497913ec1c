package config

import "time"

// Sweep types: stage rates spaced evenly (R/K, 2R/K, …, R) or a constant factor apart (from
// R/10 to R).
const (
	SweepLinear    = "linear"
	SweepGeometric = "geometric"
)

// Sweep defaults, the same as the --sweep.* flags of `inferprobe run`.
const (
	DefaultSweepStages           = 5
	DefaultSweepStageDuration    = 30 * time.Second
	DefaultSweepProbeDuration    = 30 * time.Second
	DefaultSweepProbeConcurrency = 64
)

// Sweep is the `sweep` block `inferprobe run` reads (the daemon ignores it): instead of each
// target's configured stages, a sweep to saturation. A closed-loop probe finds the rate each
// target sustains, then Stages Poisson stages of StageDuration climb to it; the report names
// the knee. The --sweep.* flags override its fields.
type Sweep struct {
	// Type spaces the stage rates: linear or geometric.
	Type string `yaml:"type"`
	// Stages is the number of rate stages (K).
	Stages int `yaml:"stages"`
	// StageDuration is the length of each rate stage.
	StageDuration time.Duration `yaml:"stage_duration"`
	// ProbeDuration is the length of the closed-loop saturation probe.
	ProbeDuration time.Duration `yaml:"probe_duration"`
	// ProbeConcurrency is the number of requests the probe keeps in flight.
	ProbeConcurrency int `yaml:"probe_concurrency"`
	// GoodputTarget is the goodput ratio a stage must keep to be at or below the knee; 0 (the
	// default) takes each target's slo.target_ratio.
	GoodputTarget float64 `yaml:"goodput_target"`
}

func applySweepDefaults(s *Sweep, set map[string]bool) {
	if s == nil {
		return
	}
	if s.Stages == 0 && !set["sweep.stages"] {
		s.Stages = DefaultSweepStages
	}
	if s.StageDuration == 0 && !set["sweep.stage_duration"] {
		s.StageDuration = DefaultSweepStageDuration
	}
	if s.ProbeDuration == 0 && !set["sweep.probe_duration"] {
		s.ProbeDuration = DefaultSweepProbeDuration
	}
	if s.ProbeConcurrency == 0 && !set["sweep.probe_concurrency"] {
		s.ProbeConcurrency = DefaultSweepProbeConcurrency
	}
}

func (v *validator) sweep(s *Sweep, l loc) {
	if s == nil {
		return
	}
	switch s.Type {
	case SweepLinear, SweepGeometric:
	case "":
		v.errorf(v.at(l, "type"), "is required: %s or %s", SweepLinear, SweepGeometric)
	default:
		v.errorf(v.at(l, "type"), "must be %s or %s, not %s", SweepLinear, SweepGeometric, quote(s.Type))
	}
	switch sl := v.at(l, "stages"); {
	case s.Type == SweepGeometric && s.Stages < 2:
		v.errorf(sl, "must be ≥ 2 for a geometric sweep (its stages run from a tenth of the sustained rate up to it), not %d", s.Stages)
	case s.Stages < 1:
		v.errorf(sl, "must be ≥ 1, not %d", s.Stages)
	case s.Stages > 1000:
		v.errorf(sl, "must be ≤ 1000, not %d", s.Stages)
	}
	v.positive(v.at(l, "stage_duration"), s.StageDuration)
	v.positive(v.at(l, "probe_duration"), s.ProbeDuration)
	if s.ProbeConcurrency < 1 {
		v.errorf(v.at(l, "probe_concurrency"), "must be ≥ 1, not %d", s.ProbeConcurrency)
	}
	gl := v.at(l, "goodput_target")
	if r := s.GoodputTarget; r < 0 || r > 1 || (r == 0 && v.given(gl)) {
		v.errorf(gl, "must be > 0 and ≤ 1 (a share of requests: 0.99 is 99%%), not %g; leave it out to use each target's slo.target_ratio", r)
	}
}
