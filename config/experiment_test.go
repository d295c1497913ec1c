package config

import (
	"testing"
	"time"
)

// TestExperimentErrorsNameFieldAndLine: a bad experiment block gets one error per mistake,
// each naming the field and its line; every template field the docs list renders.
func TestExperimentErrorsNameFieldAndLine(t *testing.T) {
	_, err := Parse([]byte(base(
		"experiment:",
		"  levels: [0, 1ms, 1ms]",
		"  repeats: 0",
		"  load: {concurrency: 2, rate: 3}",
		"  hook: {url: 'http://h/{{.Nope}}', body: '{{.Level}} {{.DelayNS}} {{.Delay}} {{.TargetsFile}} {{.Repeats}} {{.WarmupMS}} {{.MeasureMS}} {{.WindowsMS}}'}",
	)))
	checkErrors(t, asErrors(t, err), []wantErr{
		{"experiment.measure", 5, "must be > 0"},
		{"experiment.levels", 6, "has a delay twice"},
		{"experiment.repeats", 7, "must be ≥ 1"},
		{"experiment.load.rate", 8, "cannot be used together with concurrency"},
		{"experiment.hook.url", 9, "can't evaluate field Nope"},
	})
	_, err = Parse([]byte(base("experiment:", "  levels: [0]", "  measure: 1s", "  load: {}",
		"  command: {argv: [srv], ready_url: http://h/health}", "  hook: {url: http://h/}")))
	checkErrors(t, asErrors(t, err), []wantErr{
		{"experiment.load", 8, "needs concurrency"},
		{"experiment.hook", 10, "cannot be used together with command"},
	})
}

// TestExperimentVars: a level's template fields carry its delay and the experiment's windows.
func TestExperimentVars(t *testing.T) {
	e := &Experiment{Repeats: 3, Warmup: 10 * time.Second, Measure: 30 * time.Second}
	got := e.Vars(2, 1500*time.Microsecond, "/t")
	want := LevelVars{Level: 2, DelayNS: 1_500_000, Delay: "1.5ms", TargetsFile: "/t", Repeats: 3, WarmupMS: 10_000, MeasureMS: 30_000, WindowsMS: 120_000}
	if got != want {
		t.Errorf("Vars = %+v, want %+v", got, want)
	}
	if s, err := Render(`SPEED_BUMP_DURATION_MS={{.WindowsMS}}`, got); err != nil || s != "SPEED_BUMP_DURATION_MS=120000" {
		t.Errorf("Render = %q, %v", s, err)
	}
}
