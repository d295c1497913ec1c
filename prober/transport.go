package prober

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/h1"
	"github.com/inferprobe/inferprobe/traffic"
)

// maxEventBytes bounds one SSE event; real chunks are well under 64 KiB.
const maxEventBytes = 1 << 20

// drainTimeout bounds reading the rest of a body after the stream's end.
const drainTimeout = 100 * time.Millisecond

// httpFlavour is what one HTTP API flavour adds to the shared transport: its request body and
// the decoding of one event. Everything about timing (t0, watchdogs, the size cap, retries,
// HTTP phases, error classes, the record) is httpClient's, the same for every flavour.
type httpFlavour interface {
	// appendBody appends the JSON request body for req to dst. Constant parts are encoded
	// once when the client is built, so a request costs no map and no reflection.
	appendBody(dst []byte, req traffic.Request) ([]byte, error)
	// decode reads one event's data into ev (which it Resets first). errorEvent says the SSE
	// event was typed as an error; whole says data is a complete non-streaming response body;
	// capture asks for the answer text in ev.Text. An error is a malformed event.
	decode(data []byte, errorEvent, whole, capture bool, ev *StreamEvent) error
}

// eofEnder is implemented by a flavour whose stream has no closing event: the end of the body
// is its clean end (Triton's generate_stream).
type eofEnder interface{ eofEnds() bool }

// httpClient is the shared HTTP transport of every HTTP flavour: it sends a flavour's body,
// times the response and fills the record through a StreamRecorder.
type httpClient struct {
	flavour httpFlavour
	// transport is net/http's, or for an http:// target the builtin HTTP/1.1 one, which
	// dials through netTransport's DialContext.
	transport    roundTripper
	netTransport *http.Transport
	url          string
	// template is the request every send copies (WithContext): method, protocol and the
	// URL parsed once, read-only; a send sets its header and body on the copy.
	template *http.Request
	// header is shared by every request: the transports only read a request's header (no
	// cookie jar, no redirects), so no per-request clone is needed.
	header     http.Header
	maxBytes   int64
	timeout    time.Duration
	firstByte  time.Duration
	idle       time.Duration
	allowEmpty bool
	stream     bool
	eofEnds    bool
	bodySize   atomic.Int64 // the last body's size, to size the next one's buffer

	scratch sync.Pool // *streamScratch, reused across requests
	builtin bool      // transport is the builtin HTTP/1.1 one
	traces  sync.Pool // *phaseTrace of the builtin transport's sends (newTrace)
}

// roundTripper is what httpClient needs of either transport.
type roundTripper interface {
	http.RoundTripper
	CloseIdleConnections()
}

// streamScratch is the per-request reading state that outlives no request: pooled, so that a
// stream allocates nothing for its reader or its event.
type streamScratch struct {
	sse *SSEReader
	ev  StreamEvent
}

// newHTTPClient builds the shared transport for a validated target. header holds the
// flavour's own headers (authentication, versions); the target's headers are added over them.
func newHTTPClient(t config.Target, f httpFlavour, header http.Header) (*httpClient, error) {
	tr, err := NewTransport(t)
	if err != nil {
		return nil, err
	}
	var rt roundTripper = tr
	builtin := builtinTransport(t)
	if builtin {
		rt = &h1.Transport{
			// Read at each dial, so that a test that wraps the dialer wraps both transports'.
			Dial:        func(ctx context.Context, n, a string) (net.Conn, error) { return tr.DialContext(ctx, n, a) },
			MaxIdle:     tr.MaxIdleConns,
			IdleTimeout: tr.IdleConnTimeout,
		}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	stream := t.Request.Streaming()
	if stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	for k, v := range header {
		h[k] = v
	}
	for k, v := range t.Headers {
		h.Set(k, v)
	}
	c := &httpClient{
		flavour:      f,
		transport:    rt,
		netTransport: tr,
		builtin:      builtin,
		url:          strings.TrimRight(t.URL, "/") + strings.ReplaceAll(t.Path, "{model}", url.PathEscape(t.Model)),
		header:       h,
		maxBytes:     t.MaxResponseBytes,
		timeout:      t.Timeout,
		firstByte:    t.FirstByteTimeout,
		idle:         t.IdleTimeout,
		allowEmpty:   t.Request.AllowEmpty,
		stream:       stream,
	}
	// A redirect is not followed (requests go straight to the transport): a POST that is
	// redirected is not measured, and its 3xx is a visible failure.
	parsed, err := url.Parse(c.url)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	c.template = &http.Request{
		Method: http.MethodPost, URL: parsed, Host: parsed.Host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if e, ok := f.(eofEnder); ok {
		c.eofEnds = e.eofEnds()
	}
	return c, nil
}

// sendCall is one request's state that its send and its reading share, in one allocation: the
// watchdog, the request body's reader and, for the builtin transport, the Canceler through
// which the watchdog ends the request and the options that carry it.
type sendCall struct {
	wd   watchdog
	body sendBody
	cn   h1.Canceler
	opts h1.Options
}

// sendBody is a request body: a bytes.Reader that closes, in one allocation.
type sendBody struct{ bytes.Reader }

// Close implements io.Closer.
func (*sendBody) Close() error { return nil }

// newTrace returns the phase trace of one send. The builtin transport calls every hook of a
// send that reused a connection before RoundTrip returns, so those traces are pooled; with
// net/http, or after a dial (whose happy-eyeballs racer may report late), a hook may still
// run after the send was abandoned, so that trace is fresh and left to the collector.
func (c *httpClient) newTrace() *phaseTrace {
	if c.builtin {
		if tr, ok := c.traces.Get().(*phaseTrace); ok {
			return tr
		}
	}
	return &phaseTrace{}
}

// doneTrace takes back a trace from newTrace once its send returned.
func (c *httpClient) doneTrace(tr *phaseTrace) {
	if c.builtin && tr.reusable() {
		tr.reset()
		c.traces.Put(tr)
	}
}

// builtinTransport reports whether t is sent with the builtin HTTP/1.1 transport: an http://
// target, unless http_transport asks for net/http.
func builtinTransport(t config.Target) bool {
	return strings.HasPrefix(strings.ToLower(t.URL), "http://") && t.HTTPTransport != config.HTTPTransportNetHTTP
}

// Close releases idle connections.
func (c *httpClient) Close() { c.transport.CloseIdleConnections() }

// Do sends req and records its timing in rec.
func (c *httpClient) Do(ctx context.Context, req traffic.Request, rec *Record) {
	body, err := c.flavour.appendBody(make([]byte, 0, c.bodySize.Load()+64), req)
	if err != nil {
		rec.Start = time.Now()
		rec.Result, rec.Err = ResultProtocol, fmt.Errorf("encoding request: %w", err)
		return
	}
	c.bodySize.Store(int64(len(body)))
	if req.PromptTokens > 0 {
		rec.PromptTokens, rec.PromptSource = req.PromptTokens, SourceEstimate
	}

	// One timer serves the total bound, the first-byte bound and then the idle bound between
	// reads. With the builtin transport it ends the request through the call's Canceler, so
	// the request needs no cancelable context of its own.
	call := &sendCall{}
	wd := &call.wd
	reqCtx := ctx
	if c.builtin {
		call.opts.Canceler = &call.cn
		wd.start(call.cn.Cancel, c.timeout, c.firstByte)
	} else {
		var cancel context.CancelCauseFunc
		reqCtx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		wd.start(cancel, c.timeout, c.firstByte)
	}
	defer wd.stop()

	var resp *http.Response
	bodyReader := &call.body
	for attempt := 0; ; attempt++ {
		tr := c.newTrace()
		bodyReader.Reset(body)
		// The request is a copy of the client's template (the URL parsed once, one allocation
		// with its context) sent straight to the transport: with redirects refused,
		// http.Client would add nothing.
		var hreq *http.Request
		if c.builtin {
			call.opts.Trace = tr.trace()
			hreq = c.template.WithContext(h1.WithOptions(ctx, &call.opts))
		} else {
			hreq = c.template.WithContext(httptrace.WithClientTrace(reqCtx, tr.trace()))
			// net/http resends a request by itself when nothing of it was written.
			hreq.GetBody = func() (io.ReadCloser, error) { return &sendBody{Reader: *bytes.NewReader(body)}, nil }
		}
		hreq.Header, hreq.Body, hreq.ContentLength = WithTraceparent(c.header, rec), bodyReader, int64(len(body))

		rec.Start = time.Now()
		tr.begin(rec.Start)
		resp, err = c.transport.RoundTrip(hreq)
		tr.end(rec)
		never := tr.neverWritten()
		c.doneTrace(tr)
		if err == nil {
			break
		}
		// A request that never reached the server (a connection was handed out and failed
		// before one byte of the request went into it — the keep-alive race with a server
		// closing idle connections) is safe to send again, once; a dial that failed is a
		// real connection failure and is not retried.
		if attempt == 0 && never && ctx.Err() == nil && wd.fired() == nil {
			rec.Retries++
			continue
		}
		rec.End = time.Since(rec.Start)
		rec.Result, rec.Err = classify(ctx, wd.fired(), err, false), errCause(ctx, wd.fired(), err)
		return
	}
	defer resp.Body.Close()
	rec.Status = resp.StatusCode
	wd.read(c.idle)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		rec.End = time.Since(rec.Start)
		rec.Result = ClassifyStatus(resp.StatusCode)
		rec.Err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
		return
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case c.stream && !eventStreamType(ct):
		rec.End = time.Since(rec.Start)
		rec.Result, rec.Err = ResultProtocol, fmt.Errorf("server answered with %q, not an event stream (does it support stream: true?)", ct)
		return
	case !c.stream && !jsonType(ct):
		rec.End = time.Since(rec.Start)
		rec.Result, rec.Err = ResultProtocol, fmt.Errorf("server answered with %q, not JSON (does it support stream: false?)", ct)
		return
	}

	limited := &limitedBody{r: resp.Body, left: c.maxBytes, onData: wd.data}
	if c.stream {
		sc, _ := c.scratch.Get().(*streamScratch)
		if sc == nil {
			sc = &streamScratch{sse: NewSSEReader(nil, maxEventBytes)}
		}
		sc.sse.Reset(limited)
		defer func() {
			sc.sse.Reset(nil) // drop the body before pooling the reader
			c.scratch.Put(sc)
		}()
		c.readStream(ctx, wd, sc.sse, &sc.ev, rec)
	} else {
		c.readWhole(ctx, wd, limited, rec)
	}
	if rec.Result == ResultSuccess {
		// Let the connection be reused: read what is left after the end (usually just the
		// chunked terminator), but do not hold the request slot if the server keeps the body
		// open.
		wd.read(drainTimeout)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	}
}

// readStream reads SSE events until the flavour's end, a failure or the end of the body.
// ev is scratch space for decoding; wd (nil in tests that feed a body directly) tells a
// timeout from another failure.
func (c *httpClient) readStream(ctx context.Context, wd *watchdog, sse *SSEReader, ev *StreamEvent, rec *Record) {
	var sr StreamRecorder
	sr.Begin(rec, RecorderOptions{AllowEmpty: c.allowEmpty})
	for {
		data, err := sse.Next()
		now := time.Since(rec.Start)
		if err != nil {
			switch {
			case err == io.EOF && c.eofEnds && ctx.Err() == nil:
				sr.End(now)
			case err == io.EOF:
				sr.Interrupted(now, ResultStreamTruncated, errors.New("stream ended without a finish or end event"), ctx.Err() != nil)
			default:
				sr.Interrupted(now, classify(ctx, wd.fired(), err, true), errCause(ctx, wd.fired(), err), ctx.Err() != nil)
			}
			return
		}
		if err := c.flavour.decode(data, sse.IsError(), false, rec.CaptureText, ev); err != nil {
			sr.Fail(now, ResultProtocol, fmt.Errorf("malformed event: %w", err))
			return
		}
		if !sr.Event(now, ev) {
			return
		}
	}
}

// readWhole reads a non-streaming response: one JSON body, decoded once at its end.
func (c *httpClient) readWhole(ctx context.Context, wd *watchdog, body io.Reader, rec *Record) {
	var (
		sr StreamRecorder
		ev StreamEvent
	)
	sr.Begin(rec, RecorderOptions{AllowEmpty: c.allowEmpty, Unstreamed: true})
	data, err := io.ReadAll(body)
	now := time.Since(rec.Start)
	if err != nil {
		sr.Fail(now, classify(ctx, wd.fired(), err, true), errCause(ctx, wd.fired(), err))
		return
	}
	if err := c.flavour.decode(data, false, true, rec.CaptureText, &ev); err != nil {
		sr.Fail(now, ResultProtocol, fmt.Errorf("malformed response: %w", err))
		return
	}
	// A whole body is complete by itself: its end is the response's end.
	ev.Done = true
	sr.Event(now, &ev)
}

// eventStreamType accepts text/event-stream and, leniently, a missing type; anything else
// (a JSON answer to a streaming request, a proxy's HTML page) is not a stream.
func eventStreamType(contentType string) bool {
	if contentType == "" || contentType == "text/event-stream" {
		return true // the usual answer, without ParseMediaType's parameter map
	}
	ct, _, err := mime.ParseMediaType(contentType)
	return err == nil && ct == "text/event-stream"
}

// jsonType accepts application/json (and +json types) and, leniently, a missing type.
func jsonType(contentType string) bool {
	if contentType == "" || contentType == "application/json" {
		return true
	}
	ct, _, err := mime.ParseMediaType(contentType)
	return err == nil && (ct == "application/json" || strings.HasSuffix(ct, "+json"))
}

// errCause prefers a cause of our own (a timeout, or the caller's cancellation cause) over the
// transport's generic "context canceled". cause is the request's own, as for classify; the
// caller's end comes first, as it does for the class.
func errCause(parent context.Context, cause, err error) error {
	if cause == nil || parent.Err() != nil {
		cause = context.Cause(parent)
	}
	if cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// shared returns the client's shared transport (for tests and fuzzing of every flavour).
func (c *httpClient) shared() *httpClient { return c }
