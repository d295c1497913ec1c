package otlp_test

import (
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// receiver is an in-process OTLP receiver on 127.0.0.1, speaking gRPC or HTTP/protobuf as
// the OTLP specification defines them, that keeps every request it was sent.
type receiver struct {
	colmetrics.UnimplementedMetricsServiceServer

	URL string

	mu      sync.Mutex
	metrics []*colmetrics.ExportMetricsServiceRequest
	traces  []*coltrace.ExportTraceServiceRequest
	stall   chan struct{} // when set, requests wait on it (closed at the test's end)
}

// startReceiver serves a receiver of protocol ("grpc" or "http/protobuf") until the test ends;
// stall makes it accept requests and never answer them before the test ends.
func startReceiver(t testing.TB, protocol string, stall bool) *receiver {
	t.Helper()
	r := &receiver{}
	if stall {
		r.stall = make(chan struct{})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.URL = "http://" + l.Addr().String()
	if protocol == "grpc" {
		srv := grpc.NewServer()
		colmetrics.RegisterMetricsServiceServer(srv, r)
		coltrace.RegisterTraceServiceServer(srv, &traceService{r: r})
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() {
			if r.stall != nil {
				close(r.stall)
			}
			srv.Stop()
		})
		return r
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		m := &colmetrics.ExportMetricsServiceRequest{}
		if !r.read(w, req, m) {
			return
		}
		r.mu.Lock()
		r.metrics = append(r.metrics, m)
		r.mu.Unlock()
		r.reply(w, &colmetrics.ExportMetricsServiceResponse{})
	})
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		m := &coltrace.ExportTraceServiceRequest{}
		if !r.read(w, req, m) {
			return
		}
		r.mu.Lock()
		r.traces = append(r.traces, m)
		r.mu.Unlock()
		r.reply(w, &coltrace.ExportTraceServiceResponse{})
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		if r.stall != nil {
			close(r.stall)
		}
		srv.Close()
	})
	return r
}

func (r *receiver) read(w http.ResponseWriter, req *http.Request, m proto.Message) bool {
	if r.stall != nil {
		select {
		case <-r.stall:
		case <-req.Context().Done():
		}
		return false
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return false
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err == nil {
		err = proto.Unmarshal(data, m)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (r *receiver) reply(w http.ResponseWriter, m proto.Message) {
	data, _ := proto.Marshal(m)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(data)
}

// Export implements the gRPC metrics service.
func (r *receiver) Export(ctx context.Context, m *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	if r.stall != nil {
		select {
		case <-r.stall:
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	}
	r.mu.Lock()
	r.metrics = append(r.metrics, m)
	r.mu.Unlock()
	return &colmetrics.ExportMetricsServiceResponse{}, nil
}

// traceService adapts the receiver to the gRPC trace service (its Export has another type).
type traceService struct {
	coltrace.UnimplementedTraceServiceServer
	r *receiver
}

// Export implements the gRPC trace service.
func (s *traceService) Export(ctx context.Context, m *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	if s.r.stall != nil {
		select {
		case <-s.r.stall:
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	}
	s.r.mu.Lock()
	s.r.traces = append(s.r.traces, m)
	s.r.mu.Unlock()
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// lastMetrics returns, by name, each metric of the last metrics request received.
func (r *receiver) lastMetrics() (map[string]*metricspb.Metric, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out, res := map[string]*metricspb.Metric{}, map[string]string{}
	if len(r.metrics) == 0 {
		return out, res
	}
	for _, rm := range r.metrics[len(r.metrics)-1].ResourceMetrics {
		for _, a := range rm.Resource.GetAttributes() {
			res[a.Key] = a.Value.GetStringValue()
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				out[m.Name] = m
			}
		}
	}
	return out, res
}

// spans returns every span received.
func (r *receiver) spans() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, req := range r.traces {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				out = append(out, ss.Spans...)
			}
		}
	}
	return out
}
