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

// openWorkerIdle is how long an open-loop worker waits for its next request before it ends: long
// enough that a steady rate, even 1 req/s, keeps its workers (and their grown stacks) from one
// request to the next, short enough that the workers of a burst do not linger.
const openWorkerIdle = 5 * time.Second

// closedLoopFailurePause is the least time between the start of a failed closed-loop request
// and the next request of its slot: a dead server fails requests at once, and without a pause
// a closed loop would turn into a flood of connection attempts.
const closedLoopFailurePause = 100 * time.Millisecond

// RunnerConfig wires one target's run loop.
type RunnerConfig struct {
	// Target identifies the target in every event.
	Target *TargetInfo
	// Plan is the traffic to send. When it has no phases, Pacer is used as one open-ended
	// open-loop phase.
	Plan traffic.Plan
	// Pacer is the schedule of a runner built in code around one pacer (see Plan).
	Pacer traffic.Pacer
	// Source builds each request; it is called from the run loop's goroutine only.
	Source traffic.Source
	// Client sends each request.
	Client Client
	// Gate is the warmup gate.
	Gate *Gate
	// Observer receives every event; it must not block (see Observer).
	Observer Observer
	// MaxInFlight caps open-loop requests in flight; arrivals beyond it are dropped. Closed-loop
	// phases keep their concurrency and are not capped.
	MaxInFlight int
	// Logger receives the run loop's logs.
	Logger *slog.Logger
	// Conversation, with Turns ≥ 2, makes every request a session of that many turns (Source
	// must then be a traffic.TurnSource).
	Conversation Conversation
	// Trace, when set, gives each record its trace context before the request is sent, so
	// the client sends a traceparent header; nil sends none.
	Trace TraceStarter
	// Secrets are replaced by Redacted in every record's error text before the record is
	// logged or observed (see TargetSecrets): an error body that echoes the request's
	// credentials must not carry them to the log, the landing page or a trace exporter.
	Secrets []string
}

// Conversation configures multi-turn sessions: each request the pacer releases (or each
// closed-loop slot) sends Turns requests one after another, turn k carrying every earlier
// message and the server's real answers, ThinkTime apart. A session holds one in-flight slot
// from its first turn to its last; a failed turn ends it.
type Conversation struct {
	Turns     int
	ThinkTime time.Duration
}

// Runner is the run loop of one target. It runs the plan's phases in turn: an open-loop phase
// releases each request when the pacer says it is due and drops (and counts) what the in-flight
// cap refuses; a closed-loop phase keeps its concurrency in flight, sending a new request when
// one finishes. Every finished record goes to the gate and then the observer.
type Runner struct {
	cfg      RunnerConfig
	inFlight atomic.Int64
	lastWarn atomic.Int64 // unix nanos of the last warn-level failure log
	// reportMu orders what the gate's events tell the observer: an opening decided before a
	// Rearm must not be reported after the Rearm's closing.
	reportMu sync.Mutex
	records  sync.Pool
	wg       sync.WaitGroup
	redact   redactor
}

// NewRunner returns a runner; Run starts it.
func NewRunner(cfg RunnerConfig) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxInFlight < 1 {
		cfg.MaxInFlight = 1
	}
	if _, ok := cfg.Source.(traffic.TurnSource); !ok {
		cfg.Conversation.Turns = 0 // a source without turns sends single requests
	}
	if len(cfg.Plan.Phases) == 0 && cfg.Pacer != nil {
		cfg.Plan = traffic.Plan{Phases: []traffic.Phase{traffic.PacerPhase(cfg.Pacer)}}
	}
	r := &Runner{cfg: cfg, redact: newRedactor(cfg.Secrets)}
	r.records.New = func() any { return &Record{Gaps: make([]time.Duration, 0, 64), GapTokens: make([]int32, 0, 64)} }
	cfg.Gate.SetRearmHook(func(reason string) {
		r.reportMu.Lock()
		defer r.reportMu.Unlock()
		cfg.Logger.Info("warmup gate re-armed", "reason", reason)
		r.emit(Event{Kind: EventWarmup})
	})
	return r
}

// InFlight returns the number of requests started and not finished.
func (r *Runner) InFlight() int { return int(r.inFlight.Load()) }

func (r *Runner) emit(ev Event) {
	ev.Target = r.cfg.Target
	r.cfg.Observer.Observe(ev)
}

// Run sends requests until ctx is done or the plan ends, then waits for the requests in
// flight (which ctx cancels) before it returns.
func (r *Runner) Run(ctx context.Context) {
	defer r.wg.Wait()
	workers := &openWorkers{r: r, jobs: make(chan openJob), stop: make(chan struct{})}
	defer close(workers.stop) // before the Wait: idle workers end
	r.emit(Event{Kind: EventWarmup})
	r.report(r.cfg.Gate.Tick())

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	plan := r.cfg.Plan
	if len(plan.Phases) == 0 {
		return
	}
	start := time.Now()
	var (
		n      uint64        // sequence number of the next request, across phases
		offset time.Duration // start of the current phase, from start
	)
	for cycle := uint64(0); ; cycle++ {
		for i, ph := range plan.Phases {
			if plan.Staged {
				r.emit(Event{Kind: EventStage, Value: float64(i)})
			}
			r.emit(Event{Kind: EventTargetRate, Value: ph.Rate})
			r.emit(Event{Kind: EventTargetConcurrency, Value: float64(ph.Concurrency)})
			var more bool
			if ph.ClosedLoop() {
				n, more = r.closedLoop(ctx, timer, start.Add(offset), ph, i, n)
			} else {
				n, more = r.openLoop(ctx, timer, workers, start.Add(offset), ph, i, cycle, n)
			}
			if !more || ph.Duration <= 0 {
				return
			}
			offset += ph.Duration
		}
		if !plan.Loop {
			return
		}
	}
}

// sleepUntil waits until t, re-evaluating a closed gate at least every gateTickInterval (it
// may open on time alone). It reports false when ctx ended first.
func (r *Runner) sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	for {
		wait := time.Until(t)
		if wait <= 0 {
			return ctx.Err() == nil
		}
		if open, _ := r.cfg.Gate.IsOpen(); !open && wait > gateTickInterval {
			wait = gateTickInterval
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
		r.report(r.cfg.Gate.Tick())
	}
}

// openLoop runs one open-loop phase that starts at phaseStart. It returns the next sequence
// number and whether the run goes on (false when ctx ended or an open-ended schedule ran out).
func (r *Runner) openLoop(ctx context.Context, timer *time.Timer, workers *openWorkers, phaseStart time.Time, ph traffic.Phase, stage int, cycle, n uint64) (uint64, bool) {
	p := ph.Arrivals(cycle)
	lastRate := ph.Rate
	for i := uint64(0); ; i++ {
		at, ok := p.Next(i)
		if !ok || (ph.Duration > 0 && at >= ph.Duration) {
			if ph.Duration <= 0 {
				return n, false
			}
			return n, r.sleepUntil(ctx, timer, phaseStart.Add(ph.Duration))
		}
		due := phaseStart.Add(at)
		if !r.sleepUntil(ctx, timer, due) {
			return n, false
		}
		if rate := p.Rate(at); rate != lastRate {
			lastRate = rate
			r.emit(Event{Kind: EventTargetRate, Value: rate})
		}
		if r.inFlight.Load() >= int64(r.cfg.MaxInFlight) {
			r.emit(Event{Kind: EventRequestDropped, Stage: stage})
			n++
			continue
		}
		r.inFlight.Add(1)
		workers.dispatch(ctx, openJob{n: n, stage: stage, due: due})
		n++
	}
}

// closedLoop runs one closed-loop phase that starts at phaseStart: ph.Concurrency workers each
// send a request, and the next the moment it finishes, until the phase ends. A worker holds its
// in-flight slot between its requests, so InFlight reads exactly the concurrency. Requests still
// in flight when the phase ends finish on their own (and are counted); the next phase starts on
// schedule.
func (r *Runner) closedLoop(ctx context.Context, timer *time.Timer, phaseStart time.Time, ph traffic.Phase, stage int, n uint64) (uint64, bool) {
	if !r.sleepUntil(ctx, timer, phaseStart) {
		return n, false
	}
	var seq atomic.Uint64
	seq.Store(n)
	phaseDone := make(chan struct{})
	for range ph.Concurrency {
		r.inFlight.Add(1)
		r.wg.Add(1)
		go r.worker(ctx, &seq, stage, phaseDone)
	}
	var end <-chan time.Time
	if ph.Duration > 0 {
		endTimer := time.NewTimer(time.Until(phaseStart.Add(ph.Duration)))
		defer endTimer.Stop()
		end = endTimer.C
	}
	tick := time.NewTicker(gateTickInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			close(phaseDone)
			return seq.Load(), false
		case <-end:
			close(phaseDone)
			return seq.Load(), true
		case <-tick.C:
			r.report(r.cfg.Gate.Tick())
		}
	}
}

// worker is one closed-loop slot; it runs on its own goroutine, owned by Run through r.wg, and
// returns once phaseDone is closed and its request finished.
func (r *Runner) worker(ctx context.Context, seq *atomic.Uint64, stage int, phaseDone <-chan struct{}) {
	defer r.wg.Done()
	defer r.inFlight.Add(-1)
	for {
		select {
		case <-phaseDone:
			return
		default:
		}
		n := seq.Add(1) - 1
		req := r.cfg.Source.Next(n)
		start, ok := r.session(ctx, n, stage, time.Now(), req)
		if !ok {
			// A dead server fails at once: pause the slot rather than flood it.
			if pause := time.Until(start.Add(closedLoopFailurePause)); pause > 0 {
				t := time.NewTimer(pause)
				select {
				case <-t.C:
				case <-ctx.Done():
				case <-phaseDone:
				}
				t.Stop()
			}
		}
	}
}

// openJob is one open-loop request handed to a worker. The worker builds the request from the
// source: a long prompt takes tens of microseconds, which on the pacer's goroutine would make
// every request of a burst (a trace's, a Poisson cluster's) wait for the prompts before it;
// on the workers they are built side by side. Sources are safe for concurrent use (closed-loop
// workers call them so too) and depend on n alone, so the requests do not change.
type openJob struct {
	n     uint64
	stage int
	due   time.Time
}

// openWorkers runs open-loop requests on goroutines kept from one request to the next, as a
// plain load generator's workers are: a goroutine started per request grows its stack anew
// through net/http every time (copying it at each step), which cost a few percent of the
// client's CPU at 500 req/s. A request goes to an idle worker if one is waiting, else to a new
// one; workers end after openWorkerIdle without work, or when Run ends. They are owned by Run
// through r.wg.
type openWorkers struct {
	r    *Runner
	jobs chan openJob  // unbuffered: a send succeeds only into a waiting worker
	stop chan struct{} // closed when Run returns
}

// dispatch starts j on an idle worker or a new one; the caller counted it in flight.
func (w *openWorkers) dispatch(ctx context.Context, j openJob) {
	select {
	case w.jobs <- j:
	default:
		w.r.wg.Add(1)
		go w.work(ctx, j)
	}
}

// work sends j, then every request handed to it, until it idles out or Run ends.
func (w *openWorkers) work(ctx context.Context, j openJob) {
	defer w.r.wg.Done()
	idle := time.NewTimer(openWorkerIdle)
	defer idle.Stop()
	for {
		w.r.session(ctx, j.n, j.stage, j.due, w.r.cfg.Source.Next(j.n))
		w.r.inFlight.Add(-1)
		idle.Reset(openWorkerIdle)
		select {
		case j = <-w.jobs:
		case <-idle.C:
			return
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// session sends request n, or with a conversation its whole session; it returns the first
// request's t0 and whether every request succeeded.
func (r *Runner) session(ctx context.Context, n uint64, stage int, due time.Time, req traffic.Request) (time.Time, bool) {
	c := r.cfg.Conversation
	if c.Turns < 2 {
		start, ok, _ := r.send(ctx, n, stage, due, req, 0)
		return start, ok
	}
	src := r.cfg.Source.(traffic.TurnSource) // checked by NewRunner
	var (
		history []traffic.Message
		first   time.Time
	)
	for k := range c.Turns {
		if k > 0 {
			if c.ThinkTime > 0 {
				t := time.NewTimer(c.ThinkTime)
				select {
				case <-ctx.Done():
					t.Stop()
					return first, false
				case <-t.C:
				}
			}
			due = time.Now()
			req = src.Turn(n, k)
			// The source knows this turn's length, not the history's.
			req.PromptTokens = 0
		}
		if len(req.Messages) > 0 {
			history = append(history, req.Messages...)
		} else {
			history = append(history, traffic.Message{Role: "user", Content: req.Prompt})
		}
		req.Messages = history
		start, ok, answer := r.send(ctx, n, stage, due, req, k+1)
		if k == 0 {
			first = start
		}
		if !ok {
			return first, false
		}
		history = append(history, traffic.Message{Role: "assistant", Content: answer})
	}
	return first, true
}

// send sends one request and reports it; it returns the request's t0, whether it succeeded,
// and in a conversation (turn > 0) the generated text.
func (r *Runner) send(ctx context.Context, n uint64, stage int, due time.Time, req traffic.Request, turn int) (time.Time, bool, string) {
	rec := r.records.Get().(*Record)
	rec.Reset()
	rec.Target, rec.Seq, rec.Stage, rec.Intended, rec.Adapter = r.cfg.Target, n, stage, due, req.Adapter
	rec.Turn, rec.CaptureText = turn, turn > 0
	rec.RequestedPromptTokens = req.PromptTokens

	if r.cfg.Trace != nil {
		r.cfg.Trace(rec)
	}
	r.emit(Event{Kind: EventRequestStarted})
	gen := r.cfg.Gate.Generation()
	r.cfg.Client.Do(ctx, req, rec)
	rec.Err = r.redact.error(rec.Err)

	warmup, ev := r.cfg.Gate.Finish(rec, gen)
	rec.Warmup = warmup
	r.report(ev)
	ok := rec.Result == ResultSuccess
	if !ok {
		r.logFailure(rec)
	}
	start := rec.Start
	if start.IsZero() {
		start = due
	}
	var answer string
	if turn > 0 {
		answer = string(rec.Text)
	}
	r.emit(Event{Kind: EventRequestFinished, Record: rec})
	r.records.Put(rec)
	return start, ok, answer
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
	if ev.ColdStart {
		r.cfg.Logger.Info("cold start measured", "ttft", ev.ColdStartTTF)
		r.emit(Event{Kind: EventColdStart, Duration: ev.ColdStartTTF})
	}
	if ev.Opened {
		if ev.Forced {
			r.cfg.Logger.Warn("warmup gate forced open at max_duration; measuring anyway")
		} else {
			r.cfg.Logger.Info("warmup gate opened; measuring")
		}
		r.emit(Event{Kind: EventWarmup, Complete: true, Forced: ev.Forced})
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
