package traffic

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Stage is one piece of a piecewise schedule: for Duration, requests arrive at Rate following
// Kind. A stage with Rate 0 is a pause.
type Stage struct {
	// Duration is how long the stage lasts; stages with a zero duration are skipped.
	Duration time.Duration
	// Rate is the stage's (mean) request rate in requests per second; 0 pauses.
	Rate float64
	// Kind is the arrival process within the stage: "constant" (also when empty), "poisson"
	// or "gamma".
	Kind string
	// CV is the coefficient of variation of the gaps for Kind "gamma"; other kinds ignore it.
	CV float64
	// Seed drives the stage's random arrivals. Give stages distinct seeds, e.g.
	// SubSeed(base, target, "stage", strconv.Itoa(i)); equal seeds give equal gap sequences.
	Seed uint64
}

// ValidateStages reports the first stage that NewStages could not honour, naming it by index.
// NewStages itself never fails: it treats an invalid stage as a pause, so validate first.
func ValidateStages(stages []Stage) error {
	if len(stages) == 0 {
		return errors.New("traffic: stages: need at least one stage")
	}
	var total time.Duration
	for i, s := range stages {
		switch {
		case s.Duration < 0:
			return fmt.Errorf("traffic: stage %d: duration must not be negative, got %v", i, s.Duration)
		case !(s.Rate >= 0) || math.IsInf(s.Rate, 1):
			return fmt.Errorf("traffic: stage %d: rate must be a finite number ≥ 0 of requests per second, got %v", i, s.Rate)
		}
		switch s.Kind {
		case "", KindConstant, KindPoisson:
		case KindGamma:
			if !(s.CV >= 0) || math.IsInf(s.CV, 1) {
				return fmt.Errorf("traffic: stage %d: gamma cv must be a finite number ≥ 0, got %v", i, s.CV)
			}
		default:
			return fmt.Errorf("traffic: stage %d: unknown kind %q (want %q, %q or %q)", i, s.Kind, KindConstant, KindPoisson, KindGamma)
		}
		if s.Duration > math.MaxInt64-total {
			return fmt.Errorf("traffic: stage %d: total duration of the stages overflows", i)
		}
		total += s.Duration
	}
	if total == 0 {
		return errors.New("traffic: stages: total duration must be positive")
	}
	return nil
}

// NewStages returns a piecewise schedule: the stages run one after another, each from its start
// offset (the sum of the durations before it) for its duration. Within a stage, arrivals follow
// the stage's kind and rate as if a fresh pacer started at the stage's start offset: its first
// request is due exactly at the start, and a request that would fall at or after the stage's
// end belongs to no stage (the next stage starts its own arrivals). Request numbers run on
// across stages.
//
// Without loop, Next reports ok=false after the last stage's last request, and Rate is 0 from
// the end on. With loop (daemon mode) the sequence of stages repeats forever; the rate
// schedule repeats exactly, while random stages draw fresh gaps in every cycle (cycle c > 0
// uses a seed derived from the stage's seed and c), so a Poisson stage does not replay the
// same arrival pattern every cycle. A schedule in which no stage can produce a request ends at
// once rather than searching forever.
//
// Rate(d) is the configured rate of the stage that contains offset d (an offset on a boundary
// belongs to the later stage; negative offsets count as the start). Like the other pacers,
// the result is a pure function of (stages, loop, n), with O(1) amortised cost per call for
// increasing n.
func NewStages(stages []Stage, loop bool) Pacer {
	s := &stagesPacer{loop: loop}
	for _, st := range stages {
		if st.Duration <= 0 {
			continue
		}
		if st.Duration > math.MaxInt64-s.length {
			break // the schedule cannot reach later stages within a time.Duration anyway
		}
		if stagePacer(st, 0) == (ended{}) {
			st.Rate = 0 // an invalid stage is a pause, and says so through Rate
		} else {
			s.live = true
		}
		s.length += st.Duration
		s.stages = append(s.stages, st)
		s.ends = append(s.ends, s.length)
	}
	s.reset()
	return s
}

// stagePacer builds the arrival process of one stage in one cycle.
func stagePacer(st Stage, cycle uint64) Pacer {
	seed := st.Seed
	if cycle > 0 {
		seed = mix64(hashIndex(st.Seed^streamCycle, cycle))
	}
	switch st.Kind {
	case "", KindConstant:
		return NewConstant(st.Rate)
	case KindPoisson:
		return NewPoisson(st.Rate, seed)
	case KindGamma:
		return NewGamma(st.Rate, st.CV, seed)
	default:
		return ended{}
	}
}

type stagesPacer struct {
	stages []Stage
	// ends[k] is the end offset of stages[k] within one cycle; length is one cycle's length.
	ends   []time.Duration
	length time.Duration
	loop   bool
	// live is whether any stage can produce a request.
	live bool

	// Cursor: the current stage k of cycle, which starts at offset start and whose first
	// request is number base; p is its pacer, and known of its requests are confirmed to fall
	// inside the stage. done means the schedule has ended.
	cycle uint64
	k     int
	start time.Duration
	base  uint64
	p     Pacer
	known uint64
	done  bool
}

func (s *stagesPacer) reset() {
	s.cycle, s.k, s.start, s.base, s.known = 0, 0, 0, 0, 0
	s.done = !s.live
	if !s.done {
		s.p = stagePacer(s.stages[0], 0)
	}
}

// advance moves the cursor to the next stage, whose first request is number base+count.
func (s *stagesPacer) advance(count uint64) {
	dur := s.stages[s.k].Duration
	if dur > math.MaxInt64-s.start {
		s.done = true
		return
	}
	s.start += dur
	s.base += count
	s.known = 0
	s.k++
	if s.k == len(s.stages) {
		if !s.loop {
			s.done = true
			return
		}
		s.k = 0
		s.cycle++
	}
	s.p = stagePacer(s.stages[s.k], s.cycle)
}

func (s *stagesPacer) Next(n uint64) (time.Duration, bool) {
	if n < s.base {
		s.reset()
	}
	for !s.done {
		i := n - s.base
		dur := s.stages[s.k].Duration
		if i < s.known {
			at, _ := s.p.Next(i)
			return s.start + at, true
		}
		// Walk forward one request at a time from the last confirmed one, so a far-away n
		// never makes a stage pacer generate requests past its stage's end.
		for s.known <= i {
			at, ok := s.p.Next(s.known)
			if !ok || at >= dur || at > math.MaxInt64-s.start {
				break
			}
			s.known++
			if s.known > i {
				return s.start + at, true
			}
		}
		s.advance(s.known)
	}
	return 0, false
}

func (s *stagesPacer) Rate(d time.Duration) float64 {
	if len(s.stages) == 0 {
		return 0
	}
	if d < 0 {
		d = 0
	}
	if d >= s.length {
		if !s.loop {
			return 0
		}
		d %= s.length
	}
	for k, end := range s.ends {
		if d < end {
			return s.stages[k].Rate
		}
	}
	return 0
}
