// Package prober sends requests and times them: one file per API flavour behind the Client
// interface, SSE reading, the timing record of one request, error classes, the warmup gate and
// the run loop that joins a pacer, a source and a client. It hands each finished record to an
// Observer and never imports the collector.
package prober

import (
	"time"
)

// Result classes: the `result` label of finished requests.
const (
	ResultSuccess         = "success"
	ResultHTTP4xx         = "http_4xx"
	ResultHTTP429         = "http_429"
	ResultHTTP5xx         = "http_5xx"
	ResultTimeout         = "timeout"
	ResultConnection      = "connection"
	ResultStreamTruncated = "stream_truncated"
	ResultProtocol        = "protocol"
	ResultCanceled        = "canceled"
)

// Results lists every result class, success first, so collectors can pre-create series.
var Results = []string{
	ResultSuccess, ResultHTTP4xx, ResultHTTP429, ResultHTTP5xx, ResultTimeout,
	ResultConnection, ResultStreamTruncated, ResultProtocol, ResultCanceled,
}

// Token-count sources: the `source` label of token counters.
const (
	// SourceUsage means the count came from the server's usage object.
	SourceUsage = "usage"
	// SourceChunks means the output count is the number of token chunks seen.
	SourceChunks = "chunks"
	// SourceEstimate means the prompt count is the request source's own estimate (the server
	// sent no usage).
	SourceEstimate = "estimate"
	// SourceRequested counts the prompt tokens the request source asked for, whatever the
	// server reported, so requested and reported (usage) can be compared.
	SourceRequested = "requested"
)

// SLO holds a target's latency objectives; zero means not set.
type SLO struct {
	TTFT, TPOT, E2E time.Duration
}

// Met reports whether a successful record meets every objective that is set. TPOT only
// applies to records with at least two output tokens.
func (s SLO) Met(r *Record) bool {
	if r.Result != ResultSuccess {
		return false
	}
	if s.TTFT > 0 {
		ttft, ok := r.TTFT()
		if !ok || ttft > s.TTFT {
			return false
		}
	}
	if s.TPOT > 0 {
		if tpot, ok := r.TPOT(); ok && tpot > s.TPOT {
			return false
		}
	}
	if s.E2E > 0 && r.End > s.E2E {
		return false
	}
	return true
}

// Thresholds returns the objectives that are set, in seconds, for use as bucket boundaries.
func (s SLO) Thresholds() (ttft, tpot, e2e []float64) {
	if s.TTFT > 0 {
		ttft = []float64{s.TTFT.Seconds()}
	}
	if s.TPOT > 0 {
		tpot = []float64{s.TPOT.Seconds()}
	}
	if s.E2E > 0 {
		e2e = []float64{s.E2E.Seconds()}
	}
	return ttft, tpot, e2e
}

// TargetInfo identifies a target in everything the prober reports. It is immutable and shared
// by all records of one target generation (a reload that changes the target makes a new one).
type TargetInfo struct {
	// Name is the configured target name (label `target`).
	Name string
	// Model is the model name (label `model`).
	Model string
	// SLO holds the objectives used for goodput and bucket boundaries.
	SLO SLO
	// Adapters are the LoRA adapters the target's traffic is split over ("" for the base
	// model), so that collectors create their series before the first request; nil when the
	// traffic is not split.
	Adapters []string
	// TraceRowsSkipped counts the malformed trace rows the target's replay left out
	// (skip_invalid); 0 without a trace.
	TraceRowsSkipped int
}

// Record is the timing record of one request. Offsets are from Start (t0) and taken with the
// monotonic clock.
type Record struct {
	// Target is who the request was for.
	Target *TargetInfo
	// Adapter is the LoRA adapter addressed, "" for the base model (label `adapter`).
	Adapter string
	// Seq is the request's sequence number in its schedule.
	Seq uint64
	// Intended is when the pacer meant the request to go.
	Intended time.Time
	// Start is t0, the moment the request was handed to the transport to be written.
	Start time.Time
	// FirstToken and LastToken are the offsets of the first and last token chunks; valid
	// when Chunks > 0.
	FirstToken, LastToken time.Duration
	// End is the offset of the end of the stream (or of the failure).
	End time.Duration
	// Gaps holds each gap between consecutive token chunks (len = Chunks-1).
	Gaps []time.Duration
	// Chunks counts token chunks: SSE events carrying generated text.
	Chunks int
	// OutputTokens is N; OutputSource says where it came from (usage or chunks).
	OutputTokens int
	OutputSource string
	// PromptTokens is the prompt length; PromptSource is usage or estimate ("" if unknown).
	PromptTokens int
	PromptSource string
	// RequestedPromptTokens is the prompt length the request source asked for (its own
	// count: words, or a tokenizer's tokens), whatever the server reports; 0 if unknown. Set
	// beside the server's PromptTokens it shows the drift of the source's approximation.
	RequestedPromptTokens int
	// Status is the HTTP status code, 0 if none was received.
	Status int
	// Result is success or an error class.
	Result string
	// Err is the detail behind a failed Result, for logs only; it never becomes a label.
	Err error
	// Warmup is set when the request finished while the warmup gate was closed.
	Warmup bool
	// Turn is the request's turn in a multi-turn conversation, from 1; 0 outside one.
	Turn int
	// CaptureText asks the client to keep the generated text in Text (the run loop sets it
	// for conversations, whose next turn resends the answer).
	CaptureText bool
	// Text is the generated text, when CaptureText was set.
	Text []byte
}

// TTFT returns t(first token chunk) − t0, if there was a token chunk.
func (r *Record) TTFT() (time.Duration, bool) {
	if r.Chunks == 0 {
		return 0, false
	}
	return r.FirstToken, true
}

// TPOT returns (t(last token chunk) − t(first token chunk)) / (N − 1) for N ≥ 2. It needs two
// token chunks: when every token came in one chunk (a server streaming with a large interval,
// or a short output) the time between tokens was not observed, and 0 would flatter the server.
func (r *Record) TPOT() (time.Duration, bool) {
	if r.OutputTokens < 2 || r.Chunks < 2 {
		return 0, false
	}
	return (r.LastToken - r.FirstToken) / time.Duration(r.OutputTokens-1), true
}

// ScheduleDelay returns t0 − the intended time (never negative).
func (r *Record) ScheduleDelay() time.Duration {
	if d := r.Start.Sub(r.Intended); d > 0 {
		return d
	}
	return 0
}

// Reset clears the record for reuse, keeping the Gaps backing array.
func (r *Record) Reset() {
	gaps, text := r.Gaps[:0], r.Text[:0]
	*r = Record{Gaps: gaps, Text: text}
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventRequestStarted: a request was handed to the client.
	EventRequestStarted EventKind = iota + 1
	// EventRequestFinished: a started request finished; Record holds it.
	EventRequestFinished
	// EventRequestDropped: the pacer released a request that the in-flight cap refused.
	EventRequestDropped
	// EventWarmup: the gate opened (Complete, and Forced when max_duration forced it) or
	// re-armed (Complete false).
	EventWarmup
	// EventColdStart: Duration is the TTFT of the first request after start or a re-arm.
	EventColdStart
	// EventTargetRate: Value is the open-loop rate the pacer aims at now (req/s), 0 in a
	// closed-loop phase.
	EventTargetRate
	// EventTargetConcurrency: Value is the number of requests a closed-loop phase keeps in
	// flight, 0 in an open-loop phase.
	EventTargetConcurrency
	// EventStage: Value is the index of the configured stage that is running now.
	EventStage
)

// Event is one thing the prober saw. It is passed by value; only Record points into memory
// the prober owns.
type Event struct {
	// Kind says what happened and which fields are set.
	Kind EventKind
	// Target is who it happened to.
	Target *TargetInfo
	// Record is the finished request (EventRequestFinished only). The prober owns it and
	// reuses it once Observe returns: an observer that keeps anything copies it first
	// (Record.CopyTo).
	Record *Record
	// Value carries the rate, concurrency or stage index.
	Value float64
	// Duration carries the cold-start TTFT.
	Duration time.Duration
	// Complete and Forced describe an EventWarmup.
	Complete, Forced bool
}

// Observer receives what the prober sees, one event at a time. Observe is called from the
// run loop and from request goroutines, concurrently: it must be safe for concurrent use and
// must not block, since the run loop paces requests between calls. Collectors that only
// update counters observe directly; anything that may be slow (a report builder, an exporter,
// a test that sleeps) is wrapped in a Queue, which hands events on from a goroutine of its
// own. A Record is valid only until Observe returns (see Event.Record).
type Observer interface {
	Observe(ev Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ev Event)

// Observe implements Observer.
func (f ObserverFunc) Observe(ev Event) { f(ev) }

// CopyTo copies r into dst, reusing dst's Gaps backing array, so that dst stays valid after
// the prober reuses r.
func (r *Record) CopyTo(dst *Record) {
	gaps := append(dst.Gaps[:0], r.Gaps...)
	text := append(dst.Text[:0], r.Text...)
	*dst = *r
	dst.Gaps, dst.Text = gaps, text
}
