package prober

import (
	"slices"
	"sync"
	"time"
)

// stableWindow is how many recent TTFTs form one median for the stability check: the gate
// compares the median of the last stableWindow requests with that of the stableWindow before.
const stableWindow = 5

// WarmupConfig configures a Gate.
type WarmupConfig struct {
	// Requests is the number of successful requests needed before the gate opens.
	Requests int
	// MinDuration is the least time the gate stays closed after it is armed.
	MinDuration time.Duration
	// MaxDuration forces the gate open if it is still closed after this long.
	MaxDuration time.Duration
	// StableWithin, when > 0, also requires the TTFT medians of the last two windows to differ
	// by less than this ratio.
	StableWithin float64
	// RecoveryFailures, when > 0, re-arms the gate from the probe path: a success after at
	// least this many consecutive connection failures is taken as the first request on a
	// restarted server, re-arms the gate before that request is counted, and makes it the
	// cold start (unless the gate was re-armed already since the failures began, e.g. by the
	// metrics scrape).
	RecoveryFailures int
}

// RestartProbeRecovery is the re-arm reason when the probe path saw a server come back.
const RestartProbeRecovery = "probe_recovery"

// GateEvent says what a gate call changed, for the caller to report. Gen is the arming it
// belongs to: an event whose Gen is no longer the gate's Generation is stale (the gate re-armed
// since) and must not be reported.
type GateEvent struct {
	Gen uint64
	// Opened is set when the gate opened during the call; Forced when max_duration forced it.
	Opened, Forced bool
	// ColdStart is set when the call saw the first TTFT after the gate was armed.
	ColdStart    bool
	ColdStartTTF time.Duration
}

// Gate holds measurement back until a target is warm. It is closed when created and after
// Rearm; requests that finish while it is closed are warmup requests and never reach the
// latency histograms. It is safe for concurrent use.
type Gate struct {
	cfg WarmupConfig
	now func() time.Time

	mu          sync.Mutex
	gen         uint64 // incremented by every arming
	armedAt     time.Time
	open        bool
	forced      bool
	successes   int
	ttfts       []time.Duration // the last 2*stableWindow TTFTs, oldest first
	coldPending bool
	onRearm     func(reason string)
	onRecovered func()
	connFails   int    // consecutive connection failures
	failsGen    uint64 // the arming the first of them finished in
}

// NewGate returns a closed gate armed now. now may be nil (time.Now).
func NewGate(cfg WarmupConfig, now func() time.Time) *Gate {
	if now == nil {
		now = time.Now
	}
	g := &Gate{cfg: cfg, now: now}
	g.arm()
	return g
}

func (g *Gate) arm() {
	g.gen++
	g.armedAt = g.now()
	g.open, g.forced = false, false
	g.successes = 0
	g.ttfts = g.ttfts[:0]
	g.coldPending = true
}

// SetRearmHook sets a function called (outside the gate's lock) after every Rearm; the run loop
// uses it to report the closed gate.
func (g *Gate) SetRearmHook(f func(reason string)) {
	g.mu.Lock()
	g.onRearm = f
	g.mu.Unlock()
}

// SetRecoveryHook sets a function called (outside the gate's lock) after the probe path
// re-armed the gate; the daemon uses it to scrape the server's metrics at once.
func (g *Gate) SetRecoveryHook(f func()) {
	g.mu.Lock()
	g.onRecovered = f
	g.mu.Unlock()
}

// Rearm closes the gate again, as at start: the next requests are warmup, and the first TTFT is
// reported as a cold start. The model-server scrape calls it when the server restarted.
func (g *Gate) Rearm(reason string) {
	g.mu.Lock()
	g.arm()
	hook := g.onRearm
	g.mu.Unlock()
	if hook != nil {
		hook(reason)
	}
}

// Generation returns the current arming: 1 after NewGate, one more after each Rearm. The run
// loop takes it when a request starts and hands it to Finish.
func (g *Gate) Generation() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gen
}

// IsOpen reports whether the gate is open, and whether it was forced open.
func (g *Gate) IsOpen() (open, forced bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open, g.forced
}

// Finish accounts a finished request that started in arming startGen (see Generation). It
// returns whether the request counts as warmup (it finished while the gate was closed) and
// what changed. Only a request that started after the gate was armed can be its cold start —
// or the success that ends a run of connection failures, which re-arms the gate first (see
// WarmupConfig.RecoveryFailures).
func (g *Gate) Finish(r *Record, startGen uint64) (warmup bool, ev GateEvent) {
	g.mu.Lock()
	var rearmHook func(string)
	var recoveredHook func()
	if g.recovered(r) {
		g.arm()
		startGen = g.gen // the first request seen on the new process is its cold start
		rearmHook, recoveredHook = g.onRearm, g.onRecovered
	}
	warmup, ev = g.finishLocked(r, startGen)
	g.mu.Unlock()
	// The re-arm is reported before the caller reports ev (the cold start of the new arming).
	if rearmHook != nil {
		rearmHook(RestartProbeRecovery)
	}
	if recoveredHook != nil {
		recoveredHook()
	}
	return warmup, ev
}

// recovered tracks runs of connection failures and reports whether r is the success that ends
// one long enough to re-arm; g.mu is held. Other failures neither extend nor end a run.
func (g *Gate) recovered(r *Record) bool {
	switch r.Result {
	case ResultConnection:
		if g.connFails == 0 {
			g.failsGen = g.gen
		}
		g.connFails++
		return false
	case ResultSuccess:
		n := g.connFails
		g.connFails = 0
		return g.cfg.RecoveryFailures > 0 && n >= g.cfg.RecoveryFailures && g.failsGen == g.gen
	}
	return false
}

func (g *Gate) finishLocked(r *Record, startGen uint64) (warmup bool, ev GateEvent) {
	ev.Gen = g.gen
	if ttft, ok := r.TTFT(); ok && g.coldPending && startGen == g.gen {
		g.coldPending = false
		ev.ColdStart, ev.ColdStartTTF = true, ttft
	}
	if g.open {
		return false, ev
	}
	if r.Result == ResultSuccess {
		g.successes++
		if ttft, ok := r.TTFT(); ok {
			if len(g.ttfts) == 2*stableWindow {
				g.ttfts = append(g.ttfts[:0], g.ttfts[1:]...)
			}
			g.ttfts = append(g.ttfts, ttft)
		}
	}
	ev.Opened, ev.Forced = g.evaluate()
	return true, ev
}

// Tick opens the gate if its conditions hold on time alone (min_duration passed after enough
// successes, or max_duration reached). The run loop calls it as time passes.
func (g *Gate) Tick() GateEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		return GateEvent{Gen: g.gen}
	}
	opened, forced := g.evaluate()
	return GateEvent{Gen: g.gen, Opened: opened, Forced: forced}
}

// evaluate opens the gate when its conditions hold; g.mu is held.
func (g *Gate) evaluate() (opened, forced bool) {
	elapsed := g.now().Sub(g.armedAt)
	if g.cfg.MaxDuration > 0 && elapsed >= g.cfg.MaxDuration {
		g.open, g.forced = true, true
		return true, true
	}
	if elapsed < g.cfg.MinDuration || g.successes < g.cfg.Requests || !g.stable() {
		return false, false
	}
	g.open = true
	return true, false
}

// stable reports whether the TTFT medians of the last two windows agree within StableWithin.
func (g *Gate) stable() bool {
	if g.cfg.StableWithin <= 0 {
		return true
	}
	if len(g.ttfts) < 2*stableWindow {
		return false
	}
	prev, last := median(g.ttfts[:stableWindow]), median(g.ttfts[stableWindow:])
	if prev <= 0 {
		return last <= 0
	}
	diff := float64(last-prev) / float64(prev)
	if diff < 0 {
		diff = -diff
	}
	return diff < g.cfg.StableWithin
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
