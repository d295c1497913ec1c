// Package traffic decides when to send requests and what to send. It is pure: no network, no
// wall clock. Pacers map a request's sequence number to the offset at which it is due; sources
// map a sequence number to the request to send. Both are reproducible from a seed.
package traffic

import "time"

// Pacer is an open-loop arrival schedule. Like vegeta's pacers it is a function of the hit
// count: Next(n) is the intended offset of request n (0-based) from the start of the schedule.
// Offsets never decrease with n. Callers ask for n in increasing order; implementations may
// keep state to make that cheap but must return the same answer for the same (seed, n).
type Pacer interface {
	// Next returns when request n is due, measured from the schedule start, or ok=false once
	// the schedule has ended (a daemon's pacers never end).
	Next(n uint64) (at time.Duration, ok bool)
	// Rate returns the rate the schedule aims at, at offset d, in requests per second.
	Rate(d time.Duration) float64
}

// Request is what one probe sends, independent of the API flavour.
type Request struct {
	// Prompt is the full prompt text (cache-busting nonce included, if any).
	Prompt string
	// PromptTokens is the source's estimate of the prompt length in tokens (0 if unknown).
	PromptTokens int
	// MaxTokens caps the output; 0 leaves it to the server.
	MaxTokens int
	// Adapter is the LoRA adapter to address instead of the base model; "" for the base model.
	Adapter string
	// Messages, when set, are the chat messages to send instead of one user message holding
	// Prompt (which then holds their contents joined, for completion APIs).
	Messages []Message
}

// TurnSource is a Source that also builds the later turns of a multi-turn conversation:
// Turn(n, 0) is Next(n), and Turn(n, k) the user message of turn k (from 0) of the session that
// request n starts, with the same adapter. Like Next it is a pure function of (seed, n, k).
type TurnSource interface {
	Source
	Turn(n uint64, turn int) Request
}

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Source produces the request for each sequence number. Implementations are deterministic in
// (seed, n) and safe for concurrent use: closed-loop workers ask for their next request each
// on its own goroutine.
type Source interface {
	Next(n uint64) Request
}
