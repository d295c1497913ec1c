package server

// restartState decides, scrape by scrape, whether the model server restarted. Evidence, in the
// order it is trusted:
//
//  1. process_start_time_seconds changed: certain. When the server reports it before and after,
//     an unchanged value also vetoes the weaker signal 3.
//  2. A normalised token counter went down: counters only reset with the process (engines that
//     lack a start time, such as TGI and llama.cpp, are covered by this).
//  3. The server refused connections or failed with HTTP errors and then answered again: a
//     restart is the usual cause, but a timeout alone is not taken as one, since a busy server
//     answers /metrics slowly without restarting.
//
// At most one restart is reported per scrape. The first successful scrape only sets the
// baseline: the warmup gate is closed at start anyway.
type restartState struct {
	threshold int // failures that make a recovery count (signal 3)

	baseline      bool
	startTime     float64
	haveStartTime bool
	counters      map[string]float64 // as of the last successful scrape
	spare         map[string]float64 // recycled for the next scrape's counters
	failures      int                // connection and HTTP-status failures since the last success
}

// startTimeTolerance absorbs float formatting of one and the same start time; two processes
// cannot start within a millisecond of each other.
const startTimeTolerance = 1e-3

// scratch returns an empty map for the next scrape's counters.
func (r *restartState) scratch() map[string]float64 {
	if r.spare == nil {
		r.spare = map[string]float64{}
	}
	clear(r.spare)
	return r.spare
}

// failed records a failed scrape.
func (r *restartState) failed(reason string) {
	if reason == ReasonConnection || reason == ReasonHTTPStatus {
		r.failures++
	}
}

// succeeded records a successful scrape and returns the restart reason, or "" when none.
func (r *restartState) succeeded(startTime float64, haveStartTime bool, counters map[string]float64) string {
	reason := ""
	if r.baseline {
		bothStartTimes := haveStartTime && r.haveStartTime
		switch {
		case bothStartTimes && abs(startTime-r.startTime) > startTimeTolerance:
			reason = RestartProcessStartTime
		case counterWentDown(r.counters, counters):
			reason = RestartCounterReset
		case r.threshold > 0 && r.failures >= r.threshold && !bothStartTimes:
			reason = RestartRecovery
		}
	}
	r.baseline = true
	r.startTime, r.haveStartTime = startTime, haveStartTime
	r.counters, r.spare = counters, r.counters
	r.failures = 0
	return reason
}

func counterWentDown(before, after map[string]float64) bool {
	for k, v := range after {
		if prev, ok := before[k]; ok && v < prev {
			return true
		}
	}
	return false
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// clone copies the state, for a scraper that takes over from another.
func (r *restartState) clone() restartState {
	c := *r
	c.counters = make(map[string]float64, len(r.counters))
	for k, v := range r.counters {
		c.counters[k] = v
	}
	c.spare = nil
	return c
}
