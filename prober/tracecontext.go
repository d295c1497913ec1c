package prober

import (
	"encoding/hex"
	"maps"
	"net/http"
	"unsafe"
)

// TraceContext is the W3C trace context a request is sent with (the traceparent header), so
// that the server's spans (vLLM's --otlp-traces-endpoint, a gateway's) join the span an
// exporter makes of the request's record. The zero value means no trace: no header is sent.
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	// Sampled is the traceparent's sampled flag: the exporter records a span for this request.
	Sampled bool
}

// Valid reports whether the context names a trace (W3C: neither ID is all zeros).
func (t *TraceContext) Valid() bool {
	return t.TraceID != [16]byte{} && t.SpanID != [8]byte{}
}

// AppendTraceparent appends the traceparent header value, version 00:
// 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>.
func (t *TraceContext) AppendTraceparent(b []byte) []byte {
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, t.TraceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, t.SpanID[:])
	if t.Sampled {
		return append(b, "-01"...)
	}
	return append(b, "-00"...)
}

// TraceStarter gives a record its trace context before the request is sent (RunnerConfig);
// it is called from request goroutines concurrently and must not block.
type TraceStarter func(rec *Record)

// WithTraceparent returns the headers to send rec with: shared itself when the record has no
// trace context, else a shallow copy of shared with the record's traceparent. The transport
// shares one header map across requests (net/http only reads it), so the copy is what keeps
// concurrent requests from writing into it; its value slices are shared and never written.
// It is on every traced request's path: the header value and its one-element slice share
// one allocation.
func WithTraceparent(shared http.Header, rec *Record) http.Header {
	if !rec.Trace.Valid() {
		return shared
	}
	h := maps.Clone(shared) // copies the map's memory, no rehashing: a third of a loop's cost
	if h == nil {
		h = http.Header{}
	}
	tp := new(traceparentValue)
	b := rec.Trace.AppendTraceparent(tp.buf[:0])
	tp.vals[0] = unsafe.String(&tp.buf[0], len(b)) // tp.buf is never written again
	h["Traceparent"] = tp.vals[:]
	return h
}

// traceparentLen is the length of a version-00 traceparent value.
const traceparentLen = 55

// traceparentValue holds a traceparent header value and the slice net/http reads it from.
type traceparentValue struct {
	vals [1]string
	buf  [traceparentLen]byte
}
