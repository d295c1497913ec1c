package traffic

import (
	"math"
	"testing"

	"github.com/inferprobe/inferprobe/config"
)

// TestLengthDistributions: each distribution's draws have the configured moments and bounds,
// and are a function of (seed, n).
func TestLengthDistributions(t *testing.T) {
	tests := []struct {
		d              config.LengthDist
		mean, stddev   float64 // expected, of the clipped draws
		lo, hi         int
		meanTol, sdTol float64
	}{
		{config.LengthDist{Dist: config.DistFixed, Mean: 300.4}, 300, 0, 300, 300, 0, 0},
		{config.LengthDist{Dist: config.DistUniform, Min: 10, Max: 20}, 15, math.Sqrt((11*11 - 1) / 12.0), 10, 20, 0.1, 0.1},
		{config.LengthDist{Dist: config.DistNormal, Mean: 512, Stddev: 64}, 512, 64, 1, config.MaxTokensLimit, 2, 2},
		{config.LengthDist{Dist: config.DistLognormal, Mean: 400, Stddev: 300}, 400, 300, 1, config.MaxTokensLimit, 10, 20},
		{config.LengthDist{Dist: config.DistNormal, Mean: 100, Stddev: 50, Min: 90, Max: 110}, 100, -1, 90, 110, 1, 0},
	}
	const draws = 20000
	for _, tc := range tests {
		l := NewLengths(tc.d, 7)
		again := NewLengths(tc.d, 7)
		var sum, sq float64
		lo, hi := math.MaxInt, 0
		counts := map[int]int{}
		for n := uint64(0); n < draws; n++ {
			x := l.Length(n)
			if x != again.Length(n) {
				t.Fatalf("%+v: draw %d is not a function of (seed, n)", tc.d, n)
			}
			sum += float64(x)
			sq += float64(x) * float64(x)
			lo, hi = min(lo, x), max(hi, x)
			counts[x]++
		}
		mean := sum / draws
		sd := math.Sqrt(sq/draws - mean*mean)
		if math.Abs(mean-tc.mean) > tc.meanTol || (tc.stddev >= 0 && math.Abs(sd-tc.stddev) > tc.sdTol) {
			t.Errorf("%+v: mean %.2f sd %.2f, want %.2f ± %g and %.2f ± %g", tc.d, mean, sd, tc.mean, tc.meanTol, tc.stddev, tc.sdTol)
		}
		if lo < tc.lo || hi > tc.hi {
			t.Errorf("%+v: draws in [%d, %d], want within [%d, %d]", tc.d, lo, hi, tc.lo, tc.hi)
		}
		if tc.d.Dist == config.DistUniform && (len(counts) != 11 || lo != 10 || hi != 20) {
			t.Errorf("uniform 10..20 drew %d distinct values in [%d, %d]", len(counts), lo, hi)
		}
	}
	if NewLengths(config.LengthDist{Dist: config.DistNormal, Mean: 512, Stddev: 64}, 8).Length(0) ==
		NewLengths(config.LengthDist{Dist: config.DistNormal, Mean: 512, Stddev: 64}, 7).Length(0) &&
		NewLengths(config.LengthDist{Dist: config.DistNormal, Mean: 512, Stddev: 64}, 8).Length(1) ==
			NewLengths(config.LengthDist{Dist: config.DistNormal, Mean: 512, Stddev: 64}, 7).Length(1) {
		t.Error("another seed draws the same lengths")
	}
}

// TestPromptSourceDrawnLengths: with length distributions every request's prompt has exactly
// its drawn number of words and its max_tokens is its drawn output length.
func TestPromptSourceDrawnLengths(t *testing.T) {
	in := NewLengths(config.LengthDist{Dist: config.DistUniform, Min: 5, Max: 60}, 1)
	out := NewLengths(config.LengthDist{Dist: config.DistNormal, Mean: 30, Stddev: 10}, 2)
	for _, bust := range []bool{true, false} {
		src := NewPromptSource(PromptOptions{InputLengths: in, OutputLengths: out, MaxTokens: 999, CacheBust: bust, Seed: 3})
		seen := map[int]bool{}
		prev := ""
		for n := uint64(0); n < 200; n++ {
			r := src.Next(n)
			if countWords(r.Prompt) != in.Length(n) || r.PromptTokens != in.Length(n) || r.MaxTokens != out.Length(n) {
				t.Fatalf("request %d: %d words, %d tokens, max %d; want %d and %d", n, countWords(r.Prompt), r.PromptTokens, r.MaxTokens, in.Length(n), out.Length(n))
			}
			seen[r.PromptTokens] = true
			if !bust && prev != "" && len(prev) < len(r.Prompt) && r.Prompt[:len(prev)] != prev {
				t.Fatal("without cache busting the prompts are not prefixes of one sequence")
			}
			prev = r.Prompt
		}
		if len(seen) < 30 {
			t.Fatalf("only %d distinct lengths in 200 requests", len(seen))
		}
	}
}

// TestPromptSourceTurns: a session's later turns have questions of their own, reproducibly,
// addressed to the adapter of the session's first request.
func TestPromptSourceTurns(t *testing.T) {
	src := NewPromptSource(PromptOptions{InputTokens: 6, CacheBust: true, Seed: 3,
		Adapters: []WeightedAdapter{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}}}).(TurnSource)
	seen := map[string]bool{}
	for n := uint64(0); n < 20; n++ {
		first := src.Turn(n, 0)
		if first.Prompt != src.Next(n).Prompt {
			t.Fatal("turn 0 is not Next(n)")
		}
		for k := 0; k < 4; k++ {
			r := src.Turn(n, k)
			if r.Adapter != first.Adapter || r.PromptTokens != 6 || r.Prompt != src.Turn(n, k).Prompt {
				t.Fatalf("session %d turn %d: %+v (first %+v)", n, k, r, first)
			}
			if seen[r.Prompt] {
				t.Fatalf("session %d turn %d repeats a question", n, k)
			}
			seen[r.Prompt] = true
		}
	}
}
