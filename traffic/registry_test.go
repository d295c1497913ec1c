package traffic

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
)

func mustPlan(t testing.TB, tr config.Traffic, seed uint64) Plan {
	t.Helper()
	p, err := PlanFor(tr, seed)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPlanForOpenKinds: every open-loop kind built from its config holds its rate within 1%
// over at least 10,000 arrivals, gamma's gap CV is 1/sqrt(burstiness) within 3%, and constant
// gaps are exact.
func TestPlanForOpenKinds(t *testing.T) {
	const rate = 40
	tests := []struct {
		name   string
		tr     config.Traffic
		count  int // enough arrivals that 1% is four standard errors of the mean gap
		wantCV float64
	}{
		{"constant", config.Traffic{Pacer: KindConstant, Rate: rate}, 10_000, 0},
		{"poisson", config.Traffic{Pacer: KindPoisson, Rate: rate}, 200_000, 1},
		{"gamma burstiness 0.5", config.Traffic{Pacer: KindGamma, Rate: rate, Burstiness: 0.5}, 400_000, math.Sqrt2},
		{"gamma burstiness 4", config.Traffic{Pacer: KindGamma, Rate: rate, Burstiness: 4}, 50_000, 0.5},
		{"gamma burstiness 1 is poisson", config.Traffic{Pacer: KindGamma, Rate: rate, Burstiness: 1}, 200_000, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPlan(t, tc.tr, 99)
			if len(p.Phases) != 1 || p.Phases[0].Duration != 0 || p.Phases[0].ClosedLoop() || p.Phases[0].Rate != rate || p.Loop {
				t.Fatalf("plan %+v, want one open-ended open-loop phase at %v", p, rate)
			}
			arr := p.Phases[0].Arrivals(0)
			got, cv := gapStats(t, arr, tc.count)
			if math.Abs(got-rate)/rate > 0.01 {
				t.Errorf("achieved rate %.4f, want %v ± 1%%", got, rate)
			}
			switch {
			case tc.wantCV == 0 && cv != 0:
				t.Errorf("constant gaps vary: cv %g", cv)
			case tc.wantCV > 0 && math.Abs(cv/tc.wantCV-1) > 0.03:
				t.Errorf("gap cv %.4f, want %.4f ± 3%%", cv, tc.wantCV)
			}
		})
	}
}

func TestPlanForConstantGapsExact(t *testing.T) {
	arr := mustPlan(t, config.Traffic{Pacer: KindConstant, Rate: 8}, 1).Phases[0].Arrivals(0)
	for n := uint64(0); n < 10_000; n++ {
		if at, _ := arr.Next(n); at != time.Duration(n)*125*time.Millisecond {
			t.Fatalf("request %d at %v, want %v", n, at, time.Duration(n)*125*time.Millisecond)
		}
	}
}

func TestPlanForConcurrent(t *testing.T) {
	p := mustPlan(t, config.Traffic{Pacer: KindConcurrent, Concurrency: 8}, 1)
	if len(p.Phases) != 1 || !p.Phases[0].ClosedLoop() || p.Phases[0].Concurrency != 8 || p.Phases[0].Rate != 0 || p.Phases[0].Duration != 0 {
		t.Fatalf("plan %+v", p)
	}
	if _, ok := p.Phases[0].Arrivals(0).Next(0); ok {
		t.Error("a closed-loop phase has open-loop arrivals")
	}
}

// TestPlanForStages: stage boundaries at the sum of the durations before, every arrival of a
// stage inside it, rate and concurrency per stage, looping, and fresh random gaps per cycle.
func TestPlanForStages(t *testing.T) {
	tr := config.Traffic{Pacer: KindStages, Stages: []config.Stage{
		{Rate: 100, Duration: 30 * time.Second},
		{Rate: 300, Duration: 20 * time.Second, Pacer: KindPoisson},
		{Concurrency: 16, Duration: time.Minute},
		{Rate: 50, Duration: 30 * time.Second, Pacer: KindGamma, Burstiness: 0.25},
	}}
	p := mustPlan(t, tr, 5)
	if !p.Loop || !p.Staged || len(p.Phases) != 4 || p.Length() != 140*time.Second {
		t.Fatalf("plan loop %v staged %v phases %d length %v", p.Loop, p.Staged, len(p.Phases), p.Length())
	}
	total := 0
	for i, ph := range p.Phases {
		st := tr.Stages[i]
		if ph.Duration != st.Duration || ph.Rate != st.Rate || ph.Concurrency != st.Concurrency {
			t.Errorf("phase %d = %+v, want stage %+v", i, ph, st)
		}
		if ph.ClosedLoop() {
			continue
		}
		// Count the arrivals inside the stage: about rate × duration (≥ 10,000 in all).
		n := uint64(0)
		for ; ; n++ {
			at, ok := ph.Arrivals(0).Next(n)
			if !ok || at >= ph.Duration {
				break
			}
			if at < 0 {
				t.Fatalf("phase %d arrival %d at %v", i, n, at)
			}
		}
		want := st.Rate * st.Duration.Seconds()
		if math.Abs(float64(n)-want) > 5*math.Sqrt(want)*max(1, 1/math.Sqrt(max(st.Burstiness, 1e-9))) {
			t.Errorf("phase %d: %d arrivals, want about %.0f", i, n, want)
		}
		total += int(n)
	}
	if total < 10_000 {
		t.Errorf("only %d arrivals checked", total)
	}
	if p.Phases[0].Arrivals(0) == nil {
		t.Fatal("no arrivals")
	}
	// Constant stages repeat exactly; random stages draw a new pattern in each cycle, and
	// the same (seed, cycle) again gives the same one.
	first := offsets(t, p.Phases[1].Arrivals(0), 100)
	second := offsets(t, p.Phases[1].Arrivals(1), 100)
	if equalDurations(first, second) {
		t.Error("a Poisson stage replays the same arrivals every cycle")
	}
	if !equalDurations(second, offsets(t, mustPlan(t, tr, 5).Phases[1].Arrivals(1), 100)) {
		t.Error("the same seed and cycle gave different arrivals")
	}
	if !equalDurations(offsets(t, p.Phases[0].Arrivals(0), 100), offsets(t, p.Phases[0].Arrivals(3), 100)) {
		t.Error("a constant stage differs between cycles")
	}
	if equalDurations(first, offsets(t, mustPlan(t, tr, 6).Phases[1].Arrivals(0), 100)) {
		t.Error("another seed gave the same arrivals")
	}
}

func TestPlanForRejectsInvalid(t *testing.T) {
	for _, tr := range []config.Traffic{
		{Pacer: "bursty", Rate: 1},
		{Pacer: KindGamma, Rate: 1, Burstiness: 0},
		{Pacer: KindConcurrent},
		{Pacer: KindStages},
		{Pacer: KindStages, Stages: []config.Stage{{Duration: time.Second}}},
		{Pacer: KindConstant, Rate: math.NaN()},
	} {
		if _, err := PlanFor(tr, 1); err == nil {
			t.Errorf("PlanFor(%+v) accepted", tr)
		} else if !strings.HasPrefix(err.Error(), "traffic: ") {
			t.Errorf("error %q does not say where it comes from", err)
		}
	}
}

func TestPacerKindsRegistry(t *testing.T) {
	var names []string
	for _, k := range PacerKinds() {
		names = append(names, k.Name)
		if k.Summary == "" || len(k.Fields) == 0 || k.check == nil || (k.plan == nil && k.load == nil) {
			t.Errorf("kind %s is incomplete", k.Name)
		}
		if got, ok := LookupPacer(k.Name); !ok || got.Name != k.Name {
			t.Errorf("LookupPacer(%q) = %v, %v", k.Name, got.Name, ok)
		}
	}
	if want := []string{KindConstant, KindPoisson, KindGamma, KindConcurrent, KindStages, KindTrace}; !slices.Equal(names, want) {
		t.Errorf("kinds %v, want %v", names, want)
	}
	if _, ok := LookupPacer("nope"); ok {
		t.Error("LookupPacer found an unregistered kind")
	}
}

// BenchmarkPlanNext measures Next of every open-loop arrival process the registry builds,
// as the run loop calls it: increasing n, one pacer per phase.
func BenchmarkPlanNext(b *testing.B) {
	for _, tc := range []struct {
		name string
		tr   config.Traffic
	}{
		{"constant", config.Traffic{Pacer: KindConstant, Rate: 2000}},
		{"poisson", config.Traffic{Pacer: KindPoisson, Rate: 2000}},
		{"gamma_b0.5", config.Traffic{Pacer: KindGamma, Rate: 2000, Burstiness: 0.5}},
		{"gamma_b4", config.Traffic{Pacer: KindGamma, Rate: 2000, Burstiness: 4}},
		{"stages_poisson", config.Traffic{Pacer: KindStages, Stages: []config.Stage{{Rate: 2000, Duration: 1 << 60, Pacer: KindPoisson}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := mustPlan(b, tc.tr, 1).Phases[0].Arrivals(0)
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				p.Next(n)
				n++
			}
		})
	}
}

// TestShardPartitionsThePlan: the shards of a plan together send exactly its arrivals, none
// twice, and split closed-loop concurrency without losing a slot.
func TestShardPartitionsThePlan(t *testing.T) {
	plan := mustPlan(t, config.Traffic{Pacer: KindStages, Stages: []config.Stage{
		{Rate: 50, Duration: 10 * time.Second, Pacer: KindPoisson},
		{Concurrency: 10, Duration: time.Second},
		{Rate: 20, Duration: 5 * time.Second},
	}}, 8)
	const n = 3
	for k, ph := range plan.Phases {
		var whole []time.Duration
		if !ph.ClosedLoop() {
			for i := uint64(0); ; i++ {
				at, ok := ph.Arrivals(0).Next(i)
				if !ok || at >= ph.Duration {
					break
				}
				whole = append(whole, at)
			}
		}
		var union []time.Duration
		conc := 0
		for i := range n {
			sp, err := Shard(plan, i, n)
			if err != nil {
				t.Fatal(err)
			}
			sph := sp.Phases[k]
			conc += sph.Concurrency
			if sph.ClosedLoop() {
				continue
			}
			if math.Abs(sph.Rate*n-ph.Rate) > 1e-9 {
				t.Errorf("phase %d shard %d rate %v of %v", k, i, sph.Rate, ph.Rate)
			}
			arr := sph.Arrivals(0)
			for j := uint64(0); ; j++ {
				at, ok := arr.Next(j)
				if !ok || at >= sph.Duration {
					break
				}
				union = append(union, at)
			}
		}
		slices.Sort(union)
		if !equalDurations(union, whole) {
			t.Errorf("phase %d: shards sent %d arrivals, the whole plan %d, or different ones", k, len(union), len(whole))
		}
		if conc != ph.Concurrency {
			t.Errorf("phase %d: shards hold %d in flight, the plan %d", k, conc, ph.Concurrency)
		}
	}
	if _, err := Shard(plan, 0, 11); err == nil {
		t.Error("concurrency 10 split over 11 shards")
	}
	if _, err := Shard(plan, 3, 3); err == nil {
		t.Error("shard 3 of 3 accepted")
	}
	src := ShardSource(NewPromptSource(PromptOptions{InputTokens: 4, CacheBust: true, Seed: 1}), 1, 3)
	whole := NewPromptSource(PromptOptions{InputTokens: 4, CacheBust: true, Seed: 1})
	if src.Next(2).Prompt != whole.Next(7).Prompt {
		t.Error("shard 1 of 3's request 2 is not the whole run's request 7")
	}
}
