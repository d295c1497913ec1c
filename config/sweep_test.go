package config

import (
	"reflect"
	"testing"
	"time"
)

func TestSweepBlockErrorsNameFieldAndLine(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []wantErr
	}{
		{"type missing", []string{"sweep:", "  stages: 3"},
			[]wantErr{{"sweep.type", 5, "is required: linear or geometric"}}},
		{"type unknown", []string{"sweep:", "  type: logarithmic"},
			[]wantErr{{"sweep.type", 6, `must be linear or geometric, not "logarithmic"`}}},
		{"stages zero", []string{"sweep:", "  type: linear", "  stages: 0"},
			[]wantErr{{"sweep.stages", 7, "must be ≥ 1"}}},
		{"geometric needs two stages", []string{"sweep: {type: geometric, stages: 1}"},
			[]wantErr{{"sweep.stages", 5, "≥ 2 for a geometric sweep"}}},
		{"stages too many", []string{"sweep:", "  type: linear", "  stages: 100000"},
			[]wantErr{{"sweep.stages", 7, "≤ 1000"}}},
		{"stage duration zero", []string{"sweep:", "  type: linear", "  stage_duration: 0s"},
			[]wantErr{{"sweep.stage_duration", 7, "must be > 0"}}},
		{"stage duration a number", []string{"sweep:", "  type: linear", "  stage_duration: 30"},
			[]wantErr{{"sweep.stage_duration", 7, "duration"}}},
		{"probe duration negative", []string{"sweep:", "  type: linear", "  probe_duration: -1s"},
			[]wantErr{{"sweep.probe_duration", 7, "must not be negative"}}},
		{"probe concurrency zero", []string{"sweep:", "  type: linear", "  probe_concurrency: 0"},
			[]wantErr{{"sweep.probe_concurrency", 7, "must be ≥ 1"}}},
		{"goodput target above one", []string{"sweep:", "  type: linear", "  goodput_target: 99"},
			[]wantErr{{"sweep.goodput_target", 7, "> 0 and ≤ 1"}}},
		{"goodput target zero given", []string{"sweep:", "  type: linear", "  goodput_target: 0"},
			[]wantErr{{"sweep.goodput_target", 7, "slo.target_ratio"}}},
		{"unknown field", []string{"sweep:", "  type: linear", "  stage_durations: 1s"},
			[]wantErr{{"sweep.stage_durations", 7, `did you mean "stage_duration"`}}},
		{"two at once in file order", []string{"sweep:", "  type: geometric", "  stages: 1", "  probe_concurrency: -4"},
			[]wantErr{{"sweep.stages", 7, "≥ 2"}, {"sweep.probe_concurrency", 8, "≥ 1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(base(tt.lines...)))
			checkErrors(t, asErrors(t, err), tt.want)
		})
	}
}

func TestSweepBlockDefaults(t *testing.T) {
	c := mustParse(t, base("sweep: {type: linear}"))
	want := Sweep{Type: SweepLinear, Stages: DefaultSweepStages, StageDuration: DefaultSweepStageDuration,
		ProbeDuration: DefaultSweepProbeDuration, ProbeConcurrency: DefaultSweepProbeConcurrency}
	if c.Sweep == nil || !reflect.DeepEqual(*c.Sweep, want) {
		t.Errorf("sweep = %+v, want %+v", c.Sweep, want)
	}
	c = mustParse(t, base("sweep:", "  type: geometric", "  stages: 4", "  stage_duration: 2m",
		"  probe_duration: 45s", "  probe_concurrency: 128", "  goodput_target: 0.95"))
	want = Sweep{Type: SweepGeometric, Stages: 4, StageDuration: 2 * time.Minute, ProbeDuration: 45 * time.Second,
		ProbeConcurrency: 128, GoodputTarget: 0.95}
	if c.Sweep == nil || !reflect.DeepEqual(*c.Sweep, want) {
		t.Errorf("sweep = %+v, want %+v", c.Sweep, want)
	}
	if c := mustParse(t, base()); c.Sweep != nil {
		t.Errorf("sweep without a block = %+v, want nil", c.Sweep)
	}
}
