package traffic

import (
	"time"
)

// Plan is what a target's traffic block describes: phases run one after another from the
// schedule start, each either open loop (arrivals from a pacer at a rate) or closed loop (a
// fixed number of requests kept in flight, a new one sent when one finishes). A plan with
// Loop repeats its phases forever (the daemon); without it the plan ends after the last phase
// (a one-shot run). A plain pacer is a plan of one open-ended phase.
//
// Phase boundaries are fixed offsets from the schedule start (the sum of the durations
// before), never moved by how late the previous phase ran, so a looping daily ramp does not
// drift.
type Plan struct {
	// Phases run in order; only a plan of one phase that does not loop may have a phase of
	// zero duration (open-ended).
	Phases []Phase
	// Loop repeats the phases forever.
	Loop bool
	// Staged says the phases are configured stages, whose index the run loop reports.
	Staged bool
	// Replay is the trace a trace plan replays, nil for other plans; the engine builds the
	// request source from it, so sizes come from the same rows as the arrivals.
	Replay *Replay
}

// Phase is one step of a Plan.
type Phase struct {
	// Duration is how long the phase lasts; 0 means until the run is stopped.
	Duration time.Duration
	// Rate is the open-loop rate the phase aims at (requests per second); 0 for closed loop.
	Rate float64
	// Concurrency, when > 0, makes the phase closed loop with this many requests in flight.
	Concurrency int

	stage Stage // the arrival process of an open-loop phase
	pacer Pacer // set by PacerPhase: used as is in every cycle
}

// ClosedLoop reports whether the phase keeps a fixed number of requests in flight.
func (p Phase) ClosedLoop() bool { return p.Concurrency > 0 }

// Arrivals returns the open-loop pacer of the phase in the given cycle of a looping plan
// (cycle 0 is the first pass), with offsets from the phase start. Random kinds draw fresh gaps
// in every cycle (as NewStages does), so a Poisson stage does not replay one pattern every
// cycle, while one (seed, cycle) always gives the same arrivals. It returns an ended pacer for
// a closed-loop phase.
func (p Phase) Arrivals(cycle uint64) Pacer {
	switch {
	case p.ClosedLoop():
		return ended{}
	case p.pacer != nil:
		return p.pacer
	}
	return stagePacer(p.stage, cycle)
}

// OpenPhase returns an open-loop phase lasting d (0 = open-ended) whose arrivals follow kind
// (constant, poisson or gamma with coefficient of variation cv) at rate, drawn from seed.
func OpenPhase(d time.Duration, kind string, rate, cv float64, seed uint64) Phase {
	return Phase{Duration: d, Rate: rate, stage: Stage{Duration: d, Rate: rate, Kind: kind, CV: cv, Seed: seed}}
}

// PacerPhase returns an open-ended, open-loop phase that follows p (e.g. a pacer built in
// code); p's own Rate is what the run loop reports. A plan of such a phase must not loop.
func PacerPhase(p Pacer) Phase {
	return Phase{Rate: p.Rate(0), pacer: p}
}

// ClosedPhase returns a closed-loop phase lasting d (0 = open-ended) with concurrency requests
// in flight.
func ClosedPhase(d time.Duration, concurrency int) Phase {
	return Phase{Duration: d, Concurrency: concurrency}
}

// Length returns the duration of one pass over the phases, 0 when a phase is open-ended.
func (p Plan) Length() time.Duration {
	var total time.Duration
	for _, ph := range p.Phases {
		if ph.Duration <= 0 {
			return 0
		}
		total += ph.Duration
	}
	return total
}
