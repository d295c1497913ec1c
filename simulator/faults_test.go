package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestFaults sets each fault knob to 1 and checks the fault is what a client sees, in both
// response modes, and that Stats records it.
func TestFaults(t *testing.T) {
	const stall = 80 * time.Millisecond
	tests := []struct {
		name    string
		set     func(*Config)
		outcome Outcome
		stream  func(t *testing.T, sum streamSummary)
		plain   func(t *testing.T, resp *http.Response)
	}{
		{
			name:    "500",
			set:     func(c *Config) { c.Error500Rate = 1 },
			outcome: OutcomeError500,
			stream:  func(t *testing.T, sum streamSummary) { wantStatus(t, sum.status, 500) },
			plain:   func(t *testing.T, resp *http.Response) { wantErrorBody(t, resp, 500) },
		},
		{
			name:    "429",
			set:     func(c *Config) { c.Error429Rate = 1 },
			outcome: OutcomeError429,
			stream:  func(t *testing.T, sum streamSummary) { wantStatus(t, sum.status, 429) },
			plain: func(t *testing.T, resp *http.Response) {
				wantErrorBody(t, resp, 429)
				if resp.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
			},
		},
		{
			name:    "truncate",
			set:     func(c *Config) { c.TruncateRate = 1 },
			outcome: OutcomeTruncated,
			stream: func(t *testing.T, sum streamSummary) {
				wantStatus(t, sum.status, 200)
				if sum.readErr != nil || sum.done || sum.finish != "" || sum.usage != -1 {
					t.Errorf("stream not cleanly truncated: err %v done %v finish %q usage %d", sum.readErr, sum.done, sum.finish, sum.usage)
				}
				if sum.tokens < 1 || sum.tokens >= 10 {
					t.Errorf("truncated after %d tokens, want 1..9", sum.tokens)
				}
			},
			plain: func(t *testing.T, resp *http.Response) {
				wantStatus(t, resp.StatusCode, 200)
				if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("reading a truncated body: %v, want unexpected EOF", err)
				}
			},
		},
		{
			name:    "malformed",
			set:     func(c *Config) { c.MalformedRate = 1 },
			outcome: OutcomeSuccess,
			stream: func(t *testing.T, sum streamSummary) {
				wantStatus(t, sum.status, 200)
				if sum.malformed != 1 || sum.tokens != 10 || !sum.done || sum.finish != "length" {
					t.Errorf("malformed %d tokens %d done %v finish %q", sum.malformed, sum.tokens, sum.done, sum.finish)
				}
			},
			plain: func(t *testing.T, resp *http.Response) {
				wantStatus(t, resp.StatusCode, 200)
				var v any
				if err := json.NewDecoder(resp.Body).Decode(&v); err == nil {
					t.Error("malformed body decoded")
				}
			},
		},
		{
			name:    "stall",
			set:     func(c *Config) { c.StallRate = 1; c.StallDuration = stall },
			outcome: OutcomeSuccess,
			stream: func(t *testing.T, sum streamSummary) {
				wantStatus(t, sum.status, 200)
				if !sum.done || sum.tokens != 10 {
					t.Fatalf("stalled stream incomplete: %d tokens, done %v", sum.tokens, sum.done)
				}
				// A late read of the token before the stall shortens the gap the client sees
				// (the stall itself is exact on the server): count gaps of most of it, which no
				// ordinary gap reaches.
				var long int
				for i := 1; i < len(sum.tokTimes); i++ {
					if sum.tokTimes[i].Sub(sum.tokTimes[i-1]) >= stall*8/10 {
						long++
					}
				}
				if long != 1 {
					t.Errorf("%d client-side gaps of at least %s, want 1", long, stall*8/10)
				}
			},
			plain: func(t *testing.T, resp *http.Response) {
				wantStatus(t, resp.StatusCode, 200)
				_, _ = io.Copy(io.Discard, resp.Body)
			},
		},
	}
	for _, tt := range tests {
		for _, streaming := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s stream=%v", tt.name, streaming), func(t *testing.T) {
				cfg := fastConfig()
				tt.set(&cfg)
				s, ts := startServer(t, cfg)
				body := map[string]any{"prompt": "a b", "max_tokens": 10, "ignore_eos": true}
				start := time.Now()
				if streaming {
					tt.stream(t, stream(context.Background(), ts, "/v1/completions", body))
				} else {
					resp := post(t, context.Background(), ts, "/v1/completions", body)
					tt.plain(t, resp)
					resp.Body.Close()
				}
				elapsed := time.Since(start)

				// The handler may record just after the client saw the end.
				var st Stats
				waitFor(t, "the request to be recorded", 2*time.Second, func() bool {
					st = s.Stats()
					return len(st.Requests) == 1
				})
				r := st.Requests[0]
				if r.Outcome != tt.outcome || r.Stream != streaming {
					t.Errorf("recorded outcome %q stream %v, want %q", r.Outcome, r.Stream, tt.outcome)
				}
				switch tt.name {
				case "stall":
					if !r.Stalled || elapsed < stall {
						t.Errorf("stall not recorded (%v) or not felt (%s)", r.Stalled, elapsed)
					}
					if streaming && slices.Max(r.Gaps) < stall {
						t.Errorf("server gaps %v have no stall", r.Gaps)
					}
				case "malformed":
					if !r.Malformed {
						t.Error("malformed not recorded")
					}
				}
			})
		}
	}
}

func wantStatus(t *testing.T, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d, want %d", got, want)
	}
}

func wantErrorBody(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	wantStatus(t, resp.StatusCode, status)
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error.Code != status || e.Error.Message == "" {
		t.Errorf("error body %+v (%v)", e, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// signature is what a client can observe of one response, for determinism checks.
type signature struct {
	status, tokens, malformed int
	text, finish              string
	done                      bool
}

// TestSeededDeterminism sends the same sequence to servers with the same seed and expects
// the same lengths, words and faults; a different seed must change them.
func TestSeededDeterminism(t *testing.T) {
	run := func(seed uint64) ([]signature, []Outcome) {
		cfg := fastConfig()
		cfg.TTFTBase, cfg.ITL = 0, 0
		cfg.Seed = seed
		cfg.Error500Rate, cfg.Error429Rate = 0.15, 0.15
		cfg.TruncateRate, cfg.MalformedRate = 0.2, 0.2
		cfg.StallRate, cfg.StallDuration = 0.2, time.Millisecond
		s, ts := startServer(t, cfg)
		var sigs []signature
		for i := range 40 {
			body := map[string]any{"prompt": "x y z", "max_tokens": 5 + i%20}
			sum := stream(context.Background(), ts, "/v1/completions", body)
			sigs = append(sigs, signature{sum.status, sum.tokens, sum.malformed, sum.text, sum.finish, sum.done})
		}
		var st Stats
		waitFor(t, "all requests recorded", 2*time.Second, func() bool {
			st = s.Stats()
			return len(st.Requests) == 40
		})
		var outs []Outcome
		for _, r := range st.Requests {
			outs = append(outs, r.Outcome)
		}
		return sigs, outs
	}
	a, aOut := run(42)
	b, bOut := run(42)
	c, _ := run(43)
	if !slices.Equal(a, b) || !slices.Equal(aOut, bOut) {
		t.Fatalf("same seed, different behaviour:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds, same behaviour")
	}
	// The sequence must actually exercise the knobs, or the comparison proves little.
	seen := map[string]bool{}
	for _, s := range a {
		switch {
		case s.status == 500:
			seen["500"] = true
		case s.status == 429:
			seen["429"] = true
		case !s.done:
			seen["truncated"] = true
		case s.malformed > 0:
			seen["malformed"] = true
		case s.finish == "stop":
			seen["stop"] = true
		}
	}
	if len(seen) != 5 {
		t.Errorf("faults exercised: %v", seen)
	}
}
