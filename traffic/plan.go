package traffic

import (
	"fmt"
	"math"
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
	// shard and shards select every shards-th arrival from the shard-th on (Shard).
	shard, shards uint64
}

// ClosedLoop reports whether the phase keeps a fixed number of requests in flight.
func (p Phase) ClosedLoop() bool { return p.Concurrency > 0 }

// Arrivals returns the open-loop pacer of the phase in the given cycle of a looping plan
// (cycle 0 is the first pass), with offsets from the phase start. Random kinds draw fresh gaps
// in every cycle (as NewStages does), so a Poisson stage does not replay one pattern every
// cycle, while one (seed, cycle) always gives the same arrivals. It returns an ended pacer for
// a closed-loop phase.
func (p Phase) Arrivals(cycle uint64) Pacer {
	var arr Pacer
	switch {
	case p.ClosedLoop():
		return ended{}
	case p.pacer != nil:
		arr = p.pacer
	default:
		arr = stagePacer(p.stage, cycle)
	}
	if p.shards > 1 {
		return shardPacer{p: arr, shard: p.shard, shards: p.shards}
	}
	return arr
}

// Shard returns the part of plan that shard i of n sends, so that n load generators together
// send exactly the plan: each open-loop phase keeps every n-th arrival of the whole phase,
// from the i-th on (the union over shards is the unsharded schedule, arrival for arrival, and
// no two shards share one), and each closed-loop phase keeps its share of the concurrency
// (the remainder goes to the lowest shards). It fails when a closed-loop phase has fewer
// requests in flight than there are shards.
func Shard(plan Plan, i, n int) (Plan, error) {
	if n < 1 || i < 0 || i >= n {
		return Plan{}, fmt.Errorf("traffic: shard %d/%d: want 0 ≤ index < count", i, n)
	}
	out := plan
	out.Phases = make([]Phase, len(plan.Phases))
	for k, ph := range plan.Phases {
		if ph.ClosedLoop() {
			if ph.Concurrency < n {
				return Plan{}, fmt.Errorf("traffic: stage %d: concurrency %d cannot be split over %d shards", k, ph.Concurrency, n)
			}
			ph.Concurrency = ph.Concurrency / n
			if i < plan.Phases[k].Concurrency%n {
				ph.Concurrency++
			}
		} else {
			ph.Rate /= float64(n)
			ph.shard, ph.shards = uint64(i), uint64(n)
		}
		out.Phases[k] = ph
	}
	return out, nil
}

// shardPacer is every shards-th arrival of p, from the shard-th on.
type shardPacer struct {
	p             Pacer
	shard, shards uint64
}

func (s shardPacer) Next(n uint64) (time.Duration, bool) {
	if n > (math.MaxUint64-s.shard)/s.shards {
		return 0, false
	}
	return s.p.Next(n*s.shards + s.shard)
}

func (s shardPacer) Rate(d time.Duration) float64 { return s.p.Rate(d) / float64(s.shards) }

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

// ShardSource returns the requests shard i of n sends: request k of the shard is request
// k·n + i of src, so shards never send the same prompt (or cache-busting nonce).
func ShardSource(src Source, i, n int) Source {
	if n <= 1 {
		return src
	}
	return shardSource{src: src, shard: uint64(i), shards: uint64(n)}
}

type shardSource struct {
	src           Source
	shard, shards uint64
}

func (s shardSource) Next(k uint64) Request { return s.src.Next(k*s.shards + s.shard) }
