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

// setTraceparent adds the record's traceparent to an outgoing request's headers, when it has
// a trace context. Each API flavour calls it when it builds the request.
func setTraceparent(h http.Header, rec *Record) {
	if !rec.Trace.Valid() {
		return
	}
	var buf [55]byte
	h["Traceparent"] = []string{string(rec.Trace.AppendTraceparent(buf[:0]))}
}
