//go:build linux && cgo

package accelerator

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// benchCollector returns a collector over 8 mock H100s that has polled twice (GPM included).
func benchCollector(b *testing.B) (*Collector, *mockServer) {
	b.Helper()
	s := newMockServer(b, 8)
	c := newTestCollector(b, s, DefaultOptions())
	openAndPoll(b, c, 2)
	return c, s
}

// BenchmarkCollect8GPUs is one scrape's work in the collector: serving the cached snapshot.
func BenchmarkCollect8GPUs(b *testing.B) {
	c, _ := benchCollector(b)
	ch := make(chan prometheus.Metric, 512)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
		n = len(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
	b.ReportMetric(float64(n), "series")
}

// BenchmarkGather8GPUs is a whole scrape through a registry (collect, sort, convert), without
// the HTTP encoding.
func BenchmarkGather8GPUs(b *testing.B) {
	c, _ := benchCollector(b)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPoll8GPUs is one poll interval's cost with the mock: every NVML read of 8 GPUs
// (go-nvml mock bookkeeping included) and building the snapshot's metrics.
func BenchmarkPoll8GPUs(b *testing.B) {
	c, _ := benchCollector(b)
	b.ReportAllocs()
	for b.Loop() {
		c.poll()
	}
}
