package simulator

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discardWriter is a minimal streaming ResponseWriter, so the handler benchmark measures
// the simulator and not a recorder's buffering.
type discardWriter struct {
	h http.Header
	n int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// benchConfig removes every wait, so a benchmark measures CPU work per request.
func benchConfig() Config {
	c := DefaultConfig()
	c.TTFTBase, c.TTFTPerPromptToken, c.ITL, c.ITLJitter = 0, 0, 0, 0
	c.MaxNumSeqs = 4096
	c.StatsSize = 1000
	return c
}

const benchBody = `{"model":"inferprobe-sim","prompt":"the quick brown fox jumps over the lazy dog",` +
	`"max_tokens":16,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}`

// BenchmarkStreamHandler is one full streamed completions request (16 tokens, usage,
// [DONE]) through the handler, without a network.
func BenchmarkStreamHandler(b *testing.B) {
	s, err := New(benchConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v1/completions", strings.NewReader(benchBody))
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.n == 0 {
		b.Fatal("nothing written")
	}
}

// BenchmarkStreamLoopback is the same request over loopback HTTP with a client reading every
// byte, in parallel: the cost of one request on the machine, client included.
func BenchmarkStreamLoopback(b *testing.B) {
	_, ts := startServer(b, benchConfig())
	client := ts.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, ts.URL+"/v1/completions", strings.NewReader(benchBody))
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || n < 1000 {
				b.Errorf("status %d, %d bytes", resp.StatusCode, n)
				return
			}
		}
	})
}
