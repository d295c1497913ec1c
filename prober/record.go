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
)

// SLO holds a target's latency objectives; zero means not set.
type SLO struct {
	TTFT, TPOT, E2E time.Duration
	// TargetRatio, Window and RegressionFactor are the objective the alert rules hold the
	// target to (config's slo block). The prober does not use them; the collector exposes them
	// as series so one static rule file serves every target. Zero means not set (not exposed).
	TargetRatio      float64
	Window           time.Duration
	RegressionFactor float64
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
	// Status is the HTTP status code, 0 if none was received.
	Status int
	// Result is success or an error class.
	Result string
	// Err is the detail behind a failed Result, for logs only; it never becomes a label.
	Err error
	// Warmup is set when the request finished while the warmup gate was closed.
	Warmup bool
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
	gaps := r.Gaps[:0]
	*r = Record{Gaps: gaps}
}

// Observer receives what the prober sees. Implementations must be safe for concurrent use and
// must not keep a *Record after RequestFinished returns (records are reused).
type Observer interface {
	// RequestStarted is called when a request is handed to the client.
	RequestStarted(t *TargetInfo)
	// RequestFinished is called once per started request with its complete record.
	RequestFinished(r *Record)
	// RequestDropped is called when the pacer released a request the in-flight cap refused.
	RequestDropped(t *TargetInfo)
	// WarmupChanged is called when the gate opens (forced says it was forced by max_duration)
	// or re-arms (complete=false).
	WarmupChanged(t *TargetInfo, complete, forced bool)
	// ColdStart reports the TTFT of the first request after start or after the gate re-armed.
	ColdStart(t *TargetInfo, ttft time.Duration)
	// TargetRate reports the rate the pacer aims at now, in requests per second.
	TargetRate(t *TargetInfo, rps float64)
}
