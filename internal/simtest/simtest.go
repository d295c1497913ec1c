// Package simtest starts the simulator on a loopback port for the tests of the packages that
// probe it (the simulator's own tests cannot use it: they would import themselves).
package simtest

import (
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"

	"github.com/inferprobe/inferprobe/simulator"
)

// Start serves a simulator with seed and DefaultConfig changed by mutate (nil for none) until
// the test ends, and returns it and its URL. At the end the simulator closes first, so open
// streams end at once and closing the server does not wait on them.
func Start(t testing.TB, seed uint64, mutate func(*simulator.Config)) (*simulator.Server, string) {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.Seed = seed
	if mutate != nil {
		mutate(&cfg)
	}
	sim, err := simulator.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { sim.Close(); srv.CloseClientConnections(); srv.Close() })
	return sim, srv.URL
}

// StartKServe serves a simulator's KServe v2 gRPC service (RegisterKServe) on a loopback port
// until the test ends, and returns it and the URL a kserve-grpc target points at
// (http://127.0.0.1:port).
func StartKServe(t testing.TB, seed uint64, mutate func(*simulator.Config)) (*simulator.Server, string) {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.Seed = seed
	if mutate != nil {
		mutate(&cfg)
	}
	sim, err := simulator.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	sim.RegisterKServe(gs)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(l) }() // ends with Stop below
	t.Cleanup(func() { sim.Close(); gs.Stop(); <-done })
	return sim, "http://" + l.Addr().String()
}
