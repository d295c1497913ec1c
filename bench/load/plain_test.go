package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/traffic"
)

// TestPlainClient: the reference client sends the body the OpenAI client encodes for the
// request to the chat path, reads the answer to its end and classes the status.
func TestPlainClient(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies [][]byte
		paths  []string
	)
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, paths = append(bodies, b), append(paths, r.URL.Path)
		code := status
		mu.Unlock()
		w.WriteHeader(code)
		for range 3 {
			_, _ = io.WriteString(w, "data: {}\n\n")
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	cfg, err := loadConfig(srv.URL, config.Stage{Rate: 1, Duration: time.Second}, 4, 8, 10)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newPlainClient(cfg.Targets[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.(*plainClient).Close()
	enc, err := prober.NewOpenAIClient(cfg.Targets[0])
	if err != nil {
		t.Fatal(err)
	}
	req := traffic.Request{Prompt: "hello there", PromptTokens: 2}
	want, err := enc.Body(req)
	if err != nil {
		t.Fatal(err)
	}

	var rec prober.Record
	c.Do(context.Background(), req, &rec)
	if rec.Result != prober.ResultSuccess || rec.Status != 200 || rec.End <= 0 || rec.Start.IsZero() {
		t.Fatalf("record: result %q status %d end %v start %v, want a timed success", rec.Result, rec.Status, rec.End, rec.Start)
	}
	mu.Lock()
	if len(bodies) != 1 || string(bodies[0]) != string(want) || paths[0] != "/v1/chat/completions" {
		t.Errorf("server got %d requests, path %q, body %q; want one to /v1/chat/completions with %q", len(bodies), paths, bodies, want)
	}
	status = http.StatusServiceUnavailable
	mu.Unlock()

	rec = prober.Record{}
	c.Do(context.Background(), req, &rec)
	if rec.Result != prober.ResultHTTP5xx || rec.Status != http.StatusServiceUnavailable {
		t.Errorf("a 503: result %q status %d, want %q 503", rec.Result, rec.Status, prober.ResultHTTP5xx)
	}
}
