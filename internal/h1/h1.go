// Package h1 is the HTTP/1.1 client transport of inferprobe's http:// targets: one request at
// a time per keep-alive connection, written and read on the caller's goroutine.
//
// net/http's Transport runs a reader and a writer goroutine per connection and hands every
// request, response and end of body between them and the caller. At hundreds of streamed
// requests per second those hand-offs, each a wake-up of another goroutine and often of another
// thread, and the generality around them cost a prober more CPU than measuring the stream does
// (docs/benchmarks.md). This transport does the exchange inline: it writes the request with one
// write and reads the response head and body from the connection as the caller reads.
//
// It implements http.RoundTripper, so the shared HTTP client, its httptrace hooks (DNS and
// connect through the dialer; GotConn, WroteRequest and GotFirstResponseByte from here) and its
// callers stay the same. It speaks HTTP/1.1 without TLS, proxies, compression, redirects or
// Expect: 100-continue: what a prober of an http:// model server needs, no more. https:// targets
// keep net/http (TLS, HTTP/2).
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Transport is an HTTP/1.1 keep-alive client transport for http:// URLs. Its zero value is not
// usable: Dial is required. It is safe for concurrent use.
type Transport struct {
	// Dial opens a connection to addr (host:port).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdle bounds the idle keep-alive connections kept (at least 1).
	MaxIdle int
	// IdleTimeout is how long an idle connection is kept for the next request (> 0).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a response head (DefaultMaxHeaderBytes when ≤ 0).
	MaxHeaderBytes int

	mu     sync.Mutex
	idle   []*conn // oldest first; the newest is reused first
	reaper *time.Timer
}

// conn is one keep-alive connection and its buffers.
type conn struct {
	c         net.Conn
	br        *bufio.Reader
	wbuf      []byte
	idleSince time.Time
	peek      peeker
}

func newConn(c net.Conn) *conn {
	pc := &conn{c: c, br: bufio.NewReaderSize(c, 16<<10)}
	pc.peek.init(c)
	return pc
}

// peerOpen reports whether an idle connection may carry a request: the server has not closed
// it, and sent nothing unasked.
func (pc *conn) peerOpen() bool { return pc.br.Buffered() == 0 && pc.peek.open() }

// maxInformational bounds the 1xx responses before the final one, as net/http does.
const maxInformational = 5

// optionsKey is the context key of WithOptions.
type optionsKey struct{}

// Options are a request's extras for this transport, carried in its context by WithOptions.
// The transport reads them while RoundTrip runs, so they may be changed between requests.
type Options struct {
	// Trace receives the request's httptrace hooks, as httptrace.WithClientTrace's (which
	// works here too) but for one context value: the DNS and connect hooks, which httptrace
	// installs for the dialer on every request, are installed only when the request dials.
	Trace *httptrace.ClientTrace
	// Canceler, if set, ends the request when its Cancel is called, as well as when the
	// context ends. It is how the request's owner bounds it without a cancelable context of
	// its own per request (and the transport's registration with that context).
	Canceler *Canceler
}

// WithOptions returns a context whose requests carry o.
func WithOptions(ctx context.Context, o *Options) context.Context {
	return context.WithValue(ctx, optionsKey{}, o)
}

// requestOptions returns a request's trace, the trace its dial reports to when the transport
// must install the dial hooks itself (Options.Trace; httptrace's context has them already),
// and its Canceler.
func requestOptions(ctx context.Context) (trace, dialTrace *httptrace.ClientTrace, cn *Canceler) {
	if o, ok := ctx.Value(optionsKey{}).(*Options); ok && o != nil {
		return o.Trace, o.Trace, o.Canceler
	}
	return httptrace.ContextClientTrace(ctx), nil, nil
}

// Canceler ends one request from another goroutine (a watchdog's timeout): Cancel closes the
// request's connection, which ends a blocked write or read at once, and the request then fails
// with Cancel's cause. The zero value is ready; a Canceler serves one request (and its resend
// when nothing of it was sent), and once canceled it stays so.
type Canceler struct {
	mu    sync.Mutex
	cause error
	conn  net.Conn                // the request's connection while it is in use
	dial  context.CancelCauseFunc // ends the dial in progress, if any
}

// Cancel ends the request with cause (context.Canceled if nil); the first cause is kept.
func (cn *Canceler) Cancel(cause error) {
	if cause == nil {
		cause = context.Canceled
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.cause != nil {
		return
	}
	cn.cause = cause
	if cn.conn != nil {
		_ = cn.conn.Close()
	}
	if cn.dial != nil {
		cn.dial(cause)
	}
}

// Cause returns the cause Cancel was called with, nil before.
func (cn *Canceler) Cause() error {
	if cn == nil {
		return nil
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.cause
}

// attach makes c the connection Cancel closes; it reports false (and closes nothing) if the
// request was canceled already.
func (cn *Canceler) attach(c net.Conn) bool {
	if cn == nil {
		return true
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.cause != nil {
		return false
	}
	cn.conn = c
	return true
}

// detach takes the connection back, once the response is done with it; false means Cancel
// closed it.
func (cn *Canceler) detach() bool {
	if cn == nil {
		return true
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.conn = nil
	return cn.cause == nil
}

// dialing registers (or with nil, removes) the function that ends a dial in progress; false
// means the request was canceled already.
func (cn *Canceler) dialing(cancel context.CancelCauseFunc) bool {
	if cn == nil {
		return true
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.dial = cancel
	return cn.cause == nil
}

// why returns the error a failed request reports: the Canceler's cause, else the context's
// error, else err (a cancellation closed the connection, and the read error that made is not
// the reason).
func why(ctx context.Context, cn *Canceler, err error) error {
	if cause := cn.Cause(); cause != nil {
		return cause
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ErrServerClosed is the error of a reused connection that the server closed before it
// answered (the keep-alive race: the request may or may not have reached it).
var ErrServerClosed = errors.New("h1: server closed the keep-alive connection before answering")

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if req.Body != nil && req.Body != http.NoBody {
		defer req.Body.Close() // a RoundTripper closes the body, whatever happens
	}
	bodyLen, whole, err := requestBody(req)
	if err != nil {
		return nil, err
	}
	if req.URL.Scheme != "http" {
		return nil, fmt.Errorf("h1: unsupported scheme %q", req.URL.Scheme)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}

	trace, dialTrace, cn := requestOptions(ctx)
	pc, reused, err := t.get(ctx, dialTrace, cn, addr)
	if err != nil {
		return nil, why(ctx, cn, err)
	}
	if !cn.attach(pc.c) {
		_ = pc.c.Close()
		return nil, cn.Cause()
	}
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: pc.c, Reused: reused, WasIdle: reused})
	}
	// Canceling the request closes its connection, which ends a blocked write or read at once.
	stop := context.AfterFunc(ctx, func() { _ = pc.c.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		cn.detach()
		_ = pc.c.Close()
		return nil, why(ctx, cn, err)
	}

	pc.wbuf, err = appendHead(pc.wbuf[:0], req, host, bodyLen)
	if err != nil {
		return fail(err)
	}
	if whole != nil {
		pc.wbuf = append(pc.wbuf, whole...)
	} else if bodyLen > 0 {
		head := len(pc.wbuf)
		pc.wbuf = slices.Grow(pc.wbuf, int(bodyLen))[:head+int(bodyLen)]
		if _, err := io.ReadFull(req.Body, pc.wbuf[head:]); err != nil {
			return fail(fmt.Errorf("h1: reading the request body: %w", err))
		}
	}
	_, err = pc.c.Write(pc.wbuf)
	if trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{Err: err})
	}
	if err != nil {
		return fail(err)
	}
	if _, err := pc.br.Peek(1); err != nil {
		if reused && errors.Is(err, io.EOF) {
			err = ErrServerClosed
		}
		return fail(err)
	}
	if trace != nil && trace.GotFirstResponseByte != nil {
		trace.GotFirstResponseByte()
	}
	var r response
	for informational := 0; ; informational++ {
		if informational > maxInformational {
			return fail(fmt.Errorf("%w: more than %d informational (1xx) responses", ErrMalformed, maxInformational))
		}
		r, err = readResponse(pc.br, req, t.maxHeader())
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fail(err)
		}
		if r.resp.StatusCode == http.StatusSwitchingProtocols {
			return fail(fmt.Errorf("%w: 101 Switching Protocols to a request that asked for no upgrade", ErrMalformed))
		}
		// Informational answers (103 Early Hints) come before the final one.
		if r.resp.StatusCode >= 200 {
			break
		}
	}
	if req.Close {
		r.resp.Close = true // the request asked for the connection's end
	}
	b := &responseBody{ctx: ctx, cn: cn, t: t, pc: pc, stop: stop, reusable: !r.resp.Close}
	switch {
	case r.chunked:
		b.r = &chunkedBody{br: pc.br, maxHeader: t.maxHeader()}
	case r.length >= 0:
		b.r = &lengthBody{br: pc.br, left: r.length}
	default:
		b.r = pc.br // until the server closes
	}
	r.resp.Body = b
	if r.length == 0 {
		b.finish(true) // nothing to read: the connection is free now
		b.err = io.EOF
	}
	return r.resp, nil
}

// requestBody returns the length of req's body: its ContentLength when that is known (the
// body is then read into the write buffer), else the whole body, read here.
func requestBody(req *http.Request) (int64, []byte, error) {
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return 0, nil, nil
	case req.ContentLength > 0:
		return req.ContentLength, nil, nil
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("h1: reading the request body: %w", err)
	}
	return int64(len(b)), b, nil
}

func (t *Transport) maxHeader() int {
	if t.MaxHeaderBytes <= 0 {
		return DefaultMaxHeaderBytes
	}
	return t.MaxHeaderBytes
}

// responseBody is a response's body: it returns the connection to the idle pool once read to
// its end, and closes it otherwise. Close may be called while a Read is in progress on another
// goroutine (it then ends that Read by closing the connection); the first of the two to finish
// decides the connection's fate.
type responseBody struct {
	ctx      context.Context
	cn       *Canceler // nil if none
	r        io.Reader
	t        *Transport
	pc       *conn
	stop     func() bool
	reusable bool
	finished atomic.Bool
	err      error // sticky: the first Read error, or ErrBodyReadAfterClose; Read's goroutine only
}

// Read implements io.Reader.
func (b *responseBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.finished.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.r.Read(p)
	if err != nil {
		b.finish(errors.Is(err, io.EOF))
		if !errors.Is(err, io.EOF) {
			err = why(b.ctx, b.cn, err)
		}
		b.err = err
	}
	return n, err
}

// Close implements io.Closer: a body not read to its end closes its connection.
func (b *responseBody) Close() error {
	b.finish(false)
	return nil
}

func (b *responseBody) finish(atEOF bool) {
	if !b.finished.CompareAndSwap(false, true) {
		return
	}
	// stop and detach report false when a cancellation already closed the connection.
	stopped := b.stop()
	if b.cn.detach() && stopped && atEOF && b.reusable {
		b.t.put(b.pc)
		return
	}
	_ = b.pc.c.Close()
}

// get hands out the newest idle connection whose server end is still open, or dials one.
// A dial reports to dialTrace's DNS and connect hooks; their context is built only then, since
// most requests reuse a connection.
// A dial also ends when cn (if set) is canceled.
func (t *Transport) get(ctx context.Context, dialTrace *httptrace.ClientTrace, cn *Canceler, addr string) (*conn, bool, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		pc := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if now.Sub(pc.idleSince) < t.IdleTimeout && pc.peerOpen() {
			return pc, true, nil
		}
		_ = pc.c.Close()
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	dialCtx := ctx
	if dialTrace != nil {
		dialCtx = httptrace.WithClientTrace(ctx, dialTrace)
	}
	if cn != nil {
		var cancel context.CancelCauseFunc
		dialCtx, cancel = context.WithCancelCause(dialCtx)
		defer cancel(nil)
		if !cn.dialing(cancel) {
			return nil, false, cn.Cause()
		}
		defer cn.dialing(nil)
	}
	c, err := t.Dial(dialCtx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return newConn(c), false, nil
}

// put returns a connection whose answer was read to its end.
func (t *Transport) put(pc *conn) {
	pc.idleSince = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.idle) >= max(t.MaxIdle, 1) {
		_ = pc.c.Close()
		return
	}
	t.idle = append(t.idle, pc)
	if t.reaper == nil {
		t.reaper = time.AfterFunc(t.IdleTimeout, t.reap)
	}
}

// reap closes the connections idle for IdleTimeout and comes back while any are left. It runs
// on a timer; CloseIdleConnections stops it.
func (t *Transport) reap() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reaper == nil {
		return // stopped while this call waited for the lock
	}
	// Connections are handed out newest first, so the idle list stays sorted oldest first.
	cut := time.Now().Add(-t.IdleTimeout)
	i := 0
	for i < len(t.idle) && !t.idle[i].idleSince.After(cut) {
		_ = t.idle[i].c.Close()
		i++
	}
	t.idle = append(t.idle[:0], t.idle[i:]...)
	clear(t.idle[len(t.idle):cap(t.idle)])
	if len(t.idle) == 0 {
		t.reaper = nil
		return
	}
	t.reaper.Reset(t.idle[0].idleSince.Sub(cut))
}

// CloseIdleConnections closes every idle connection. A connection in use goes back to the pool
// when its response ends, and the reaper closes it after IdleTimeout.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, pc := range t.idle {
		_ = pc.c.Close()
	}
	t.idle = nil
	if t.reaper != nil {
		t.reaper.Stop()
		t.reaper = nil
	}
}

// IdleConns returns the number of idle connections held.
func (t *Transport) IdleConns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle)
}
