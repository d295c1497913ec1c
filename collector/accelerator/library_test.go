package accelerator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRealLibrary runs the collector on the library this build really has. On a machine without
// libnvidia-ml or a GPU (CI) Init fails cleanly and the collector reports up 0; where a GPU is
// present it must report up 1.
func TestRealLibrary(t *testing.T) {
	opts := DefaultOptions()
	opts.Interval = MinInterval
	c := New(NewLibrary(), opts, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	for c.snap.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no snapshot within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	up := testutil.ToFloat64(upOnly(c))
	if c.snap.Load().polled {
		t.Logf("NVML initialised: %d GPU(s), driver %s", len(c.snap.Load().readings), c.driverVersion)
		if up != 1 {
			t.Errorf("up = %v with NVML initialised, want 1", up)
		}
		return
	}
	if up != 0 {
		t.Errorf("up = %v without NVML, want 0", up)
	}
	if n := testutil.CollectAndCount(c, namespace+"errors_total"); n != 1 {
		t.Errorf("errors_total series = %d, want 1 (the failed init)", n)
	}
}

func TestStubOrRealInitError(t *testing.T) {
	err := NewLibrary().Init()
	if err == nil {
		t.Skip("NVML initialised: a GPU is present")
	}
	var nerr *Error
	if !errors.Is(err, ErrNotAvailable) && !errors.As(err, &nerr) {
		t.Errorf("Init error %v (%T) is neither ErrNotAvailable nor an NVML *Error", err, err)
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		code               int
		notSupported, lost bool
	}{
		{codeNotSupported, true, false},
		{codeFunctionNotFound, true, false},
		{codeGPULost, false, true},
		{999, false, false},
	}
	for _, tt := range tests {
		err := error(&Error{Code: tt.code, Message: "x"})
		if errors.Is(err, ErrNotSupported) != tt.notSupported || errors.Is(err, ErrGPULost) != tt.lost {
			t.Errorf("code %d: Is(not supported) = %v, Is(lost) = %v", tt.code, errors.Is(err, ErrNotSupported), errors.Is(err, ErrGPULost))
		}
	}
}

// upOnly narrows c to its up series.
func upOnly(c *Collector) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		all := make(chan prometheus.Metric, 1024)
		c.Collect(all)
		close(all)
		for m := range all {
			if m.Desc() == c.descs.up {
				ch <- m
			}
		}
	})
}
