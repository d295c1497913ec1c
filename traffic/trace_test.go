package traffic

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/testkit"
)

// sharedAzureTrace reads the shared Azure conversation trace (CC-BY 4.0; Patel et al.,
// "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024) from
// shared/traces beside the repository; in CI (CI=true) its absence is a failure, never a skip.
func sharedAzureTrace(t testing.TB) (*Trace, string) {
	t.Helper()
	path := testkit.SharedFile(t, "traces/azure-llm-2023-conv.csv")
	tr, err := LoadTrace(path, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return tr, path
}

func TestReadAzure(t *testing.T) {
	const csv = "TIMESTAMP,ContextTokens,GeneratedTokens\n" +
		"2023-11-16 18:15:46.6805900,374,44\n" +
		"2023-11-16 18:15:50.9951690,396,109\n" +
		"\n" +
		"2023-11-16 18:15:51.2224670,879,55\n"
	tr, err := ReadTrace(strings.NewReader(csv), "a.csv", TraceAzure, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		at      time.Duration
		in, out int
	}{{0, 374, 44}, {4314579000, 396, 109}, {4541877000, 879, 55}}
	if tr.Len() != len(want) {
		t.Fatalf("%d rows, want %d", tr.Len(), len(want))
	}
	for i, w := range want {
		at, in, out := tr.Row(i)
		if at != w.at || in != w.in || out != w.out {
			t.Errorf("row %d = (%v, %d, %d), want (%v, %d, %d)", i, at, in, out, w.at, w.in, w.out)
		}
		if tr.HashIDs(i) != nil {
			t.Errorf("row %d has hash ids", i)
		}
	}
}

func TestReadSharedAzureTrace(t *testing.T) {
	tr, _ := sharedAzureTrace(t)
	if tr.Len() != 19366 || tr.Skipped != 0 {
		t.Fatalf("%d rows (%d skipped), want the 19366 rows of the README", tr.Len(), tr.Skipped)
	}
	at, in, out := tr.Row(tr.Len() - 1)
	if at < 50*time.Minute || at > 70*time.Minute || in < 1 || out < 1 {
		t.Fatalf("last row (%v, %d, %d): the trace covers about an hour", at, in, out)
	}
}

func TestReadMooncake(t *testing.T) {
	const jsonl = `{"timestamp": 0, "input_length": 1100, "output_length": 10, "hash_ids": [1, 2, 3]}
{"timestamp": 27.5, "input_length": 600, "output_length": 20, "hash_ids": [1, 7]}
{"timestamp": 1000, "input_length": 5, "output_length": 3}
`
	tr, err := ReadTrace(strings.NewReader(jsonl), "m.jsonl", TraceMooncake, false)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 3 {
		t.Fatalf("%d rows", tr.Len())
	}
	if at, in, out := tr.Row(1); at != 27500*time.Microsecond || in != 600 || out != 20 {
		t.Errorf("row 1 = (%v, %d, %d)", at, in, out)
	}
	for i, want := range [][]uint64{{1, 2, 3}, {1, 7}, nil} {
		if got := tr.HashIDs(i); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("row %d hash ids %v, want %v", i, got, want)
		}
	}
}

// TestTraceErrorsNameFileAndLine: every kind of malformed row is an error naming the file and
// its line; with skip_invalid the row is left out and counted instead.
func TestTraceErrorsNameFileAndLine(t *testing.T) {
	const azHead = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
	const azRow = "2023-11-16 18:15:46.6805900,374,44\n"
	tests := []struct {
		name, format, data string
		line               int
		msg                string
	}{
		{"azure header", TraceAzure, "time,in,out\n" + azRow, 1, "header must be"},
		{"azure columns", TraceAzure, azHead + azRow + "2023-11-16 18:15:47,1\n", 3, "3 comma-separated columns"},
		{"azure extra column", TraceAzure, azHead + azRow + "2023-11-16 18:15:47,1,2,3\n", 3, "3 comma-separated columns"},
		{"azure timestamp", TraceAzure, azHead + "yesterday,1,2\n", 2, "TIMESTAMP"},
		{"azure zero output", TraceAzure, azHead + azRow + "2023-11-16 18:15:47,10,0\n", 3, "GeneratedTokens"},
		{"azure huge input", TraceAzure, azHead + "2023-11-16 18:15:47,99999999,1\n", 2, "ContextTokens"},
		{"azure unsorted", TraceAzure, azHead + azRow + "2023-11-16 18:15:40,10,2\n", 3, "earlier than the row before"},
		{"azure year 0", TraceAzure, azHead + azRow + "0000-01-01 0:00:00,1,1\n", 3, "outside the years 1678 to 2262"},
		{"azure year 2300", TraceAzure, azHead + azRow + "2300-01-01 0:00:00,1,1\n", 3, "outside the years 1678 to 2262"},
		{"azure 292 years apart", TraceAzure, azHead + "1700-01-01 0:00:00,1,1\n2250-01-01 0:00:00,1,1\n", 3, "years after the first row's"},
		{"mooncake not json", TraceMooncake, `{"timestamp": 0, "input_length": 1, "output_length": 1}` + "\n{oops\n", 2, "not a JSON object"},
		{"mooncake missing", TraceMooncake, `{"timestamp": 0, "input_length": 4}` + "\n", 1, "needs timestamp"},
		{"mooncake negative time", TraceMooncake, `{"timestamp": -1, "input_length": 4, "output_length": 1}` + "\n", 1, "timestamp"},
		{"mooncake fraction", TraceMooncake, `{"timestamp": 1, "input_length": 4.5, "output_length": 1}` + "\n", 1, "input_length"},
		{"mooncake hash ids", TraceMooncake, `{"timestamp": 1, "input_length": 600, "output_length": 1, "hash_ids": [1, 2, 3]}` + "\n", 1, "needs only 2"},
		{"mooncake bad hash", TraceMooncake, `{"timestamp": 1, "input_length": 600, "output_length": 1, "hash_ids": [-4]}` + "\n", 1, "hash_ids[0]"},
		{"mooncake two values", TraceMooncake, `{"timestamp": 1, "input_length": 6, "output_length": 1} {}` + "\n", 1, "more than one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTrace(strings.NewReader(tc.data), "f.txt", tc.format, false)
			var re *RowError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a RowError", err)
			}
			if re.File != "f.txt" || re.Line != tc.line || !strings.Contains(re.Msg, tc.msg) {
				t.Fatalf("error %q, want f.txt:%d: …%s…", err, tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("f.txt:%d: ", tc.line)) {
				t.Fatalf("error %q does not start with file:line", err)
			}
			if tc.line == 1 && tc.format == TraceAzure {
				return // a bad header is never skipped
			}
			tr, err := ReadTrace(strings.NewReader(tc.data), "f.txt", tc.format, true)
			switch {
			case err != nil && strings.Contains(err.Error(), "no valid rows (1 skipped)"):
			case err != nil:
				t.Fatalf("with skip_invalid: %v", err)
			case tr.Skipped != 1 || tr.Len() != 1:
				t.Fatalf("with skip_invalid: %d rows, %d skipped; want 1 and 1", tr.Len(), tr.Skipped)
			}
		})
	}
}

func TestTraceFileErrors(t *testing.T) {
	if _, err := LoadTrace(filepath.Join(t.TempDir(), "none.csv"), "", false); err == nil {
		t.Fatal("a missing file loaded")
	}
	if _, err := ReadTrace(strings.NewReader("TIMESTAMP,ContextTokens,GeneratedTokens\n"), "e.csv", TraceAzure, false); err == nil || !strings.Contains(err.Error(), "no rows") {
		t.Fatalf("an empty trace: %v", err)
	}
	if _, err := ReadTrace(strings.NewReader("{}"), "x", "parquet", false); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Fatalf("an unknown format: %v", err)
	}
	long := `{"timestamp": 0, "input_length": 1, "output_length": 1, "pad": "` + strings.Repeat("x", MaxTraceLine) + `"}`
	_, err := ReadTrace(strings.NewReader("\n"+long+"\n"), "l.jsonl", TraceMooncake, true)
	var re *RowError
	if !errors.As(err, &re) || re.Line != 2 || !strings.Contains(re.Msg, "longer than") {
		t.Fatalf("a line too long: %v", err)
	}
}

func TestTraceFormatFor(t *testing.T) {
	for path, want := range map[string]string{"a/b.csv": TraceAzure, "x.JSONL": TraceMooncake, "x.json": "", "x": ""} {
		if got := TraceFormatFor(path); got != want {
			t.Errorf("TraceFormatFor(%q) = %q, want %q", path, got, want)
		}
	}
}

func mustTrace(t testing.TB, format, data string) *Trace {
	t.Helper()
	tr, err := ReadTrace(strings.NewReader(data), "t", format, false)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const smallMooncake = `{"timestamp": 0, "input_length": 10, "output_length": 1}
{"timestamp": 100, "input_length": 20, "output_length": 2}
{"timestamp": 400, "input_length": 30, "output_length": 3}
{"timestamp": 700, "input_length": 40, "output_length": 4}
`

func TestReplayScalesAndOffsets(t *testing.T) {
	tr := mustTrace(t, TraceMooncake, smallMooncake)
	r, err := NewReplay(tr, 10, 50*time.Millisecond, false)
	if err != nil {
		t.Fatal(err)
	}
	// Rows from 50 ms on, from the start point, ten times faster.
	p := r.Pacer()
	for n, want := range []time.Duration{5 * time.Millisecond, 35 * time.Millisecond, 65 * time.Millisecond} {
		if at, ok := p.Next(uint64(n)); !ok || at != want {
			t.Errorf("Next(%d) = %v, %v; want %v", n, at, ok, want)
		}
	}
	if _, ok := p.Next(3); ok {
		t.Error("the pacer goes on past the last row")
	}
	plan := r.Plan()
	if plan.Loop || len(plan.Phases) != 1 || plan.Phases[0].Duration != 0 || plan.Replay != r {
		t.Fatalf("a replay without loop: plan %+v, want one open-ended phase", plan)
	}
	if r.Row(0) != 1 || r.Row(2) != 3 || r.Row(3) != 1 {
		t.Errorf("rows %d %d %d, want 1 3 1", r.Row(0), r.Row(2), r.Row(3))
	}
}

// TestReplayLoops: a looping replay's pass c is pass 0 shifted by c × span, as the run loop
// starts it (phase c at c × Duration), and request n of pass c sends row n mod rows.
func TestReplayLoops(t *testing.T) {
	tr := mustTrace(t, TraceMooncake, smallMooncake)
	r, err := NewReplay(tr, 2, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	// Span: the last row (700 ms) plus the mean gap (700/3 ms), halved.
	spanMs := (700.0 + 700.0/3) / 2
	wantSpan := time.Duration(math.Round(spanMs * float64(time.Millisecond)))
	if d := r.Span() - wantSpan; d < -1 || d > 1 {
		t.Fatalf("span %v, want %v", r.Span(), wantSpan)
	}
	plan := r.Plan()
	if !plan.Loop || len(plan.Phases) != 1 || plan.Phases[0].Duration != r.Span() {
		t.Fatalf("plan %+v, want one looping phase of the span", plan)
	}
	var first []time.Duration
	src := NewReplaySource(r, ReplaySourceOptions{Seed: 1})
	n := uint64(0)
	for cycle := uint64(0); cycle < 3; cycle++ {
		ph := plan.Phases[0]
		start := time.Duration(cycle) * ph.Duration
		p := ph.Arrivals(cycle)
		for i := uint64(0); ; i++ {
			at, ok := p.Next(i)
			if !ok || at >= ph.Duration {
				break
			}
			if cycle == 0 {
				first = append(first, at)
			} else if want := first[i] + time.Duration(cycle)*r.Span(); start+at != want {
				t.Errorf("cycle %d request %d at %v, want %v", cycle, i, start+at, want)
			}
			if got, want := src.Next(n).PromptTokens, 10*(int(i)+1); got != want {
				t.Errorf("request %d (cycle %d) has %d prompt tokens, want row %d's %d", n, cycle, got, i, want)
			}
			n++
		}
	}
	if len(first) != 4 || n != 12 {
		t.Fatalf("%d arrivals per pass, %d in all; want 4 and 12", len(first), n)
	}
	if rate := r.Rate(); rate < 4/wantSpan.Seconds()*0.999 || rate > 4/wantSpan.Seconds()*1.001 {
		t.Errorf("rate %v, want rows/span", rate)
	}
}

func TestReplayErrors(t *testing.T) {
	tr := mustTrace(t, TraceMooncake, smallMooncake)
	one := mustTrace(t, TraceMooncake, `{"timestamp": 5, "input_length": 1, "output_length": 1}`)
	same := mustTrace(t, TraceMooncake, "{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1}\n{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1}\n")
	for _, tc := range []struct {
		name  string
		tr    *Trace
		scale float64
		start time.Duration
		loop  bool
		msg   string
	}{
		{"scale 0", tr, 0, 0, false, "time_scale"},
		{"scale huge", tr, 1e7, 0, false, "time_scale"},
		{"negative offset", tr, 1, -1, false, "start_offset"},
		{"offset past the end", tr, 1, time.Second, false, "past the last row"},
		{"one row loops", one, 1, 0, true, "cannot loop"},
		{"no time loops", same, 1, 0, true, "cannot loop"},
	} {
		if _, err := NewReplay(tc.tr, tc.scale, tc.start, tc.loop); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one about %s", tc.name, err, tc.msg)
		}
	}
	if _, err := NewReplay(one, 1, 0, false); err != nil {
		t.Errorf("one row without loop: %v", err)
	}
}

// TestReplaySourceLengths: every request carries its row's lengths, with a prompt of exactly
// that many words (the simulator's tokens), unique per request with cache busting and a prefix
// of one sequence without.
func TestReplaySourceLengths(t *testing.T) {
	tr := mustTrace(t, TraceMooncake, smallMooncake)
	r, err := NewReplay(tr, 1, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, bust := range []bool{true, false} {
		src := NewReplaySource(r, ReplaySourceOptions{CacheBust: bust, Seed: 9})
		prev := ""
		for n := uint64(0); n < 8; n++ {
			req := src.Next(n)
			_, in, out := tr.Row(r.Row(n))
			if req.PromptTokens != in || countWords(req.Prompt) != in || req.MaxTokens != out {
				t.Fatalf("cache_bust %v request %d: %d tokens (%d words), max %d; want %d and %d",
					bust, n, req.PromptTokens, countWords(req.Prompt), req.MaxTokens, in, out)
			}
			if req.Prompt != src.Next(n).Prompt {
				t.Fatal("the source is not a function of n")
			}
			switch {
			case bust && !strings.HasPrefix(req.Prompt, noncePrefix):
				t.Fatalf("request %d has no nonce: %q", n, req.Prompt[:20])
			case !bust && prev != "" && !strings.HasPrefix(req.Prompt, prev) && !strings.HasPrefix(prev, req.Prompt):
				t.Fatalf("without cache busting, prompts %d and %d are not prefixes of one sequence", n-1, n)
			}
			prev = req.Prompt
		}
		if bust && src.Next(0).Prompt == src.Next(4).Prompt {
			t.Fatal("cache busting repeats row 0's prompt in the second pass")
		}
	}
}

// TestMooncakeSharedPrefix: requests whose rows share leading hash ids share exactly those
// blocks (512 words each) as a prompt prefix, and no more.
func TestMooncakeSharedPrefix(t *testing.T) {
	const jsonl = `{"timestamp": 0, "input_length": 1536, "output_length": 8, "hash_ids": [11, 12, 13]}
{"timestamp": 10, "input_length": 1500, "output_length": 8, "hash_ids": [11, 12, 14]}
{"timestamp": 20, "input_length": 700, "output_length": 8, "hash_ids": [11, 15]}
{"timestamp": 30, "input_length": 1200, "output_length": 8, "hash_ids": [11, 12]}
{"timestamp": 40, "input_length": 300, "output_length": 8, "hash_ids": [99]}
`
	tr := mustTrace(t, TraceMooncake, jsonl)
	r, err := NewReplay(tr, 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	src := NewReplaySource(r, ReplaySourceOptions{CacheBust: true, Seed: 3})
	words := make([][]string, tr.Len())
	for n := range words {
		req := src.Next(uint64(n))
		words[n] = strings.Fields(req.Prompt)
		if _, in, _ := tr.Row(n); len(words[n]) != in || req.PromptTokens != in {
			t.Fatalf("row %d: %d words, %d tokens; want %d", n, len(words[n]), req.PromptTokens, in)
		}
	}
	block := func(n, k int) string {
		end := min((k+1)*MooncakeBlockTokens, len(words[n]))
		return strings.Join(words[n][k*MooncakeBlockTokens:end], " ")
	}
	for a := range words {
		for b := range words {
			if a == b {
				continue
			}
			ha, hb := tr.HashIDs(a), tr.HashIDs(b)
			shared := 0
			for shared < len(ha) && shared < len(hb) && ha[shared] == hb[shared] {
				shared++
			}
			// The shared blocks are equal word for word (a shorter last block is a prefix).
			for k := 0; k < shared; k++ {
				ba, bb := block(a, k), block(b, k)
				if !strings.HasPrefix(ba, bb) && !strings.HasPrefix(bb, ba) {
					t.Errorf("rows %d and %d share hash id %d but not block %d", a, b, ha[k], k)
				}
			}
			// The first block with different hash ids differs.
			if shared < len(ha) && shared < len(hb) && block(a, shared) == block(b, shared) {
				t.Errorf("rows %d and %d have different hash ids at block %d but the same words", a, b, shared)
			}
		}
	}
	// Spelled out for the first pair: exactly 1024 words in common, then a different block.
	common := 0
	for common < len(words[0]) && common < len(words[1]) && words[0][common] == words[1][common] {
		common++
	}
	if common < 2*MooncakeBlockTokens || block(0, 2) == block(1, 2) {
		t.Errorf("rows 0 and 1 share %d leading words, want the 1024 of hash ids 11 and 12 and not block 3", common)
	}
	// Another seed gives other blocks: the words come from (seed, hash id).
	other := NewReplaySource(r, ReplaySourceOptions{CacheBust: true, Seed: 4}).Next(0).Prompt
	if other[:200] == src.Next(0).Prompt[:200] {
		t.Error("the blocks do not depend on the seed")
	}
}

func BenchmarkTraceNext(b *testing.B) {
	tr, _ := sharedAzureTrace(b)
	r, err := NewReplay(tr, 20, 0, true)
	if err != nil {
		b.Fatal(err)
	}
	p := r.Pacer()
	rows := uint64(r.Rows())
	b.ReportAllocs()
	b.ResetTimer()
	var last time.Duration
	for i := 0; i < b.N; i++ {
		at, ok := p.Next(uint64(i) % rows)
		if !ok {
			b.Fatal("the pacer ended inside the trace")
		}
		last = at
	}
	if last < 0 {
		b.Fatal(last)
	}
}

// BenchmarkTraceLoad reads the shared trace (19,366 rows) and reports the bytes the compact
// form keeps per 20,000 rows.
func BenchmarkTraceLoad(b *testing.B) {
	_, path := sharedAzureTrace(b)
	benchmarkLoad(b, path)
}

// BenchmarkTraceLoadMooncake loads a generated 20,000-row Mooncake trace with 15 hash ids a
// row (7,500-token prompts in 512-token blocks), the shape of Mooncake's published traces.
func BenchmarkTraceLoadMooncake(b *testing.B) {
	path := filepath.Join(b.TempDir(), "mooncake.jsonl")
	var rows strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&rows, `{"timestamp": %d, "input_length": 7500, "output_length": 300, "hash_ids": [`, i*50)
		for k := range 15 {
			if k > 0 {
				rows.WriteString(", ")
			}
			fmt.Fprintf(&rows, "%d", (i/4)*15+k) // groups of 4 rows share their blocks
		}
		rows.WriteString("]}\n")
	}
	if err := os.WriteFile(path, []byte(rows.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	benchmarkLoad(b, path)
}

// benchmarkLoad loads path b.N times and reports the kept trace's size per 20,000 rows twice:
// from its slices' capacities (bytes/20000rows) and measured as the live heap it adds, after
// a collection before and after the load (heap-bytes/20000rows).
func benchmarkLoad(b *testing.B, path string) {
	b.ReportAllocs()
	var tr *Trace
	for i := 0; i < b.N; i++ {
		var err error
		if tr, err = LoadTrace(path, "", false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	kept := 8*cap(tr.at) + 4*cap(tr.in) + 4*cap(tr.out) + 4*cap(tr.hashAt) + 8*cap(tr.hashes)
	b.ReportMetric(float64(kept)/float64(tr.Len())*20000, "bytes/20000rows")
	tr = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr, err := LoadTrace(path, "", false)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(tr.Len())*20000, "heap-bytes/20000rows")
	runtime.KeepAlive(tr)
}

// TestTracePlanFor: the registry builds a trace plan from the file, with the defaults the
// config extension fills in; a bad row is an error naming the file and line.
func TestTracePlanFor(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(good, []byte(smallMooncake), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(smallMooncake+"{\"timestamp\": 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tgt := &config.Target{Traffic: config.Traffic{Pacer: KindTrace, Trace: &config.Trace{File: good, TimeScale: 4}}}
	ConfigExtension{}.Defaults(tgt, func(f string) bool { return f == "traffic.trace.time_scale" })
	if tr := tgt.Traffic.Trace; tr.Format != TraceMooncake || tr.Loop == nil || !*tr.Loop || tr.TimeScale != 4 || !tgt.Request.IgnoreEOS {
		t.Fatalf("defaults: %+v, ignore_eos %v", tr, tgt.Request.IgnoreEOS)
	}
	p, err := PlanFor(tgt.Traffic, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Replay == nil || !p.Loop || p.Replay.Rows() != 4 {
		t.Fatalf("plan %+v", p)
	}
	if at, _ := p.Phases[0].Arrivals(0).Next(3); at != 175*time.Millisecond {
		t.Fatalf("row 3 at %v, want 700 ms / 4", at)
	}
	tgt.Traffic.Trace.File = bad
	var re *RowError
	if _, err := PlanFor(tgt.Traffic, 1); !errors.As(err, &re) || re.File != bad || re.Line != 5 {
		t.Fatalf("a bad row: %v, want %s:5", err, bad)
	}
	tgt.Traffic.Trace.SkipInvalid = true
	if p, err := PlanFor(tgt.Traffic, 1); err != nil || p.Replay.Trace().Skipped != 1 {
		t.Fatalf("skip_invalid: %v", err)
	}
}
