package prober

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/traffic"
)

// benchStream is one vLLM response of n one-token chunks, with or without per-chunk usage.
func benchStream(n int, continuous bool) []byte {
	var b strings.Builder
	if continuous {
		counts := make([]int, n)
		for i := range counts {
			counts[i] = 1
		}
		return []byte(strings.Join(vllmContinuous(counts...), ""))
	}
	b.WriteString(vllmChat[0])
	for range n {
		b.WriteString(vllmChat[1])
	}
	b.WriteString(vllmChat[4] + vllmChat[5] + vllmChat[6])
	return []byte(b.String())
}

// BenchmarkStreamPerChunk measures the per-chunk path of a stream already received: SSE framing,
// JSON decoding of the chunk, and the record update (gap, token count), reported per chunk.
func BenchmarkStreamPerChunk(b *testing.B) {
	for _, continuous := range []bool{false, true} {
		name := "usage_at_end"
		if continuous {
			name = "continuous_usage"
		}
		b.Run(name, func(b *testing.B) {
			const n = 256
			body := benchStream(n, continuous)
			c, err := NewOpenAIClient(testTarget("http://127.0.0.1:1", APIOpenAIChat))
			if err != nil {
				b.Fatal(err)
			}
			r := bytes.NewReader(body)
			sse := NewSSEReader(r, maxEventBytes)
			rec := &Record{Gaps: make([]time.Duration, 0, n), GapTokens: make([]int32, 0, n)}
			ctx := context.Background()
			ev := &StreamEvent{}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r.Reset(body)
				sse.Reset(r)
				rec.Reset()
				rec.Start = time.Now()
				c.readStream(ctx, nil, sse, ev, rec)
				if rec.Result != ResultSuccess || rec.Chunks != n {
					b.Fatalf("result %s, %d chunks", rec.Result, rec.Chunks)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/chunk")
		})
	}
}

// BenchmarkRecordChunk is the record's share of the per-chunk path: what readStream does per
// token chunk once the chunk is decoded (the gap and its token count appended to pooled
// slices). It must not allocate.
func BenchmarkRecordChunk(b *testing.B) {
	rec := &Record{Gaps: make([]time.Duration, 0, 64), GapTokens: make([]int32, 0, 64)}
	b.ReportAllocs()
	for i := range b.N {
		if i%64 == 0 {
			rec.Reset()
		}
		rec.Gaps = append(rec.Gaps, time.Duration(i))
		rec.GapTokens = append(rec.GapTokens, 1)
		rec.LastToken = time.Duration(i)
		rec.Chunks++
	}
}

// BenchmarkStream is one whole 16-token streamed request over loopback for each flavour: the
// golden stream with its token event repeated 16 times, client and in-process server.
func BenchmarkStream(b *testing.B) {
	tokenEvent := map[string]int{APIOpenAIResponses: 4, APIAnthropicMessages: 3, APITGI: 0, APITritonGenerate: 0}
	for _, api := range append([]string{APIOpenAIChat}, httpFlavours...) {
		b.Run(api, func(b *testing.B) {
			var events []string
			if api == APIOpenAIChat {
				events = []string{vllmChat[0]}
				for range 16 {
					events = append(events, vllmChat[1])
				}
				events = append(events, vllmChat[4], vllmChat[5], vllmChat[6])
			} else {
				g, i := golden(b, api), tokenEvent[api]
				events = append(events, g[:i]...)
				for range 16 {
					events = append(events, g[i])
				}
				events = append(events, g[i+1:]...)
				if api != APITritonGenerate && api != APITGI {
					events = slicesDelete(events, i+16) // the golden's other token events
				}
			}
			body := strings.Join(events, "")
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", sse)
				_, _ = io.WriteString(w, body)
			}))
			defer srv.Close()
			c, err := NewClient(flavourTarget(srv.URL, api))
			if err != nil {
				b.Fatal(err)
			}
			rec := &Record{}
			req := traffic.Request{Prompt: strings.Repeat("word ", 128)}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rec.Reset()
				c.Do(context.Background(), req, rec)
				if rec.Result != ResultSuccess || rec.Chunks < 16 {
					b.Fatal(rec.Result, rec.Chunks, rec.Err)
				}
			}
		})
	}
}

// slicesDelete drops events[i] when it is a token event left over from the golden.
func slicesDelete(events []string, i int) []string {
	if i < len(events) && (strings.Contains(events[i], "_delta") || strings.Contains(events[i], "text_output")) {
		return append(events[:i:i], events[i+1:]...)
	}
	return events
}

// BenchmarkDecodeChunk decodes one vLLM chunk with continuous usage (about 230 bytes) warm,
// and with 1 MiB of other memory touched before each decode, as a prober's reading goroutine
// finds its caches after the kernel and other goroutines ran between two chunks; "touch-only"
// is that touching alone, to subtract.
func BenchmarkDecodeChunk(b *testing.B) {
	chunk := []byte(strings.TrimSuffix(strings.TrimPrefix(vllmContinuous(1, 1)[1], "data: "), "\n\n"))
	other := make([]byte, 1<<20)
	f := &openaiFlavour{}
	for _, mode := range []string{"warm", "touch-only", "touch+decode"} {
		b.Run(mode, func(b *testing.B) {
			var ev StreamEvent
			for range b.N {
				if mode != "warm" {
					for i := 0; i < len(other); i += 64 {
						other[i]++
					}
				}
				if mode != "touch-only" {
					if err := f.decode(chunk, false, false, false, &ev); err != nil || !ev.HasUsage {
						b.Fatalf("decode: %v (usage %v)", err, ev.HasUsage)
					}
				}
			}
		})
	}
}
