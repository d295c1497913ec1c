package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTransport() *Transport {
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &Transport{Dial: d.DialContext, MaxIdle: 4, IdleTimeout: 10 * time.Second}
}

func post(t *testing.T, tr *Transport, ctx context.Context, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return tr.RoundTrip(req)
}

// postAndDrain posts a small body to url and reads the answer to its end.
func postAndDrain(t *testing.T, tr *Transport, ctx context.Context, url string) {
	t.Helper()
	resp, err := post(t, tr, ctx, url, "{}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// countConns counts the connections a test server accepted.
func countConns(srv *httptest.Server) *atomic.Int32 {
	var n atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

// TestAgainstNetHTTPServer exchanges requests with Go's own server in each of its body framings
// and checks bodies, statuses, the request the server saw and keep-alive reuse.
func TestAgainstNetHTTPServer(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Length", fmt.Sprint(r.ContentLength))
		w.Header().Set("X-Echo-Agent", r.UserAgent())
		switch r.URL.Path {
		case "/stream": // chunked: flushed events
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 5 {
				fmt.Fprintf(w, "data: %d %s\n\n", i, got)
				w.(http.Flusher).Flush()
			}
		case "/length":
			w.Header().Set("Content-Length", fmt.Sprint(len(got)))
			_, _ = w.Write(got)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/error":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write(got)
		}
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()

	cases := []struct {
		path, want string
		status     int
		reusable   bool
	}{
		{"/stream", "data: 0 hi\n\ndata: 1 hi\n\ndata: 2 hi\n\ndata: 3 hi\n\ndata: 4 hi\n\n", 200, true},
		{"/length", "hi", 200, true},
		{"/empty", "", 204, true},
		{"/error", "overloaded\n", 503, true},
		{"/stream", "data: 0 hi\n\ndata: 1 hi\n\ndata: 2 hi\n\ndata: 3 hi\n\ndata: 4 hi\n\n", 200, true},
		{"/close", "hi", 200, false},
	}
	for i, c := range cases {
		resp, err := post(t, tr, context.Background(), srv.URL+c.path, "hi")
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != c.want || resp.StatusCode != c.status {
			t.Fatalf("%s: status %d body %q err %v, want %d %q", c.path, resp.StatusCode, body, err, c.status, c.want)
		}
		if resp.Header.Get("X-Echo-Length") != "2" || resp.Header.Get("X-Echo-Agent") != "Go-http-client/1.1" {
			t.Errorf("%s: the server saw Content-Length %s, User-Agent %q", c.path, resp.Header.Get("X-Echo-Length"), resp.Header.Get("X-Echo-Agent"))
		}
		if resp.Close == c.reusable {
			t.Errorf("%s: Close %v, want %v", c.path, resp.Close, !c.reusable)
		}
		if got := conns.Load(); got != 1 {
			t.Fatalf("after request %d (%s): %d connections, want the first one reused", i, c.path, got)
		}
	}
	if tr.IdleConns() != 0 {
		t.Errorf("the connection the server closed is still idle")
	}
	postAndDrain(t, tr, context.Background(), srv.URL+"/length")
	if conns.Load() != 2 {
		t.Errorf("after Connection: close, %d connections, want a second one", conns.Load())
	}
}

// rawServer answers each connection's requests with the next canned response (raw bytes, as a
// server could send them), then closes the connection if closeAfter.
type rawServer struct {
	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	heads []string // request heads received
}

func newRawServer(t *testing.T, closeAfter bool, responses ...string) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{l: l}
	s.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					var head bytes.Buffer
					_ = req.Header.Write(&head)
					s.mu.Lock()
					s.heads = append(s.heads, req.Method+" "+req.RequestURI+" "+req.Host+"\n"+head.String())
					if len(responses) == 0 {
						s.mu.Unlock()
						return
					}
					resp := responses[0]
					responses = responses[1:]
					s.mu.Unlock()
					if _, err := io.WriteString(c, resp); err != nil {
						return
					}
					if closeAfter {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() { l.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) url() string { return "http://" + s.l.Addr().String() }

// TestWireFormats reads documented response shapes (RFC 9112) and broken ones from a raw server.
func TestWireFormats(t *testing.T) {
	cases := []struct {
		name, response string
		status         int
		body           string
		err            string // in RoundTrip or the body read; "" for none
		close          bool
	}{
		{name: "chunked with extensions and trailers (RFC 9112 7.1)",
			response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n",
			status:   200, body: "Wikipedia in\r\n\r\nchunks."},
		{name: "bare LF line ends",
			response: "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", status: 200, body: "abc"},
		{name: "obsolete line folding is joined",
			response: "HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "103 Early Hints before the answer",
			response: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "no reason phrase",
			response: "HTTP/1.1 429\r\nContent-Length: 0\r\n\r\n", status: 429},
		{name: "HTTP/1.0 without length reads to close",
			response: "HTTP/1.0 200 OK\r\n\r\nuntil close", status: 200, body: "until close", close: true},
		{name: "Transfer-Encoding overrides Content-Length, and the connection is not reused",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", status: 200, body: "hi", close: true},
		{name: "a later HTTP/1.x minor reads as 1.1",
			response: "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nhi", status: 200, body: "hi"},
		{name: "an unregistered status class is the caller's",
			response: "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", status: 600},
		{name: "too many informational answers",
			response: strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 6) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", err: "informational"},
		{name: "repeated equal Content-Length",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi", status: 200, body: "hi"},
		{name: "differing Content-Length", response: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", err: "differing Content-Length"},
		{name: "status line not HTTP", response: "ICY 200 OK\r\n\r\n", err: "not HTTP/1.x"},
		{name: "status code not three digits", response: "HTTP/1.1 20 OK\r\n\r\n", err: "bad status code"},
		{name: "space before the colon", response: "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", err: "header line"},
		{name: "101 unasked", response: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", err: "101"},
		{name: "bad chunk size", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n", err: "chunk size"},
		{name: "signed chunk size", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nhi\r\n0\r\n\r\n", err: "chunk size"},
		{name: "chunk longer than its size", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiya\r\n0\r\n\r\n", err: "longer than its size"},
		{name: "chunked body cut short", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhi", err: "unexpected EOF"},
		{name: "length body cut short", response: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhi", err: "unexpected EOF"},
		{name: "head cut short", response: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n", err: "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newRawServer(t, true, c.response)
			tr := newTransport()
			defer tr.CloseIdleConnections()
			resp, err := post(t, tr, context.Background(), srv.url()+"/v1/chat/completions", "{}")
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status || string(body) != c.body || resp.Close != c.close {
				t.Errorf("status %d body %q close %v, want %d %q %v", resp.StatusCode, body, resp.Close, c.status, c.body, c.close)
			}
			if c.name == "obsolete line folding is joined" && resp.Header.Get("X-Long") != "a b" {
				t.Errorf("folded field %q, want %q", resp.Header.Get("X-Long"), "a b")
			}
		})
	}
}

// TestHeadAndBodyAfterEnd: a HEAD answer has no body whatever its fields say; a body's error
// stays, and a read after Close says so.
func TestHeadAndBodyAfterEnd(t *testing.T) {
	srv := newRawServer(t, false, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	tr := newTransport()
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodHead, srv.url(), nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 0 {
		t.Fatalf("HEAD body %q %v, want none", b, err)
	}
	resp, err = post(t, tr, context.Background(), srv.url(), "{}")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 4)); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Errorf("read after Close: %v", err)
	}

	srv = newRawServer(t, true, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhi")
	resp, err = post(t, tr, context.Background(), srv.url(), "{}")
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := io.ReadAll(resp.Body)
	_, err2 := resp.Body.Read(make([]byte, 4))
	if !errors.Is(err1, io.ErrUnexpectedEOF) || !errors.Is(err2, io.ErrUnexpectedEOF) {
		t.Errorf("truncated body: %v, then %v; want ErrUnexpectedEOF both times", err1, err2)
	}
}

// TestCloseDuringRead: Close from another goroutine ends a blocked Read, and the connection is
// not pooled.
func TestCloseDuringRead(t *testing.T) {
	srv := stallingServer(t)
	tr := newTransport()
	resp, err := post(t, tr, context.Background(), srv.URL+"/body", "{}")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, func() { resp.Body.Close() })
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a Read that Close ended reported a clean end")
	}
	if tr.IdleConns() != 0 {
		t.Error("a closed body's connection went back to the pool")
	}
}

func TestHeaderLimit(t *testing.T) {
	srv := newRawServer(t, true, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 40<<10)+"\r\nContent-Length: 0\r\n\r\n")
	tr := newTransport()
	tr.MaxHeaderBytes = 32 << 10
	if _, err := post(t, tr, context.Background(), srv.url(), "{}"); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("err %v, want the header limit", err)
	}
	// A long line under the limit is read whole, across the reader's buffer.
	srv = newRawServer(t, true, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 40<<10)+"\r\nContent-Length: 0\r\n\r\n")
	tr.MaxHeaderBytes = 0
	resp, err := post(t, tr, context.Background(), srv.url(), "{}")
	if err != nil || len(resp.Header.Get("X-Big")) != 40<<10 {
		t.Fatalf("err %v, field of %d bytes", err, len(resp.Header.Get("X-Big")))
	}
}

// TestRequestWire checks the request the transport writes, and that framing and injection
// stay the transport's.
func TestRequestWire(t *testing.T) {
	srv := newRawServer(t, false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	tr := newTransport()
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, srv.url()+"/v2/models/m%2Fx/generate?a=1", strings.NewReader("body"))
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("User-Agent", "probe")
	req.Header.Set("X-Spaced", " v ")
	req.Header.Set("Content-Length", "999")
	req.Header.Set("Transfer-Encoding", "gzip")
	req.Close = true
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv.mu.Lock()
	head := srv.heads[0]
	srv.mu.Unlock()
	for _, want := range []string{"POST /v2/models/m%2Fx/generate?a=1 " + srv.l.Addr().String(), "Authorization: Bearer k", "User-Agent: probe", "X-Spaced: v\r\n", "Connection: close"} {
		if !strings.Contains(head, want) {
			t.Errorf("request head lacks %q:\n%s", want, head)
		}
	}
	if strings.Contains(head, "999") || strings.Contains(head, "gzip") {
		t.Errorf("a caller's framing field went out:\n%s", head)
	}
	if !resp.Close {
		t.Errorf("a Connection: close request's response is not marked Close")
	}
	for _, bad := range []http.Header{{"X-A": {"v\r\nX-Injected: 1"}}, {"Bad Name": {"v"}}} {
		req, _ := http.NewRequest(http.MethodPost, srv.url(), strings.NewReader("x"))
		req.Header = bad
		if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("header %v: err %v, want it refused", bad, err)
		}
	}
	// An explicitly empty User-Agent sends none.
	req, _ = http.NewRequest(http.MethodPost, srv.url(), strings.NewReader("x"))
	req.Header.Set("User-Agent", "")
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv.mu.Lock()
	second := srv.heads[1]
	srv.mu.Unlock()
	if strings.Contains(second, "User-Agent") {
		t.Errorf("an empty User-Agent went out:\n%s", second)
	}
	req, _ = http.NewRequest(http.MethodPost, "https://"+srv.l.Addr().String(), nil)
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("https: err %v, want the scheme refused", err)
	}
}

// TestStreamedChunksArriveAsSent proves a body Read returns each chunk when it comes: the
// server sends the next chunk only after the client has read the one before.
func TestStreamedChunksArriveAsSent(t *testing.T) {
	next := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 4 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(5 * time.Second):
				return
			}
		}
	}))
	defer srv.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	resp, err := post(t, tr, context.Background(), srv.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 1024)
	for i := range 4 {
		start := time.Now()
		n, err := resp.Body.Read(buf)
		if err != nil || string(buf[:n]) != fmt.Sprintf("data: %d\n\n", i) {
			t.Fatalf("read %d: %q %v", i, buf[:n], err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("read %d waited %v: a Read held back a chunk", i, d)
		}
		next <- struct{}{}
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
}

// TestServerClosedIdleIsNotReused: a server that closes a keep-alive connection after its
// answer (as uvicorn does after its keep-alive timeout) must not cost the next request.
func TestServerClosedIdleIsNotReused(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	srv := newRawServer(t, true, ok, ok)
	tr := newTransport()
	defer tr.CloseIdleConnections()
	for i := range 2 {
		postAndDrain(t, tr, context.Background(), srv.url())
		if i == 0 {
			// Let the server's close reach this side before the next request looks.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				tr.mu.Lock()
				open := len(tr.idle) == 1 && tr.idle[0].peerOpen()
				tr.mu.Unlock()
				if !open {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}

// stallingServer answers /body with one event and /head with nothing, then holds the response
// open until the client goes or the test ends.
func stallingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: 0\n\n")
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func TestCancel(t *testing.T) {
	srv := stallingServer(t)
	tr := newTransport()
	defer tr.CloseIdleConnections()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := post(t, tr, ctx, srv.URL+"/head", "{}"); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting for headers: err %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v", d)
	}

	ctx, cancel = context.WithCancel(context.Background())
	resp, err := post(t, tr, ctx, srv.URL+"/body", "{}")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading the body: err %v, want context.Canceled", err)
	}
	resp.Body.Close()
	if tr.IdleConns() != 0 {
		t.Errorf("a canceled request's connection went back to the pool")
	}
}

// TestCanceler: a request whose Options carry a Canceler ends when Cancel is called, with
// Cancel's cause, while waiting for headers, mid-body, before it was sent and while dialing;
// its connection never goes back to the pool; the context still ends it too; and a Canceler
// never used leaves the connection to the pool.
func TestCanceler(t *testing.T) {
	srv := stallingServer(t)
	tr := newTransport()
	defer tr.CloseIdleConnections()
	cause := errors.New("watchdog")
	with := func(cn *Canceler) context.Context {
		return WithOptions(context.Background(), &Options{Canceler: cn})
	}

	t.Run("waiting for headers", func(t *testing.T) {
		cn := &Canceler{}
		time.AfterFunc(50*time.Millisecond, func() { cn.Cancel(cause) })
		start := time.Now()
		if _, err := post(t, tr, with(cn), srv.URL+"/head", "{}"); !errors.Is(err, cause) {
			t.Fatalf("err %v, want the cause", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("cancel took %v", d)
		}
	})
	t.Run("mid-body", func(t *testing.T) {
		cn := &Canceler{}
		resp, err := post(t, tr, with(cn), srv.URL+"/body", "{}")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		if _, err := resp.Body.Read(buf); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(50*time.Millisecond, func() { cn.Cancel(cause) })
		if _, err := io.ReadAll(resp.Body); !errors.Is(err, cause) {
			t.Fatalf("err %v, want the cause", err)
		}
		resp.Body.Close()
		if tr.IdleConns() != 0 {
			t.Errorf("a canceled request's connection went back to the pool")
		}
	})
	t.Run("before the body's end", func(t *testing.T) {
		// The whole answer is in the transport's buffer when RoundTrip returns, so the body
		// reads to its end after Cancel closed the connection: it must not go to the pool.
		whole := newRawServer(t, false, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		pool := newTransport()
		defer pool.CloseIdleConnections()
		cn := &Canceler{}
		resp, err := post(t, pool, with(cn), whole.url(), "{}")
		if err != nil {
			t.Fatal(err)
		}
		cn.Cancel(cause)
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if pool.IdleConns() != 0 {
			t.Errorf("a connection closed by Cancel went back to the pool")
		}
	})
	t.Run("before the request", func(t *testing.T) {
		cn := &Canceler{}
		cn.Cancel(nil)
		if _, err := post(t, tr, with(cn), srv.URL+"/head", "{}"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled (Cancel's nil cause)", err)
		}
		if cn.Cancel(cause); !errors.Is(cn.Cause(), context.Canceled) {
			t.Errorf("cause %v after a second Cancel, want the first", cn.Cause())
		}
	})
	t.Run("while dialing", func(t *testing.T) {
		cn := &Canceler{}
		dialing := newTransport()
		dialing.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			cn.Cancel(cause)
			<-ctx.Done() // the dial must be told
			return nil, context.Cause(ctx)
		}
		if _, err := post(t, dialing, with(cn), srv.URL+"/head", "{}"); !errors.Is(err, cause) {
			t.Fatalf("err %v, want the cause", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := post(t, tr, WithOptions(ctx, &Options{Canceler: &Canceler{}}), srv.URL+"/head", "{}"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
	t.Run("unused", func(t *testing.T) {
		ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
		defer ok.Close()
		pool := newTransport()
		defer pool.CloseIdleConnections()
		cn := &Canceler{}
		postAndDrain(t, pool, with(cn), ok.URL)
		if pool.IdleConns() != 1 {
			t.Errorf("%d idle connections after a request with a Canceler, want 1", pool.IdleConns())
		}
		if cn.Cause() != nil {
			t.Errorf("cause %v, want none", cn.Cause())
		}
	})
}

func TestIdleReaper(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var closed atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tr := newTransport()
	tr.IdleTimeout = 50 * time.Millisecond
	postAndDrain(t, tr, context.Background(), srv.URL)
	if tr.IdleConns() != 1 {
		t.Fatalf("%d idle connections after a request, want 1", tr.IdleConns())
	}
	deadline := time.Now().Add(3 * time.Second)
	for (tr.IdleConns() != 0 || closed.Load() != 1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if tr.IdleConns() != 0 || closed.Load() != 1 {
		t.Fatalf("after the idle timeout: %d idle, %d closed at the server", tr.IdleConns(), closed.Load())
	}
}

// TestTraceHooks checks the httptrace hooks, through Options.Trace (dial hooks only when
// dialing) and through httptrace's own context.
func TestTraceHooks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	for _, viaHTTPTrace := range []bool{false, true} {
		tr.CloseIdleConnections()
		for i := range 2 {
			var got []string
			ct := &httptrace.ClientTrace{
				ConnectStart:         func(string, string) { got = append(got, "connect") },
				GotConn:              func(i httptrace.GotConnInfo) { got = append(got, fmt.Sprintf("conn reused=%v", i.Reused)) },
				WroteRequest:         func(httptrace.WroteRequestInfo) { got = append(got, "wrote") },
				GotFirstResponseByte: func() { got = append(got, "first byte") },
			}
			ctx := WithOptions(context.Background(), &Options{Trace: ct})
			if viaHTTPTrace {
				ctx = httptrace.WithClientTrace(context.Background(), ct)
			}
			postAndDrain(t, tr, ctx, srv.URL)
			want := "connect,conn reused=false,wrote,first byte"
			if i == 1 {
				want = "conn reused=true,wrote,first byte"
			}
			if strings.Join(got, ",") != want {
				t.Errorf("httptrace %v, request %d: hooks %v, want %s", viaHTTPTrace, i, got, want)
			}
		}
	}
}
