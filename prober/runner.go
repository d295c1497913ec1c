package prober

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inferprobe/inferprobe/traffic"
)

// failureLogInterval bounds how often one target logs a failed request at warn level; the rest
// go to debug, so a dead server cannot flood the log.
const failureLogInterval = 30 * time.Second

// gateTickInterval is how often a closed gate is re-evaluated when no request is due.
const gateTickInterval = time.Second

// RunnerConfig wires one target's run loop.
type RunnerConfig struct {
	Target      *TargetInfo
	Pacer       traffic.Pacer
	Source      traffic.Source
	Client      Client
	Gate        *Gate
	Observer    Observer
	MaxInFlight int
	Logger      *slog.Logger
}

// Runner is the open-loop run loop of one target: it releases each request when the pacer says
// it is due, drops (and counts) what the in-flight cap refuses, and hands every finished record
// to the gate and then the observer.
type Runner struct {
	cfg      RunnerConfig
	inFlight atomic.Int64
	lastWarn atomic.Int64 // unix nanos of the last warn-level failure log
	// reportMu orders what the gate's events tell the observer: an opening decided before a
	// Rearm must not be reported after the Rearm's closing.
	reportMu sync.Mutex
	records  sync.Pool
	wg       sync.WaitGroup
}

// NewRunner returns a runner; Run starts it.
func NewRunner(cfg RunnerConfig) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxInFlight < 1 {
		cfg.MaxInFlight = 1
	}
	r := &Runner{cfg: cfg}
	r.records.New = func() any { return &Record{Gaps: make([]time.Duration, 0, 64), GapTokens: make([]int32, 0, 64)} }
	cfg.Gate.SetRearmHook(func(reason string) {
		r.reportMu.Lock()
		defer r.reportMu.Unlock()
		cfg.Logger.Info("warmup gate re-armed", "reason", reason)
		cfg.Observer.WarmupChanged(cfg.Target, false, false)
	})
	return r
}

// InFlight returns the number of requests started and not finished.
func (r *Runner) InFlight() int { return int(r.inFlight.Load()) }

// Run sends requests until ctx is done or the pacer ends, then waits for the requests in
// flight (which ctx cancels) before it returns.
func (r *Runner) Run(ctx context.Context) {
	defer r.wg.Wait()
	t := r.cfg.Target
	r.cfg.Observer.WarmupChanged(t, false, false)
	r.report(r.cfg.Gate.Tick())

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	lastRate := -1.0
	start := time.Now()
	for n := uint64(0); ; n++ {
		at, ok := r.cfg.Pacer.Next(n)
		if !ok {
			return
		}
		due := start.Add(at)
		for {
			wait := time.Until(due)
			if wait <= 0 {
				break
			}
			if open, _ := r.cfg.Gate.IsOpen(); !open && wait > gateTickInterval {
				wait = gateTickInterval // a closed gate may open on time alone
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			r.report(r.cfg.Gate.Tick())
		}
		if ctx.Err() != nil {
			return
		}
		if rate := r.cfg.Pacer.Rate(at); rate != lastRate {
			lastRate = rate
			r.cfg.Observer.TargetRate(t, rate)
		}
		if r.inFlight.Load() >= int64(r.cfg.MaxInFlight) {
			r.cfg.Observer.RequestDropped(t)
			continue
		}
		req := r.cfg.Source.Next(n)
		r.inFlight.Add(1)
		r.wg.Add(1)
		go r.do(ctx, n, due, req)
	}
}

// do sends one request; it runs on its own goroutine, owned by Run through r.wg.
func (r *Runner) do(ctx context.Context, n uint64, due time.Time, req traffic.Request) {
	defer r.wg.Done()
	rec := r.records.Get().(*Record)
	rec.Reset()
	rec.Target, rec.Seq, rec.Intended, rec.Adapter = r.cfg.Target, n, due, req.Adapter

	r.cfg.Observer.RequestStarted(r.cfg.Target)
	gen := r.cfg.Gate.Generation()
	r.cfg.Client.Do(ctx, req, rec)
	r.inFlight.Add(-1)

	warmup, ev := r.cfg.Gate.Finish(rec, gen)
	rec.Warmup = warmup
	r.report(ev)
	if rec.Result != ResultSuccess {
		r.logFailure(rec)
	}
	r.cfg.Observer.RequestFinished(rec)
	r.records.Put(rec)
}

// report tells the observer and the log what a gate call changed, unless the gate re-armed
// since (then the event is stale and the re-arm has been reported).
func (r *Runner) report(ev GateEvent) {
	if !ev.ColdStart && !ev.Opened {
		return
	}
	r.reportMu.Lock()
	defer r.reportMu.Unlock()
	if ev.Gen != r.cfg.Gate.Generation() {
		return
	}
	t := r.cfg.Target
	if ev.ColdStart {
		r.cfg.Logger.Info("cold start measured", "ttft", ev.ColdStartTTF)
		r.cfg.Observer.ColdStart(t, ev.ColdStartTTF)
	}
	if ev.Opened {
		if ev.Forced {
			r.cfg.Logger.Warn("warmup gate forced open at max_duration; measuring anyway")
		} else {
			r.cfg.Logger.Info("warmup gate opened; measuring")
		}
		r.cfg.Observer.WarmupChanged(t, true, ev.Forced)
	}
}

func (r *Runner) logFailure(rec *Record) {
	if rec.Result == ResultCanceled {
		return
	}
	now := time.Now().UnixNano()
	last := r.lastWarn.Load()
	level := slog.LevelDebug
	if now-last >= int64(failureLogInterval) && r.lastWarn.CompareAndSwap(last, now) {
		level = slog.LevelWarn
	}
	r.cfg.Logger.Log(context.Background(), level, "request failed",
		"result", rec.Result, "status", rec.Status, "err", rec.Err, "seq", rec.Seq)
}
