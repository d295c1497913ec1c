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
