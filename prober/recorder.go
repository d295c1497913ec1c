package prober

import (
	"errors"
	"fmt"
	"time"
)

// StreamEvent is what a flavour's decoder found in one event of a response: the facts the
// timing record is built from, whatever the protocol. A decoder fills it from scratch for each
// event (Reset), so one value is reused for a whole stream without allocating.
type StreamEvent struct {
	// Content and Reasoning say the event carried answer text or reasoning text: it is then a
	// token chunk.
	Content, Reasoning bool
	// Tokens is the output tokens this event carried when the protocol says so per event (one
	// TGI or Triton event is one token: 1); 0 when unknown. A token event without Tokens but
	// with usage takes its count from the change in the cumulative usage.
	Tokens int
	// HasUsage says the event carried a usage report; OutputTokens and PromptTokens are then
	// cumulative counts as sent (the last report of a stream wins), and ReasoningTokens and
	// CachedTokens are the details, -1 when the report had none.
	HasUsage                      bool
	PromptTokens, OutputTokens    int
	ReasoningTokens, CachedTokens int
	// Finish is the normalised finish reason (one of FinishReasons), "" if the event had none.
	Finish string
	// Done marks the protocol's end of stream ([DONE], message_stop, response.completed, the
	// last event of TGI): the record is complete.
	Done bool
	// Result and Err report an error the server sent in the stream, classed (an error event,
	// a failed response); Result "" means none.
	Result string
	Err    error
	// Text is the answer text the event carried, filled only when the decoder was asked to
	// capture it (conversations); valid until the next event.
	Text []byte
	// Model is the model the event says answered (OpenAI's "model", Anthropic's
	// message.model, Responses' response.model, KServe's model_name), nil if it names none;
	// it may alias the event's bytes, valid until the next event.
	Model []byte

	// memo is the OpenAI decoder's memo of the stream's earlier chunks (chunkMemo), kept
	// across Reset: one event value serves a stream's events in turn.
	memo *chunkMemo
}

// Reset clears the event for the next decode, keeping Text's backing array and the decoder's
// memo.
func (e *StreamEvent) Reset() {
	text, memo := e.Text[:0], e.memo
	*e = StreamEvent{ReasoningTokens: -1, CachedTokens: -1, Text: text, memo: memo}
}

// RecorderOptions are a target's choices that change how a finished stream is judged.
type RecorderOptions struct {
	// AllowEmpty makes a cleanly finished response without any answer a success.
	AllowEmpty bool
	// Unstreamed is a non-streaming request (stream: false): the answer came in one body, so
	// no token chunk is recorded and TTFT, TPOT and ITL stay undefined; N comes from usage.
	Unstreamed bool
}

// StreamRecorder fills a Record from the events of one response, the same way for every API
// flavour, HTTP or not: the transport (or a gRPC client) reads and decodes events and hands
// each to Event with its arrival offset, then ends the stream with Interrupted if reading
// failed. It holds per-request state: use one per request (it is small and can live on the
// stack), or Begin it again.
//
// Token accounting: a token event (Content or Reasoning) is a token chunk; the first sets
// FirstToken (t(first token chunk) − t0), each later one appends its gap and its token count.
// A chunk's count is StreamEvent.Tokens, else the rise of cumulative usage since the previous
// token chunk; the record has exact per-chunk counts (TokensPerChunk) only when every token
// chunk had one. N is the last usage report's OutputTokens, else the sum of the per-event
// counts when the server gave one for every token chunk, else the number of token chunks.
type StreamRecorder struct {
	rec      *Record
	opts     RecorderOptions
	finished bool          // a finish reason was seen
	finishAt time.Duration // when
	done     bool          // the record is complete
	usageOut int           // last usage's output tokens, -1 for none
	prev     time.Duration
	perChunk bool
	cumAt    int // cumulative usage at the previous token chunk
	// reasoning chunks, the fallback count of reasoning tokens; usage's count, -1 for none
	reasoningN, reasoningUse int
	answered                 bool // an unstreamed answer carried text
	// evTokens sums the per-event counts (StreamEvent.Tokens) of every event, with text or
	// not: Triton's vLLM backend reports each response's tokens, the last one's too.
	evTokens int
}

// Begin starts recording into rec, whose Start is already set.
func (s *StreamRecorder) Begin(rec *Record, opts RecorderOptions) {
	*s = StreamRecorder{rec: rec, opts: opts, usageOut: -1, perChunk: true, reasoningUse: -1}
}

// Done reports whether the record is complete (ended or failed); later events are ignored.
func (s *StreamRecorder) Done() bool { return s.done }

// Event applies one decoded event that arrived at offset at (from rec.Start). It returns false
// once the record is complete: the stream ended or failed, and the caller stops reading.
func (s *StreamRecorder) Event(at time.Duration, ev *StreamEvent) bool {
	if s.done {
		return false
	}
	rec := s.rec
	if ev.Result != "" {
		s.Fail(at, ev.Result, ev.Err)
		return false
	}
	if rec.CaptureText && len(ev.Text) > 0 {
		rec.Text = append(rec.Text, ev.Text...)
	}
	if len(ev.Model) > 0 && rec.ResponseModel == "" {
		rec.ResponseModel = responseModel(ev.Model, rec)
	}
	if ev.Finish != "" && !s.finished {
		s.finished, s.finishAt = true, at
		rec.FinishReason = ev.Finish
	}
	if ev.HasUsage {
		if ev.OutputTokens < 0 || ev.PromptTokens < 0 {
			s.Fail(at, ResultProtocol, errors.New("negative token count in usage"))
			return false
		}
		// Usage may come on its own event, on the last token event (llama.cpp) or on every
		// event (continuous usage); the last one seen wins.
		s.usageOut = ev.OutputTokens
		if ev.PromptTokens > 0 {
			rec.PromptTokens, rec.PromptSource = ev.PromptTokens, SourceUsage
		}
		if ev.ReasoningTokens >= 0 {
			s.reasoningUse = ev.ReasoningTokens
		}
		if ev.CachedTokens >= 0 {
			rec.CachedTokens, rec.CachedSource = ev.CachedTokens, SourceUsage
		}
	}
	if ev.Tokens > 0 {
		s.evTokens += ev.Tokens
	}
	if ev.Content || ev.Reasoning {
		if s.opts.Unstreamed {
			s.answered = true
		} else {
			s.token(at, ev)
		}
	}
	if ev.Done {
		s.end(at)
		return false
	}
	return true
}

// token records one token chunk.
func (s *StreamRecorder) token(at time.Duration, ev *StreamEvent) {
	rec := s.rec
	k := int32(ev.Tokens)
	if k <= 0 && ev.HasUsage {
		// Cumulative usage on a token chunk (vLLM's continuous_usage_stats): the chunk carried
		// cum − cum at the previous token chunk (tokens of chunks without text, held back by
		// a detokenizer, go to the next one).
		k = int32(ev.OutputTokens - s.cumAt)
	}
	if ev.HasUsage {
		s.cumAt = ev.OutputTokens
	} else if ev.Tokens > 0 {
		s.cumAt += ev.Tokens
	}
	if k <= 0 {
		s.perChunk = false // a token chunk without (or with inconsistent) counts
	}
	if rec.Chunks == 0 {
		rec.FirstToken = at
		rec.FirstChunkTokens = int(k)
	} else {
		rec.Gaps = append(rec.Gaps, at-s.prev)
		rec.GapTokens = append(rec.GapTokens, k)
	}
	if ev.Content && !rec.ContentSeen {
		rec.FirstContent, rec.ContentSeen = at, true
	}
	if ev.Reasoning {
		s.reasoningN++
	}
	rec.LastToken, s.prev = at, at
	rec.Chunks++
}

// Interrupted ends a stream whose reading stopped at offset at before the protocol's end:
// result and err class the failure (a read error, a timeout, the end of the body). A stream
// whose generation had already finished (a finish reason came) and only lost its closing
// marker counts as finished, unless canceled says the caller stopped the request.
func (s *StreamRecorder) Interrupted(at time.Duration, result string, err error, canceled bool) {
	if s.done {
		return
	}
	if s.finished && !canceled {
		s.end(max(s.finishAt, s.rec.LastToken))
		return
	}
	s.Fail(at, result, err)
}

// End ends the stream cleanly at offset at: for protocols whose end is the end of the body
// (Triton's generate_stream has no closing event).
func (s *StreamRecorder) End(at time.Duration) {
	if !s.done {
		s.end(at)
	}
}

// Fail ends the record at offset at with a failure class and its error.
func (s *StreamRecorder) Fail(at time.Duration, result string, err error) {
	if s.done {
		return
	}
	s.done = true
	s.rec.End, s.rec.Result, s.rec.Err = at, result, err
	s.counts()
}

// end records a cleanly ended stream: N from usage when the server sent it, else chunks. It is
// a success only with at least one token chunk (unless allow_empty) and a finish that is not
// the server's own abort or error.
func (s *StreamRecorder) end(at time.Duration) {
	s.done = true
	rec := s.rec
	rec.End = at
	switch {
	case s.usageOut >= 0:
		rec.OutputTokens, rec.OutputSource = s.usageOut, SourceUsage
	case s.evTokens > 0 && (s.opts.Unstreamed || s.perChunk):
		// The server counted every response's tokens (and every token chunk had a count):
		// their sum is its own count of the output.
		rec.OutputTokens, rec.OutputSource = s.evTokens, SourceUsage
	case !s.opts.Unstreamed:
		rec.OutputTokens, rec.OutputSource = rec.Chunks, SourceChunks
	}
	answered := rec.Chunks > 0 || s.answered
	switch {
	case rec.FinishReason == FinishAbort || rec.FinishReason == FinishError:
		rec.Result = ResultAborted
		rec.Err = fmt.Errorf("the server ended the generation with finish_reason %s", rec.FinishReason)
	case !answered && !s.opts.AllowEmpty:
		rec.Result = ResultEmpty
		rec.Err = errors.New("the response finished without any generated text")
	default:
		rec.Result = ResultSuccess
	}
	s.counts()
}

// counts settles the per-chunk and reasoning counts, on every end.
func (s *StreamRecorder) counts() {
	rec := s.rec
	rec.TokensPerChunk = s.perChunk && rec.Chunks > 0
	if !rec.TokensPerChunk {
		rec.FirstChunkTokens = 1
	}
	switch {
	case s.reasoningUse >= 0:
		rec.ReasoningTokens, rec.ReasoningSource = s.reasoningUse, SourceUsage
	case s.reasoningN > 0:
		rec.ReasoningTokens, rec.ReasoningSource = s.reasoningN, SourceChunks
	}
}

// responseModel turns the model a response named into a string, reusing the request's model
// or adapter name when it is the same (the usual case: no allocation per request).
func responseModel(b []byte, rec *Record) string {
	switch {
	case rec.Adapter != "" && string(b) == rec.Adapter:
		return rec.Adapter
	case rec.Target != nil && string(b) == rec.Target.Model:
		return rec.Target.Model
	}
	return string(b)
}
