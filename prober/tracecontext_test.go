package prober

import (
	"encoding/hex"
	"net/http"
	"testing"
)

// The example of the W3C Trace Context recommendation, section 3.2.
func TestTraceparentFormat(t *testing.T) {
	var tc TraceContext
	hex.Decode(tc.TraceID[:], []byte("4bf92f3577b34da6a3ce929d0e0e4736"))
	hex.Decode(tc.SpanID[:], []byte("00f067aa0ba902b7"))
	tc.Sampled = true
	if got, want := string(tc.AppendTraceparent(nil)), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Fatalf("traceparent %q, want %q", got, want)
	}
	tc.Sampled = false
	if got, want := string(tc.AppendTraceparent(nil)), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"; got != want {
		t.Fatalf("traceparent %q, want %q", got, want)
	}
	shared := http.Header{"Content-Type": {"application/json"}}
	if h := WithTraceparent(shared, &Record{}); len(h) != 1 || h.Get("traceparent") != "" {
		t.Fatalf("a record without a trace context sent %v", h)
	}
	h := WithTraceparent(shared, &Record{Trace: tc})
	if h.Get("traceparent") != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("header %v", h)
	}
	if len(shared) != 1 {
		t.Fatalf("the shared header was written: %v", shared)
	}
}
