package prober

import (
	"encoding/hex"
	"net/http"
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

// withTraceparent returns the headers to send rec with: shared itself when the record has no
// trace context, else a shallow copy of shared with the record's traceparent. The transport
// shares one header map across requests (net/http only reads it), so the copy is what keeps
// concurrent requests from writing into it; its value slices are shared and never written.
func withTraceparent(shared http.Header, rec *Record) http.Header {
	if !rec.Trace.Valid() {
		return shared
	}
	h := make(http.Header, len(shared)+1)
	for k, v := range shared {
		h[k] = v
	}
	var buf [55]byte
	h["Traceparent"] = []string{string(rec.Trace.AppendTraceparent(buf[:0]))}
	return h
}
