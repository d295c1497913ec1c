package simulator

import (
	"context"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// plan is everything random about one request, fixed when it arrives.
type plan struct {
	fault500, fault429 bool
	length             int    // output tokens to generate
	finish             string // finish_reason when all are sent
	stallAt            int    // token index whose wait includes the stall; -1 for none
	truncateAfter      int    // tokens sent before a stream is cut; -1 for none (0 never happens)
	malformedAt        int    // token index preceded by an invalid event; -1 for none
	empty, reset       bool   // only [DONE]; connection dropped before the headers
	resetMid           bool   // connection dropped after the first token chunk
	id                 [2]uint64
	rng                rand.PCG // words and jitter of this request
}

// uniform returns a float64 in [0, 1).
func uniform(r *rand.PCG) float64 { return float64(r.Uint64()>>11) * 0x1p-53 }

// below returns an int in [0, n) for n > 0.
func below(r *rand.PCG, n int) int {
	hi, _ := bits.Mul64(r.Uint64(), uint64(n))
	return int(hi)
}

// draw fixes a request's plan. Only two numbers come from the shared source, under its lock;
// the rest come from a per-request generator seeded with them, in a fixed order, so request k
// behaves the same for a given seed however the requests before it interleaved.
//
// Output length: ignore_eos gives exactly max_tokens. Otherwise the length is
// max_tokens − ⌊max_tokens·u³⌋ for u uniform in [0,1), raised to min_tokens (and 1): long
// answers dominate (median ⅞ of max_tokens, mean ¾) as when a model is capped mid-thought, and
// the finish_reason is "length" when it reaches max_tokens, "stop" (an EOS) otherwise.
func (s *Server) draw(p *plan, g *genRequest) {
	s.rngMu.Lock()
	a, b := s.rng.Uint64(), s.rng.Uint64()
	s.rngMu.Unlock()
	p.rng.Seed(a, b)
	r := &p.rng

	p.id = [2]uint64{r.Uint64(), r.Uint64()}
	u500, u429 := uniform(r), uniform(r)
	uLen := uniform(r)
	uStall, stallPos := uniform(r), r.Uint64()
	uTrunc, truncPos := uniform(r), r.Uint64()
	uMal, malPos := uniform(r), r.Uint64()

	p.fault500 = u500 < s.cfg.Error500Rate
	p.fault429 = !p.fault500 && u429 < s.cfg.Error429Rate

	m := g.maxTokens
	p.length = m
	if !g.ignoreEOS {
		p.length = m - int(float64(m)*uLen*uLen*uLen)
	}
	p.length = min(m, max(p.length, g.minTokens, 1))
	p.finish = finishStop
	if p.length == m {
		p.finish = finishLength
	}

	// pick maps a raw draw into [lo, hi] without another draw, keeping the order fixed.
	pick := func(raw uint64, lo, hi int) int {
		h, _ := bits.Mul64(raw, uint64(hi-lo+1))
		return lo + int(h)
	}
	n := p.length
	p.stallAt, p.truncateAfter, p.malformedAt = -1, -1, -1
	if uStall < s.cfg.StallRate {
		// Between two tokens when there are two; before the only one otherwise.
		p.stallAt = 0
		if n >= 2 {
			p.stallAt = pick(stallPos, 1, n-1)
		}
	}
	if uTrunc < s.cfg.TruncateRate {
		// At least one token is sent, and at least one is missing when there are two.
		p.truncateAfter = pick(truncPos, 1, max(1, n-1))
	}
	if uMal < s.cfg.MalformedRate {
		p.malformedAt = pick(malPos, 0, n-1)
	}
	// The later faults draw only when enabled, so that the words and jitter of a seed that
	// uses none of them stay as they were before the faults existed.
	p.empty, p.reset, p.resetMid = false, false, false
	if s.cfg.AbortRate > 0 && uniform(r) < s.cfg.AbortRate {
		p.finish = finishAbort
	}
	if s.cfg.EmptyRate > 0 && uniform(r) < s.cfg.EmptyRate {
		p.empty = true
	}
	if s.cfg.ResetRate > 0 && uniform(r) < s.cfg.ResetRate {
		p.reset = true
	}
	if s.cfg.ResetMidStreamRate > 0 && uniform(r) < s.cfg.ResetMidStreamRate {
		p.resetMid = true
	}
}

// job is one generation request in flight, owned by its handler goroutine.
type job struct {
	s        *Server
	w        http.ResponseWriter
	rc       *http.ResponseController
	ctx      context.Context
	received time.Time
	g        *genRequest
	p        plan
	st       RequestStats
	timer    *time.Timer
	wire     wire   // the protocol the response is written in
	head     []byte // the wire's pre-encoded prefix of every event
	buf      []byte
	pending  []byte // text of the tokens of the chunk being gathered
	// text is the output so far, kept by wires whose last event repeats it whole (TGI's
	// generated_text).
	text []byte
}

// finish records the request's ground truth.
func (j *job) finish() {
	j.st.E2E = time.Since(j.received)
	j.s.stats.record(&j.st)
}

// sleepUntil waits for t, or returns false if the client left or the server closed first.
func (j *job) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-j.ctx.Done():
			return false
		case <-j.s.ctx.Done():
			return false
		default:
			return true
		}
	}
	if j.timer == nil {
		j.timer = time.NewTimer(d)
	} else {
		j.timer.Reset(d)
	}
	select {
	case <-j.timer.C:
		return true
	case <-j.ctx.Done():
	case <-j.s.ctx.Done():
	}
	j.timer.Stop()
	return false
}

// gap draws the wait between two tokens.
func (j *job) gap() time.Duration {
	cfg := &j.s.cfg
	d := cfg.ITL + cfg.ITLPerRunningSeq*time.Duration(j.s.sched.runningNow.Load()) + cfg.SpeedBump.addedSince(j.s.start)
	if cfg.ITLJitter > 0 {
		d = time.Duration(float64(d) * (1 + cfg.ITLJitter*(2*uniform(&j.p.rng)-1)))
	}
	return d
}

// word draws the next output token.
func (j *job) word() string {
	return j.s.vocab[below(&j.p.rng, len(j.s.vocab))]
}

// generate runs an admitted-or-queued request to its end and answers it.
func (j *job) generate() {
	s, g, p := j.s, j.g, &j.p
	cfg := &s.cfg
	m := s.metrics
	created := time.Now().Unix()
	j.wire.prepare(j, created)
	if g.stream && p.reset {
		// The process died, or a proxy dropped the connection, before answering: the
		// client sees the connection close without a response.
		j.st.Outcome = OutcomeReset
		j.finish()
		panic(http.ErrAbortHandler)
	}
	if g.stream {
		j.rc = http.NewResponseController(j.w)
		// Room for the largest write: the last token with finish, usage and [DONE].
		j.buf = make([]byte, 0, 4*len(j.head)+512)
		// Headers go out at once, before any queueing, as uvicorn sends them when vLLM's
		// streaming response starts.
		j.w.Header().Set("Content-Type", contentTypeSSE)
		j.w.WriteHeader(http.StatusOK)
		_ = j.rc.Flush()
		if p.empty {
			_, _ = j.w.Write(j.wire.empty(j, nil))
			_ = j.rc.Flush()
			j.st.Outcome = OutcomeEmpty
			j.finish()
			return
		}
	}

	need := g.promptTokens + g.maxTokens
	if !s.sched.acquire(j.ctx, s.ctx.Done(), need) {
		j.st.Outcome = OutcomeCanceled
		j.finish()
		return
	}
	admitted := time.Now()
	held := g.promptTokens
	s.sched.held.Add(int64(held))
	defer func() {
		if j.timer != nil {
			j.timer.Stop()
		}
		s.sched.release(need, held)
	}()
	j.st.Queue = admitted.Sub(j.received)
	m.queue.Observe(j.st.Queue.Seconds())
	m.promptTokens.Add(float64(g.promptTokens))
	m.promptHist.Observe(float64(g.promptTokens))

	var text []byte // non-streaming output
	if !g.stream {
		text = make([]byte, 0, 8*p.length)
	}
	keepGaps := cfg.StatsSize > 0 // nobody will read them otherwise
	if keepGaps {
		j.st.Gaps = make([]time.Duration, 0, max(p.length-1, 0))
	}
	deadline := admitted.Add(cfg.TTFTBase + cfg.TTFTPerPromptToken*time.Duration(g.promptTokens))
	var first, last time.Time
	ended := false // a stream's tail was written
	chunkTokens := max(cfg.ChunkTokens, 1)
	pendingN := 0 // tokens produced and not yet sent
	malformed := false
	j.pending = j.pending[:0]
	for i := 0; i < p.length; i++ {
		if i > 0 {
			deadline = deadline.Add(j.gap())
		}
		if i == p.stallAt {
			deadline = deadline.Add(cfg.StallDuration)
			j.st.Stalled = true
		}
		if !j.sleepUntil(deadline) {
			j.abort(OutcomeCanceled)
			return
		}
		w := j.word()
		if g.stream {
			j.pending = append(j.pending, w...)
			pendingN++
			if i == p.malformedAt {
				malformed = true
			}
			sent := j.st.OutputTokens + pendingN
			if pendingN < chunkTokens && i < p.length-1 && (p.truncateAfter < 0 || sent < p.truncateAfter) {
				// Not a flush yet: the token waits for the rest of its chunk.
				deadline = j.tokenHeld(deadline)
				held++
				continue
			}
			b := j.buf[:0]
			if j.st.OutputTokens == 0 {
				b = j.wire.begin(j, b)
			}
			if malformed {
				b = j.wire.malformed(j, b)
				j.st.Malformed = true
				malformed = false
			}
			j.st.OutputTokens += pendingN
			b = j.wire.token(j, b, j.pending, pendingN)
			// The finish chunk rides with the last token, as vLLM attaches finish_reason to
			// the final output: one write and one flush fewer per request.
			if i == p.length-1 && p.truncateAfter < 0 && !p.resetMid {
				b = j.wire.tail(j, b)
				ended = true
			}
			j.buf = b
			j.pending = j.pending[:0]
			if _, err := j.w.Write(b); err != nil {
				j.abort(OutcomeCanceled)
				return
			}
			if err := j.rc.Flush(); err != nil {
				j.abort(OutcomeCanceled)
				return
			}
		} else {
			text = append(text, w...)
			j.st.OutputTokens++
			pendingN = 1
		}

		now := time.Now()
		j.tokensOut(&first, &last, now, pendingN, keepGaps, true)
		held++
		pendingN = 0

		if g.stream && p.resetMid {
			j.abort(OutcomeReset)
			panic(http.ErrAbortHandler)
		}
		if g.stream && p.truncateAfter >= 0 && j.st.OutputTokens >= p.truncateAfter {
			j.abort(OutcomeTruncated)
			return
		}
		// Fell more than a gap behind (slow reader, overloaded host): restart the schedule
		// here rather than burst the backlog.
		if now.Sub(deadline) > cfg.ITL {
			deadline = now
		}
	}

	if !g.stream {
		if !j.writeBody(j.wire.body(j, text, created)) {
			return
		}
	} else if !ended {
		// Only reachable with zero tokens, which parseRequest rules out; kept for safety.
		j.buf = j.wire.tail(j, j.buf[:0])
		_, _ = j.w.Write(j.buf)
		_ = j.rc.Flush()
	}

	j.st.Outcome = OutcomeSuccess
	if p.finish == finishAbort {
		j.st.Outcome = OutcomeAborted
	}
	j.st.FinishReason = p.finish
	m.success[p.finish].Inc()
	m.prefill.Observe(first.Sub(admitted).Seconds())
	m.decode.Observe(last.Sub(first).Seconds())
	if n := j.st.OutputTokens; n >= 2 {
		m.tpot.Observe(last.Sub(first).Seconds() / float64(n-1))
	}
	m.generationHist.Observe(float64(j.st.OutputTokens))
	j.finish()
	m.e2e.Observe(j.st.E2E.Seconds())
}

// abort ends an admitted request that did not finish.
func (j *job) abort(o Outcome) {
	j.st.Outcome = o
	j.s.metrics.success[finishAbort].Inc()
	j.finish()
}

// writeBody answers a non-streaming request with the wire's body, applying the body faults.
// It reports whether the response counts as a success.
func (j *job) writeBody(body []byte) bool {
	h := j.w.Header()
	h.Set("Content-Type", contentTypeJSON)
	switch {
	case j.p.truncateAfter >= 0:
		// Promise the whole body and send half: the server then closes the connection and
		// the client reads an unexpected EOF.
		h.Set("Content-Length", strconv.Itoa(len(body)))
		j.w.WriteHeader(http.StatusOK)
		_, _ = j.w.Write(body[:len(body)/2])
		j.abort(OutcomeTruncated)
		return false
	case j.p.malformedAt >= 0:
		j.st.Malformed = true
		body = body[:len(body)-1] // drop the closing brace
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	j.w.WriteHeader(http.StatusOK)
	if _, err := j.w.Write(body); err != nil {
		j.abort(OutcomeCanceled)
		return false
	}
	return true
}

// tokenHeld accounts for a generated token that waits for the rest of its chunk: it holds a
// KV slot and counts as generated. It returns the schedule's next deadline, restarted from
// now when generation fell more than a gap behind. The caller counts the token in the
// request's held slots.
func (j *job) tokenHeld(deadline time.Time) time.Time {
	j.s.sched.held.Add(1)
	j.s.metrics.generationTokens.Inc()
	if now := time.Now(); now.Sub(deadline) > j.s.cfg.ITL {
		return now
	}
	return deadline
}

// tokensOut accounts for the n tokens that left (were flushed, or generated for a whole
// answer) at now, every protocol alike: the first sets TTFT; later ones record their gap
// (with gaps, those of a whole answer too) and the per-token ITL, a chunk of n tokens
// standing for n gaps of gap/n. The last token holds a KV slot and counts as generated; the
// caller counts it in the request's held slots.
func (j *job) tokensOut(first, last *time.Time, now time.Time, n int, keepGaps, gaps bool) {
	m := j.s.metrics
	if first.IsZero() {
		*first = now
		j.st.TTFT = now.Sub(j.received)
		m.ttft.Observe(j.st.TTFT.Seconds())
	} else if gaps {
		gap := now.Sub(*last)
		if keepGaps {
			j.st.Gaps = append(j.st.Gaps, gap)
		}
		for range n {
			m.itl.Observe(gap.Seconds() / float64(n))
		}
	}
	*last = now
	j.s.sched.held.Add(1)
	m.generationTokens.Inc()
}
