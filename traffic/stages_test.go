package traffic

import (
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

// boundaryStages mixes rates, a pause and a stage whose end falls on a would-be arrival.
var boundaryStages = []Stage{
	{Duration: time.Second, Rate: 10},                      // 0, 100ms … 900ms
	{Duration: 0, Rate: 1000},                              // skipped
	{Duration: 2 * time.Second, Rate: 5, Kind: "constant"}, // 1s, 1.2s … 2.8s
	{Duration: time.Second, Rate: 0},                       // pause: 3s–4s
	{Duration: 500 * ms, Rate: 4},                          // 4s, 4.25s (4.5s is the next cycle)
}

// boundaryOffsets is one cycle of boundaryStages, worked out by hand.
func boundaryOffsets() []time.Duration {
	var want []time.Duration
	for i := range 10 {
		want = append(want, time.Duration(i)*100*ms)
	}
	for i := range 10 {
		want = append(want, time.Second+time.Duration(i)*200*ms)
	}
	return append(want, 4*time.Second, 4250*ms)
}

func TestStagesBoundaries(t *testing.T) {
	want := boundaryOffsets()
	p := NewStages(boundaryStages, false)
	for n, w := range want {
		if at, ok := p.Next(uint64(n)); !ok || at != w {
			t.Errorf("Next(%d) = %v, %v; want %v", n, at, ok, w)
		}
	}
	for _, n := range []uint64{uint64(len(want)), uint64(len(want)) + 1, 1000} {
		if at, ok := p.Next(n); ok {
			t.Errorf("non-looping: Next(%d) = %v, want ended", n, at)
		}
	}
	// Ended is not sticky for earlier requests.
	if at, ok := p.Next(3); !ok || at != want[3] {
		t.Errorf("Next(3) after the end = %v, %v; want %v", at, ok, want[3])
	}
}

func TestStagesLoop(t *testing.T) {
	one := boundaryOffsets()
	const cycle = 4500 * ms
	p := NewStages(boundaryStages, true)
	for c := range 4 {
		for i, w := range one {
			n := uint64(c*len(one) + i)
			want := time.Duration(c)*cycle + w
			if at, ok := p.Next(n); !ok || at != want {
				t.Fatalf("cycle %d: Next(%d) = %v, %v; want %v", c, n, at, ok, want)
			}
		}
	}
}

func TestStagesRate(t *testing.T) {
	tests := []struct {
		d          time.Duration
		once, loop float64
	}{
		{d: -time.Second, once: 10, loop: 10},
		{d: 0, once: 10, loop: 10},
		{d: 999 * ms, once: 10, loop: 10},
		{d: time.Second, once: 5, loop: 5}, // a boundary belongs to the later stage
		{d: 2999 * ms, once: 5, loop: 5},
		{d: 3 * time.Second, once: 0, loop: 0},
		{d: 4 * time.Second, once: 4, loop: 4},
		{d: 4499 * ms, once: 4, loop: 4},
		{d: 4500 * ms, once: 0, loop: 10},
		{d: 5500 * ms, once: 0, loop: 5},
		{d: 100*4500*ms + 4200*ms, once: 0, loop: 4},
	}
	once, loop := NewStages(boundaryStages, false), NewStages(boundaryStages, true)
	for _, tc := range tests {
		if got := once.Rate(tc.d); got != tc.once {
			t.Errorf("non-looping Rate(%v) = %v, want %v", tc.d, got, tc.once)
		}
		if got := loop.Rate(tc.d); got != tc.loop {
			t.Errorf("looping Rate(%v) = %v, want %v", tc.d, got, tc.loop)
		}
	}
}

func TestStagesFollowTheirKind(t *testing.T) {
	const (
		rampEnd = 2 * time.Second
		dur     = 5 * time.Second
	)
	stages := []Stage{
		{Duration: rampEnd, Rate: 10},
		{Duration: dur, Rate: 40, Kind: KindPoisson, Seed: 7},
		{Duration: dur, Rate: 40, Kind: KindGamma, CV: 2, Seed: 8},
	}
	p := NewStages(stages, false)
	n := uint64(20) // the first stage holds 20 constant arrivals
	for k, ref := range []Pacer{NewPoisson(40, 7), NewGamma(40, 2, 8)} {
		start := rampEnd + time.Duration(k)*dur
		for i := uint64(0); ; i, n = i+1, n+1 {
			want, _ := ref.Next(i)
			if want >= dur {
				if i < 100 {
					t.Errorf("stage %d: only %d arrivals in %v at 40/s", k+1, i, dur)
				}
				break
			}
			if at, ok := p.Next(n); !ok || at != start+want {
				t.Fatalf("stage %d: Next(%d) = %v, %v; want the stage start %v + %v", k+1, n, at, ok, start, want)
			}
		}
	}
	if at, ok := p.Next(n); ok {
		t.Errorf("Next(%d) = %v after the last stage's arrivals; want ended", n, at)
	}
}

func TestStagesLoopDrawsFreshCycles(t *testing.T) {
	const dur = 10 * time.Second
	p := NewStages([]Stage{{Duration: dur, Rate: 20, Kind: KindPoisson, Seed: 3}}, true)
	var cycles [3][]time.Duration
	var prev time.Duration
	for n := uint64(0); ; n++ {
		at, ok := p.Next(n)
		if !ok {
			t.Fatalf("looping schedule ended at %d", n)
		}
		if at < prev {
			t.Fatalf("Next(%d) = %v goes back from %v", n, at, prev)
		}
		prev = at
		c := int(at / dur)
		if c >= len(cycles) {
			break
		}
		cycles[c] = append(cycles[c], at-time.Duration(c)*dur)
	}
	for c := 1; c < len(cycles); c++ {
		if cycles[c][0] != 0 {
			t.Errorf("cycle %d starts at %v past its start, want 0", c, cycles[c][0])
		}
		if equalDurations(cycles[c], cycles[0]) {
			t.Errorf("cycle %d replays cycle 0's arrivals", c)
		}
	}
}

func TestStagesWithoutArrivalsEnd(t *testing.T) {
	tests := []struct {
		name   string
		stages []Stage
	}{
		{"none", nil},
		{"only pauses", []Stage{{Duration: time.Second}, {Duration: time.Minute, Rate: 0, Kind: KindPoisson}}},
		{"only zero durations", []Stage{{Rate: 10}, {Rate: 20}}},
		{"only invalid stages", []Stage{{Duration: time.Second, Rate: 10, Kind: "bursty"}, {Duration: time.Second, Rate: -1}}},
	}
	for _, tc := range tests {
		for _, loop := range []bool{false, true} {
			p := NewStages(tc.stages, loop) // must not search forever
			if at, ok := p.Next(0); ok {
				t.Errorf("%s (loop %v): Next(0) = %v, want ended", tc.name, loop, at)
			}
			if r := p.Rate(0); r != 0 {
				t.Errorf("%s (loop %v): Rate(0) = %v, want 0", tc.name, loop, r)
			}
		}
	}
}

func TestStagesInvalidStageIsAPause(t *testing.T) {
	p := NewStages([]Stage{
		{Duration: time.Second, Rate: 2},
		{Duration: time.Second, Rate: 100, Kind: "bursty"},
		{Duration: time.Second, Rate: 2},
	}, false)
	want := []time.Duration{0, 500 * ms, 2 * time.Second, 2500 * ms}
	if got := offsets(t, p, len(want)); !equalDurations(got, want) {
		t.Errorf("offsets %v, want %v", got, want)
	}
	if r := p.Rate(1500 * ms); r != 0 {
		t.Errorf("Rate inside the invalid stage = %v, want 0", r)
	}
}

func TestStagesFarJump(t *testing.T) {
	stages := []Stage{
		{Duration: time.Second, Rate: 1000, Kind: KindPoisson, Seed: 1},
		{Duration: time.Second, Rate: 10},
	}
	const n = 100_000
	want := offsets(t, NewStages(stages, true), n+1)[n]
	if got, ok := NewStages(stages, true).Next(n); !ok || got != want {
		t.Errorf("a fresh pacer's Next(%d) = %v, %v; walking there gave %v", n, got, ok, want)
	}
	// A non-looping schedule asked far beyond its end answers without generating that far.
	if _, ok := NewStages(stages, false).Next(1 << 62); ok {
		t.Errorf("non-looping Next(2^62) should be ended")
	}
}

func TestStagesCopiesInput(t *testing.T) {
	stages := []Stage{{Duration: time.Second, Rate: 10}}
	p := NewStages(stages, false)
	stages[0].Rate = 1
	if at, ok := p.Next(1); !ok || at != 100*ms {
		t.Errorf("Next(1) = %v, %v after the caller changed its slice; want 100ms", at, ok)
	}
}

func TestValidateStages(t *testing.T) {
	tests := []struct {
		name    string
		stages  []Stage
		wantErr string
	}{
		{name: "valid", stages: []Stage{{Duration: time.Second, Rate: 1}, {Duration: time.Second}, {Duration: time.Second, Rate: 3, Kind: KindGamma, CV: 1.5}}},
		{name: "empty", wantErr: "at least one stage"},
		{name: "negative duration", stages: []Stage{{Duration: time.Second, Rate: 1}, {Duration: -1, Rate: 1}}, wantErr: "stage 1: duration"},
		{name: "negative rate", stages: []Stage{{Duration: time.Second, Rate: -2}}, wantErr: "stage 0: rate"},
		{name: "unknown kind", stages: []Stage{{Duration: time.Second, Rate: 1}, {Duration: time.Second, Rate: 1, Kind: "uniform"}}, wantErr: `stage 1: unknown kind "uniform"`},
		{name: "bad cv", stages: []Stage{{Duration: time.Second, Rate: 1, Kind: KindGamma, CV: -1}}, wantErr: "stage 0: gamma cv"},
		{name: "zero total", stages: []Stage{{Rate: 1}}, wantErr: "total duration must be positive"},
		{name: "overflow", stages: []Stage{{Duration: 1 << 62, Rate: 1}, {Duration: 1 << 62, Rate: 1}}, wantErr: "stage 1: total duration"},
	}
	for _, tc := range tests {
		err := ValidateStages(tc.stages)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func BenchmarkStagesNext(b *testing.B) {
	p := NewStages([]Stage{
		{Duration: time.Minute, Rate: 2000, Kind: KindPoisson, Seed: 1},
		{Duration: time.Minute, Rate: 500},
	}, true)
	var n uint64
	for b.Loop() {
		p.Next(n)
		n++
	}
}
