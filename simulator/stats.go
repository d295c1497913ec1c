package simulator

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Outcome is how a request ended, as the server saw it.
type Outcome string

// Outcomes of a request.
const (
	// OutcomeSuccess: the response was complete (finish_reason, and [DONE] for streams).
	OutcomeSuccess Outcome = "success"
	// OutcomeCanceled: the client went away (or the server closed) before the end.
	OutcomeCanceled Outcome = "canceled"
	// OutcomeTruncated: an injected truncation cut the response short.
	OutcomeTruncated Outcome = "truncated"
	// OutcomeError500: an injected 500 answered the request.
	OutcomeError500 Outcome = "error_500"
	// OutcomeError429: an injected 429 answered the request.
	OutcomeError429 Outcome = "error_429"
	// OutcomeBadRequest: the request was invalid (400).
	OutcomeBadRequest Outcome = "bad_request"
	// OutcomeNotFound: the request named an unknown model (404).
	OutcomeNotFound Outcome = "not_found"
	// OutcomeUnavailable: the request came after Close (503).
	OutcomeUnavailable Outcome = "unavailable"
	// OutcomeAborted: an injected finish_reason abort ended the stream.
	OutcomeAborted Outcome = "aborted"
	// OutcomeEmpty: an injected empty stream (only [DONE]) answered the request.
	OutcomeEmpty Outcome = "empty"
	// OutcomeReset: an injected connection drop, before the headers or mid-stream.
	OutcomeReset Outcome = "reset"
)

// RequestStats is the server-side ground truth of one request. Times are taken with the
// monotonic clock right after each flush, so they are what a client on loopback should
// measure, minus the network.
type RequestStats struct {
	// Chat is true for /v1/chat/completions, false for /v1/completions.
	Chat bool
	// Stream is true for streamed responses.
	Stream bool
	// Outcome is how the request ended.
	Outcome Outcome
	// FinishReason is "stop" or "length" for successes, "" otherwise.
	FinishReason string
	// PromptTokens and OutputTokens count tokens; OutputTokens is what was actually sent.
	PromptTokens, OutputTokens int
	// Queue is the wait for admission, from the request's arrival.
	Queue time.Duration
	// TTFT is from the request's arrival to the flush of its first token (for non-streaming
	// responses, to the moment the first token was generated); 0 when no token was produced.
	TTFT time.Duration
	// Gaps holds every gap between consecutive token flushes (len = OutputTokens-1 with one
	// token per chunk, one per chunk after the first with ChunkTokens > 1), stalls included.
	Gaps []time.Duration
	// E2E is from arrival to the end of the response.
	E2E time.Duration
	// Stalled and Malformed say which in-stream faults were injected.
	Stalled, Malformed bool
}

// Stats is a snapshot of the server's ground truth.
type Stats struct {
	// Requests are the most recent finished requests (at most Config.StatsSize), oldest first.
	Requests []RequestStats
	// Outcomes counts every request finished since New, by outcome.
	Outcomes map[Outcome]uint64
}

// TTFTs returns the TTFT of every successful streamed request in the snapshot, in order:
// the population a client-side TTFT histogram of successes should match.
func (s Stats) TTFTs() []time.Duration {
	var out []time.Duration
	for i := range s.Requests {
		if r := &s.Requests[i]; r.Stream && r.Outcome == OutcomeSuccess {
			out = append(out, r.TTFT)
		}
	}
	return out
}

// Gaps returns every inter-token gap of the successful streamed requests in the snapshot.
func (s Stats) Gaps() []time.Duration {
	var out []time.Duration
	for i := range s.Requests {
		if r := &s.Requests[i]; r.Stream && r.Outcome == OutcomeSuccess {
			out = append(out, r.Gaps...)
		}
	}
	return out
}

// Median returns the median of d (the mean of the two middle values for an even count), or 0
// for an empty slice. d is not modified.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// statsRing keeps the last size requests and counts all outcomes.
type statsRing struct {
	mu       sync.Mutex
	buf      []RequestStats
	next     int
	full     bool
	outcomes map[Outcome]uint64
}

func newStatsRing(size int) *statsRing {
	return &statsRing{buf: make([]RequestStats, size), outcomes: map[Outcome]uint64{}}
}

func (r *statsRing) record(st *RequestStats) {
	r.mu.Lock()
	r.outcomes[st.Outcome]++
	if len(r.buf) > 0 {
		r.buf[r.next] = *st
		r.next++
		if r.next == len(r.buf) {
			r.next, r.full = 0, true
		}
	}
	r.mu.Unlock()
}

func (r *statsRing) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var reqs []RequestStats
	if r.full {
		reqs = append(reqs, r.buf[r.next:]...)
	}
	reqs = append(reqs, r.buf[:r.next]...)
	// Gaps slices are never written after a request is recorded, so sharing them is safe.
	return Stats{Requests: reqs, Outcomes: maps.Clone(r.outcomes)}
}

// Stats returns the ground truth of the most recent requests and the outcome counts.
func (s *Server) Stats() Stats { return s.stats.snapshot() }
