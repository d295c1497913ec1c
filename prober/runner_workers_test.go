package prober

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/inferprobe/inferprobe/traffic"
)

// goroutineClient sleeps d per request and notes which goroutine sent it.
type goroutineClient struct {
	d  time.Duration
	mu sync.Mutex
	// by phase (the record's stage), the goroutines that sent its requests
	senders map[int]map[string]int
}

func (c *goroutineClient) Do(ctx context.Context, _ traffic.Request, rec *Record) {
	var buf [64]byte
	id := string(bytes.Fields(buf[:runtime.Stack(buf[:], false)])[1]) // "goroutine N [..."
	c.mu.Lock()
	if c.senders[rec.Stage] == nil {
		c.senders[rec.Stage] = map[string]int{}
	}
	c.senders[rec.Stage][id]++
	c.mu.Unlock()
	sleepClient{c.d}.Do(ctx, traffic.Request{}, rec)
}

// TestRunnerOpenLoopReusesWorkers: open-loop requests run on workers kept between requests (a
// steady rate needs about as many as it has in flight, not one per request), every request
// released is sent and finished, and when the plan ends by itself Run returns only after every
// worker, idle or busy, has ended.
func TestRunnerOpenLoopReusesWorkers(t *testing.T) {
	defer goleak.VerifyNone(t)
	plan := traffic.Plan{Phases: []traffic.Phase{
		traffic.OpenPhase(300*time.Millisecond, traffic.KindConstant, 100, 1, 1), // 30 requests, about 1 in flight
		traffic.OpenPhase(100*time.Millisecond, traffic.KindConstant, 500, 1, 2), // 50, about 10 in flight
	}}
	c := &goroutineClient{d: 3 * time.Millisecond, senders: map[int]map[string]int{}}
	obs := &recordingObserver{}
	r := NewRunner(RunnerConfig{Target: &TargetInfo{Name: "t"}, Plan: plan, Source: seqSource{},
		Client: c, Gate: NewGate(WarmupConfig{}, nil), Observer: obs, MaxInFlight: 1000})
	done := make(chan struct{})
	go func() { defer close(done); r.Run(context.Background()) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its plan ended")
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.started != 80 || obs.finished != 80 || obs.dropped != 0 || obs.results[ResultSuccess] != 80 {
		t.Errorf("started %d, finished %d, dropped %d, results %v; want 80 sent and succeeded", obs.started, obs.finished, obs.dropped, obs.results)
	}
	if n := r.InFlight(); n != 0 {
		t.Errorf("%d in flight after Run returned", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// 30 requests 10 ms apart, each 3 ms: one worker serves them unless the machine stalls a
	// request past the next one's start; a new goroutine per request would make 30.
	if n := len(c.senders[0]); n > 10 {
		t.Errorf("the 100 req/s phase ran on %d goroutines for 30 requests; want them reused", n)
	}
	total := 0
	for _, m := range c.senders {
		for _, k := range m {
			total += k
		}
	}
	if total != 80 {
		t.Errorf("the client saw %d requests, want 80", total)
	}
}
