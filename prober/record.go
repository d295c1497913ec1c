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
	// ResultAborted: the stream ended with a finish_reason of abort or error — the server
	// stopped the generation itself (vLLM sends both), so the answer is not complete.
	ResultAborted = "aborted"
	// ResultEmpty: the stream ended cleanly (finish_reason or [DONE]) without one token
	// chunk, e.g. only "data: [DONE]".
	ResultEmpty = "empty"
)

// Results lists every result class, success first, so collectors can pre-create series.
var Results = []string{
	ResultSuccess, ResultHTTP4xx, ResultHTTP429, ResultHTTP5xx, ResultTimeout,
	ResultConnection, ResultStreamTruncated, ResultProtocol, ResultCanceled,
	ResultAborted, ResultEmpty,
}

// Finish reasons: the `reason` label of inferprobe_finish_reasons_total. Servers send more
// than OpenAI's four (vLLM: abort, error; TGI: eos_token; SGLang: matched stop strings); every
// value outside this set is counted as FinishOther, so the label stays bounded.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
	FinishAbort         = "abort"
	FinishError         = "error"
	FinishOther         = "other"
)

// FinishReasons lists every finish-reason label value, so collectors can pre-create series.
var FinishReasons = []string{
	FinishStop, FinishLength, FinishToolCalls, FinishContentFilter, FinishAbort, FinishError, FinishOther,
}

// NormaliseFinishReason maps a server's finish_reason onto FinishReasons. TGI's eos_token, the
// legacy function_call and Anthropic's and the Responses API's stop and incomplete reasons
// (end_turn, max_tokens, max_output_tokens, tool_use, refusal) are folded into their OpenAI
// names; an empty reason returns "".
func NormaliseFinishReason(s string) string {
	switch s {
	case "":
		return ""
	case FinishStop, "eos_token", "stop_sequence", "end_turn":
		return FinishStop
	case FinishLength, "max_tokens", "max_output_tokens":
		return FinishLength
	case FinishToolCalls, "function_call", "tool_use":
		return FinishToolCalls
	case FinishContentFilter, "refusal":
		return FinishContentFilter
	case FinishAbort, "cancelled", "canceled":
		return FinishAbort
	case FinishError:
		return FinishError
	}
	return FinishOther
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
	// Adapters are the LoRA adapters the target's traffic is split over ("" for the base
	// model), so that collectors create their series before the first request; nil when the
	// traffic is not split.
	Adapters []string
	// TraceRowsSkipped counts the malformed trace rows the target's replay left out
	// (skip_invalid); 0 without a trace.
	TraceRowsSkipped int
	// DatasetRowsSkipped counts the malformed data set entries the target's source left out
	// (request.dataset.skip_invalid); 0 without a data set.
	DatasetRowsSkipped int
	// Unstreamed is a target sending stream: false: its answers come whole, so collectors
	// expose no first-token, per-token or chunk series for it.
	Unstreamed bool
}

// HTTP phases of one request, from net/http/httptrace: the bounded values of the `phase` label
// of inferprobe_http_phase_duration_seconds. A phase that did not happen (no DNS lookup for an
// IP address, no dial or handshake on a reused connection) is not observed.
const (
	// PhaseDNS is DNSStart to DNSDone.
	PhaseDNS = iota
	// PhaseConnect is ConnectStart to ConnectDone (the TCP dial).
	PhaseConnect
	// PhaseTLS is TLSHandshakeStart to TLSHandshakeDone.
	PhaseTLS
	// PhaseRequestWrite is from having a connection (GotConn) to the request fully written.
	PhaseRequestWrite
	// PhaseFirstByte is from the request written to the first response byte: the server's (and
	// any gateway's) time to answer with headers.
	PhaseFirstByte
	// NumPhases is the number of phases.
	NumPhases
)

// PhaseNames are the `phase` label values, indexed by the Phase constants.
var PhaseNames = [NumPhases]string{"dns", "connect", "tls", "request_write", "first_byte"}

// Record is the timing record of one request. Offsets are from Start (t0) and taken with the
// monotonic clock.
type Record struct {
	// Target is who the request was for.
	Target *TargetInfo
	// Adapter is the LoRA adapter addressed, "" for the base model (label `adapter`).
	Adapter string
	// ResponseModel is the model the server said it answered with (the first one a response
	// event named), "" when the protocol's responses do not name it. Never a label.
	ResponseModel string
	// Seq is the request's sequence number in its schedule.
	Seq uint64
	// Stage is the index of the plan phase (the configured stage) that sent the request; 0
	// for a plan of one phase.
	Stage int
	// Intended is when the pacer meant the request to go.
	Intended time.Time
	// Start is t0, the moment the request was handed to the transport to be written.
	Start time.Time
	// FirstToken and LastToken are the offsets of the first and last token chunks; valid
	// when Chunks > 0.
	FirstToken, LastToken time.Duration
	// FirstContent is the offset of the first chunk with answer text (content or text, not
	// reasoning): the time to first output token of a reasoning model. Valid when ContentSeen.
	FirstContent time.Duration
	// ContentSeen is set once a chunk carried answer text.
	ContentSeen bool
	// End is the offset of the end of the stream (or of the failure).
	End time.Duration
	// Gaps holds each gap between consecutive token chunks (len = Chunks-1).
	Gaps []time.Duration
	// GapTokens holds, when TokensPerChunk is set, the output tokens carried by the chunk that
	// ends each gap (len = len(Gaps)), from the server's per-chunk usage.
	GapTokens []int32
	// FirstChunkTokens is k₁, the output tokens of the first token chunk; 1 when per-chunk
	// counts are unknown.
	FirstChunkTokens int
	// TokensPerChunk is set when every token chunk's token count is known (the server sent
	// cumulative usage on every chunk, as vLLM does with continuous_usage_stats).
	TokensPerChunk bool
	// Chunks counts token chunks: SSE events carrying generated text.
	Chunks int
	// OutputTokens is N; OutputSource says where it came from (usage or chunks).
	OutputTokens int
	OutputSource string
	// PromptTokens is the prompt length; PromptSource is usage or estimate ("" if unknown).
	PromptTokens int
	PromptSource string
	// ReasoningTokens counts reasoning tokens: usage.completion_tokens_details.reasoning_tokens
	// (ReasoningSource usage) or else the reasoning chunks (source chunks); source "" if none.
	ReasoningTokens int
	ReasoningSource string
	// CachedTokens is usage.prompt_tokens_details.cached_tokens; CachedSource is usage when
	// the server sent it, else "".
	CachedTokens int
	CachedSource string
	// FinishReason is the normalised finish_reason (one of FinishReasons), "" if none came.
	FinishReason string
	// Phases holds the HTTP phase durations, indexed by the Phase constants; PhaseSet has bit
	// 1<<phase set for each phase that happened.
	Phases   [NumPhases]time.Duration
	PhaseSet uint8
	// Retries counts sends repeated because the request never reached the server (the
	// connection failed before any byte of it was written).
	Retries int
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
	// Trace is the W3C trace context the request was sent with (RunnerConfig.Trace); zero
	// when tracing is off.
	Trace TraceContext
}

// TTFT returns t(first token chunk) − t0, if there was a token chunk.
func (r *Record) TTFT() (time.Duration, bool) {
	if r.Chunks == 0 {
		return 0, false
	}
	return r.FirstToken, true
}

// TTFO returns the time to first output token, t(first chunk with answer text) − t0: for a
// reasoning model it comes after the reasoning, for others it equals TTFT.
func (r *Record) TTFO() (time.Duration, bool) {
	if !r.ContentSeen {
		return 0, false
	}
	return r.FirstContent, true
}

// TPOT returns (t(last token chunk) − t(first token chunk)) / (N − k₁), with k₁ the tokens of
// the first chunk (1 when per-chunk counts are unknown), for N > k₁. It needs two token
// chunks: when every token came in one chunk (a server streaming with a large interval, or a
// short output) the time between tokens was not observed, and 0 would flatter the server.
func (r *Record) TPOT() (time.Duration, bool) {
	after := r.OutputTokens - r.firstChunkTokens()
	if r.Chunks < 2 || after < 1 {
		return 0, false
	}
	return (r.LastToken - r.FirstToken) / time.Duration(after), true
}

func (r *Record) firstChunkTokens() int {
	if r.TokensPerChunk && r.FirstChunkTokens > 0 {
		return r.FirstChunkTokens
	}
	return 1
}

// GapTokenCount returns how many tokens the chunk ending gap i carried: from per-chunk usage
// when known, else 1 (each chunk taken as one token).
func (r *Record) GapTokenCount(i int) int {
	if r.TokensPerChunk && i < len(r.GapTokens) && r.GapTokens[i] > 0 {
		return int(r.GapTokens[i])
	}
	return 1
}

// DecodeRate returns the decode throughput of one request, (N − k₁) / (t_last − t_first) in
// tokens per second: 1/TPOT, defined where TPOT is and the span is not zero.
func (r *Record) DecodeRate() (float64, bool) {
	after := r.OutputTokens - r.firstChunkTokens()
	span := r.LastToken - r.FirstToken
	if r.Chunks < 2 || after < 1 || span <= 0 {
		return 0, false
	}
	return float64(after) / span.Seconds(), true
}

// E2ERate returns N / e2e in tokens per second, for a request with output and a positive end.
func (r *Record) E2ERate() (float64, bool) {
	if r.OutputTokens < 1 || r.End <= 0 {
		return 0, false
	}
	return float64(r.OutputTokens) / r.End.Seconds(), true
}

// Phase returns the duration of one HTTP phase, if it happened.
func (r *Record) Phase(p int) (time.Duration, bool) {
	if p < 0 || p >= NumPhases || r.PhaseSet&(1<<p) == 0 {
		return 0, false
	}
	return r.Phases[p], true
}

// ScheduleDelay returns t0 − the intended time (never negative).
func (r *Record) ScheduleDelay() time.Duration {
	if d := r.Start.Sub(r.Intended); d > 0 {
		return d
	}
	return 0
}

// Reset clears the record for reuse, keeping the Gaps and GapTokens backing arrays.
func (r *Record) Reset() {
	gaps, tokens, text := r.Gaps[:0], r.GapTokens[:0], r.Text[:0]
	*r = Record{Gaps: gaps, GapTokens: tokens, Text: text}
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
	// Stage is the plan phase an EventRequestDropped belongs to.
	Stage int
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

// CopyTo copies r into dst, reusing dst's Gaps and GapTokens backing arrays, so that dst stays
// valid after the prober reuses r. (Err and Target are shared: both are immutable.)
func (r *Record) CopyTo(dst *Record) {
	gaps := append(dst.Gaps[:0], r.Gaps...)
	tokens := append(dst.GapTokens[:0], r.GapTokens...)
	text := append(dst.Text[:0], r.Text...)
	*dst = *r
	dst.Gaps, dst.GapTokens, dst.Text = gaps, tokens, text
}
