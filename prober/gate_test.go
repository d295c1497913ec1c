package prober

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func success(ttft time.Duration) *Record {
	return &Record{Result: ResultSuccess, Chunks: 1, FirstToken: ttft, OutputTokens: 1}
}

func TestGateOpensAfterRequestsAndMinDuration(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	g := NewGate(WarmupConfig{Requests: 3, MinDuration: 10 * time.Second, MaxDuration: time.Minute}, clk.now)

	warm, ev := g.Finish(success(90*time.Millisecond), g.Generation())
	if !warm || !ev.ColdStart || ev.ColdStartTTF != 90*time.Millisecond || ev.Opened {
		t.Fatalf("first request: warmup=%v ev=%+v; want warmup, cold start 90ms, gate closed", warm, ev)
	}
	g.Finish(&Record{Result: ResultHTTP5xx}, g.Generation()) // failures do not count toward Requests
	g.Finish(success(time.Millisecond), g.Generation())
	warm, ev = g.Finish(success(time.Millisecond), g.Generation())
	if !warm || ev.Opened || ev.ColdStart {
		t.Fatalf("3 successes before min_duration: warmup=%v ev=%+v; want still closed, no second cold start", warm, ev)
	}
	clk.advance(10 * time.Second)
	if ev := g.Tick(); !ev.Opened || ev.Forced {
		t.Fatalf("Tick after min_duration: %+v, want opened, not forced", ev)
	}
	if open, forced := g.IsOpen(); !open || forced {
		t.Fatal("gate not open")
	}
	if warm, _ := g.Finish(success(time.Millisecond), g.Generation()); warm {
		t.Fatal("request after the gate opened counted as warmup")
	}
}

func TestGateOpensOnFinishWhenTimeAlreadyPassed(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	g := NewGate(WarmupConfig{Requests: 2, MinDuration: time.Second}, clk.now)
	clk.advance(2 * time.Second)
	g.Finish(success(time.Millisecond), g.Generation())
	warm, ev := g.Finish(success(time.Millisecond), g.Generation())
	if !warm || !ev.Opened {
		t.Fatalf("the request that meets the count is warmup and opens the gate: warm=%v ev=%+v", warm, ev)
	}
}

func TestGateForcedAtMaxDuration(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	g := NewGate(WarmupConfig{Requests: 100, MaxDuration: 30 * time.Second}, clk.now)
	g.Finish(&Record{Result: ResultTimeout}, g.Generation())
	clk.advance(29 * time.Second)
	if ev := g.Tick(); ev.Opened {
		t.Fatal("opened before max_duration")
	}
	clk.advance(time.Second)
	if ev := g.Tick(); !ev.Opened || !ev.Forced {
		t.Fatalf("Tick at max_duration: %+v, want forced open", ev)
	}
	if open, forced := g.IsOpen(); !open || !forced {
		t.Fatal("gate not reported forced open")
	}
}

func TestGateZeroWarmupOpensAtOnce(t *testing.T) {
	g := NewGate(WarmupConfig{}, nil)
	if ev := g.Tick(); !ev.Opened {
		t.Fatal("a gate with no warmup requirements must open on the first tick")
	}
	warm, ev := g.Finish(success(7*time.Millisecond), g.Generation())
	if warm || !ev.ColdStart {
		t.Fatalf("warm=%v ev=%+v; want measured, and the first TTFT still reported as cold start", warm, ev)
	}
}

func TestGateStableWithin(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	g := NewGate(WarmupConfig{Requests: 1, StableWithin: 0.1, MaxDuration: time.Hour}, clk.now)
	ms := time.Millisecond
	// A cold server: TTFT falls from 500ms to 100ms, then settles around 100ms.
	for _, v := range []time.Duration{500, 400, 300, 200, 150, 110, 100, 100, 100, 100} {
		if _, ev := g.Finish(success(v*ms), g.Generation()); ev.Opened {
			t.Fatalf("opened at TTFT %vms while TTFT was still falling", v)
		}
	}
	opened := false
	for _, v := range []time.Duration{101, 99, 100, 102, 98} {
		if _, ev := g.Finish(success(v*ms), g.Generation()); ev.Opened {
			opened = true
		}
	}
	if !opened {
		t.Fatal("gate did not open once the TTFT medians of two windows agreed within 10%")
	}
}

func TestGateRearm(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	g := NewGate(WarmupConfig{Requests: 1}, clk.now)
	var reasons []string
	g.SetRearmHook(func(r string) { reasons = append(reasons, r) })
	g.Finish(success(time.Millisecond), g.Generation())
	if open, _ := g.IsOpen(); !open {
		t.Fatal("gate should be open")
	}
	g.Rearm("server restarted")
	if open, _ := g.IsOpen(); open {
		t.Fatal("gate open after Rearm")
	}
	if len(reasons) != 1 || reasons[0] != "server restarted" {
		t.Fatalf("hook got %v", reasons)
	}
	warm, ev := g.Finish(success(800*time.Millisecond), g.Generation())
	if !warm || !ev.ColdStart || ev.ColdStartTTF != 800*time.Millisecond || !ev.Opened {
		t.Fatalf("after Rearm: warm=%v ev=%+v; want a warmup request, a new cold start, and the gate reopened", warm, ev)
	}
}

func TestGateColdStartOnlyFromRequestsStartedAfterArming(t *testing.T) {
	g := NewGate(WarmupConfig{Requests: 1}, nil)
	g.Finish(success(time.Millisecond), g.Generation())
	before := g.Generation() // a request starts, then the server restarts and the gate re-arms
	g.Rearm("restart")
	if _, ev := g.Finish(success(5*time.Millisecond), before); ev.ColdStart {
		t.Fatal("a request that started before the re-arm was taken as the cold start")
	}
	if _, ev := g.Finish(success(900*time.Millisecond), g.Generation()); !ev.ColdStart || ev.ColdStartTTF != 900*time.Millisecond {
		t.Fatalf("the first request started after the re-arm is the cold start: %+v", ev)
	}
}

// TestGateRearmsOnProbeRecovery: connection failures then a success re-arm the gate before
// that success is counted, and it is the cold start — no waiting for the next metrics scrape.
func TestGateRearmsOnProbeRecovery(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	g := NewGate(WarmupConfig{Requests: 1, MaxDuration: time.Minute, RecoveryFailures: 2}, clk.now)
	var rearms []string
	recovered := 0
	g.SetRearmHook(func(reason string) { rearms = append(rearms, reason) })
	g.SetRecoveryHook(func() { recovered++ })
	g.Finish(success(time.Millisecond), g.Generation())
	if open, _ := g.IsOpen(); !open {
		t.Fatal("gate not open after warmup")
	}
	refused := &Record{Result: ResultConnection}
	// One failure, then a success: below the threshold, nothing happens.
	g.Finish(refused, g.Generation())
	if warm, _ := g.Finish(success(time.Millisecond), g.Generation()); warm || len(rearms) != 0 {
		t.Fatalf("one failure re-armed (warmup=%v, rearms %v)", warm, rearms)
	}
	// A timeout between the failures neither extends nor ends the run.
	startGen := g.Generation() // the recovering request started before the failures ended
	g.Finish(refused, g.Generation())
	g.Finish(&Record{Result: ResultTimeout}, g.Generation())
	g.Finish(refused, g.Generation())
	warm, ev := g.Finish(success(700*time.Millisecond), startGen)
	if len(rearms) != 1 || rearms[0] != RestartProbeRecovery || recovered != 1 {
		t.Fatalf("rearms %v, recovery hook %d times; want one probe_recovery", rearms, recovered)
	}
	if !warm || !ev.ColdStart || ev.ColdStartTTF != 700*time.Millisecond || ev.Gen != g.Generation() {
		t.Fatalf("recovering request: warmup=%v ev=%+v; want warmup and the cold start of the new arming", warm, ev)
	}
	// A re-arm by the scrape during the failures already covers the restart.
	g.Finish(refused, g.Generation())
	g.Finish(refused, g.Generation())
	g.Rearm("process_start_time")
	g.Finish(success(time.Millisecond), g.Generation())
	if len(rearms) != 2 || rearms[1] != "process_start_time" {
		t.Fatalf("rearms %v, want no second re-arm from the probe path", rearms)
	}
	// 0 turns it off.
	off := NewGate(WarmupConfig{MaxDuration: time.Minute}, clk.now)
	off.SetRearmHook(func(string) { t.Error("re-armed with RecoveryFailures 0") })
	for range 5 {
		off.Finish(refused, off.Generation())
	}
	off.Finish(success(time.Millisecond), off.Generation())
}
