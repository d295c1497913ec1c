package prober

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// cannedStream is a vLLM chat stream with continuous usage (what the simulator and vLLM send
// for inferprobe's requests): a role chunk, n one-token chunks, the last with finish_reason
// length, a usage-only chunk and [DONE], each SSE event in an HTTP chunk of its own.
func cannedStream(n int) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := func(s string) { fmt.Fprintf(&b, "%x\r\n%s\r\n", len(s), s) }
	const head = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,`
	chunk(head + `"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":32,"total_tokens":32,"completion_tokens":0}}` + "\n\n")
	for i := 1; i <= n; i++ {
		finish := "null"
		if i == n {
			finish = `"length"`
		}
		chunk(fmt.Sprintf(head+`"delta":{"content":" tok%d"},"logprobs":null,"finish_reason":%s}],"usage":{"prompt_tokens":32,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n", i, finish, 32+i, i))
	}
	chunk(fmt.Sprintf(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":32,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n", 32+n, n))
	chunk("data: [DONE]\n\n")
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// startCannedServer serves response to every request on 127.0.0.1, keeping connections alive
// and allocating nothing per request, so that a benchmark's allocations are the client's
// alone (an httptest server's would be counted with them). It reads each request's header and
// Content-Length body and answers with the same bytes.
func startCannedServer(tb testing.TB, response []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serveCanned(c, response) })
		}
	})
	tb.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

var contentLength = []byte("\r\ncontent-length:")

func serveCanned(c net.Conn, response []byte) {
	buf := make([]byte, 64<<10)
	lower := make([]byte, 64<<10)
	filled := 0
	for {
		n, err := c.Read(buf[filled:])
		if err != nil {
			return
		}
		filled += n
		for {
			end := bytes.Index(buf[:filled], []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			head := lower[:end]
			for i, ch := range buf[:end] {
				if 'A' <= ch && ch <= 'Z' {
					ch += 'a' - 'A'
				}
				head[i] = ch
			}
			size := 0
			if i := bytes.Index(head, contentLength); i >= 0 {
				v := head[i+len(contentLength):]
				if j := bytes.IndexByte(v, '\r'); j >= 0 {
					v = v[:j]
				}
				size, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
			total := end + 4 + size
			if total > filled {
				break
			}
			if _, err := c.Write(response); err != nil {
				return
			}
			filled = copy(buf, buf[total:filled])
		}
		if filled == len(buf) {
			return // a request larger than the buffer: not one of ours
		}
	}
}

// benchTarget is a validated-looking chat target for the per-request benchmarks.
func benchTarget(url string) config.Target {
	return config.Target{
		Name: "t", URL: url, Path: "/v1/chat/completions", API: APIOpenAIChat, Model: "m",
		Timeout: 30 * time.Second, ConnectTimeout: time.Second, FirstByteTimeout: 30 * time.Second,
		IdleTimeout: 10 * time.Second, MaxResponseBytes: 1 << 20,
		Traffic: config.Traffic{MaxInFlight: 16},
		Request: config.Request{MaxTokens: 16, IgnoreEOS: true},
	}
}

// benchRequest is a 32-word prompt, as bench-load sends.
func benchRequest() traffic.Request {
	return traffic.Request{Prompt: strings.TrimSpace(strings.Repeat("word ", 32)), PromptTokens: 32}
}

// BenchmarkClientRequest is one whole 16-token streamed request through the target's client
// over loopback, against a server that allocates nothing: allocs/op are the client's own.
func BenchmarkClientRequest(b *testing.B) {
	url := startCannedServer(b, cannedStream(16))
	c, err := NewClient(benchTarget(url))
	if err != nil {
		b.Fatal(err)
	}
	defer c.(interface{ Close() }).Close()
	rec := &Record{Gaps: make([]time.Duration, 0, 64), GapTokens: make([]int32, 0, 64)}
	req := benchRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rec.Reset()
		c.Do(ctx, req, rec)
		if rec.Result != ResultSuccess || rec.OutputTokens != 16 {
			b.Fatalf("result %s (%v), %d tokens", rec.Result, rec.Err, rec.OutputTokens)
		}
	}
}

// BenchmarkRunnerSend is one request through the run loop's per-request path (pooled record,
// warmup gate, started and finished events, the client) with a queued observer behind it, as
// the engine wires one, against the same allocation-free server.
func BenchmarkRunnerSend(b *testing.B) {
	url := startCannedServer(b, cannedStream(16))
	c, err := NewClient(benchTarget(url))
	if err != nil {
		b.Fatal(err)
	}
	defer c.(interface{ Close() }).Close()
	var finished int
	q := NewQueue(ObserverFunc(func(ev Event) {
		if ev.Kind == EventRequestFinished && ev.Record.Result == ResultSuccess {
			finished++
		}
	}), 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { q.Run(ctx) })
	r := NewRunner(RunnerConfig{
		Target: &TargetInfo{Name: "t", Model: "m"}, Client: c,
		Gate:     NewGate(WarmupConfig{}, nil),
		Observer: q, MaxInFlight: 16,
	})
	req := benchRequest()
	b.ReportAllocs()
	n := uint64(0)
	for b.Loop() {
		if _, ok, _ := r.send(ctx, n, 0, time.Now(), req, 0); !ok {
			b.Fatal("request failed")
		}
		n++
	}
	b.StopTimer()
	q.Close(ctx)
	wg.Wait()
	if finished != int(n) {
		b.Fatalf("%d of %d requests reached the observer", finished, n)
	}
}
