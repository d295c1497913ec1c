package server

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/inferprobe/inferprobe/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata from the current output")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Content types as servers send them.
const (
	ctText  = "text/plain; version=0.0.4; charset=utf-8"
	ctOM    = "application/openmetrics-text; version=1.0.0; charset=utf-8"
	ctProto = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)

// comparedNames are the series golden files hold: everything but the scrape duration, which
// varies from run to run.
var comparedNames = func() []string {
	names := []string{MetricUp, MetricScrapeErrors, MetricRestarts, MetricEngineInfo, MetricLoRAAdapterInfo}
	for _, r := range table {
		names = append(names, r.name)
	}
	return names
}()

// normalisedNames are the series that must vanish when a scrape fails.
var normalisedNames = func() []string {
	names := []string{MetricEngineInfo, MetricLoRAAdapterInfo}
	for _, r := range table {
		names = append(names, r.name)
	}
	return names
}()

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// toProto re-encodes a text exposition as delimited protobuf, the way a Go server would serve it.
func toProto(t testing.TB, text []byte) []byte {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// response is what the fake model server answers next.
type response struct {
	status      int
	contentType string
	body        []byte
}

// fakeServer is a model server on 127.0.0.1 whose /metrics answer the test swaps at will.
type fakeServer struct {
	*httptest.Server
	next     atomic.Pointer[response]
	requests atomic.Int64
	mu       sync.Mutex
	accept   string
}

func newFakeServer(t testing.TB, r response) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	f.set(r)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f.requests.Add(1)
		f.mu.Lock()
		f.accept = req.Header.Get("Accept")
		f.mu.Unlock()
		r := f.next.Load()
		if r.contentType != "" {
			w.Header().Set("Content-Type", r.contentType)
		}
		if r.status != 0 {
			w.WriteHeader(r.status)
		}
		_, _ = w.Write(r.body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) set(r response) { f.next.Store(&r) }

func (f *fakeServer) serve(contentType string, body []byte) {
	f.set(response{contentType: contentType, body: body})
}

// fakeGate records Rearm calls.
type fakeGate struct {
	mu      sync.Mutex
	reasons []string
}

func (g *fakeGate) Rearm(reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reasons = append(g.reasons, reason)
}

func (g *fakeGate) calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.reasons...)
}

// newTestScraper builds a scraper of url for target "t"; edit adjusts the options.
func newTestScraper(t testing.TB, url string, edit func(*Options)) *Scraper {
	t.Helper()
	o := Options{
		Target: "t",
		Config: config.Metrics{URL: url, Interval: time.Minute, Timeout: 2 * time.Second, Engine: EngineAuto},
	}
	if edit != nil {
		edit(&o)
	}
	s, err := NewScraper(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scrapeOK(t testing.TB, s *Scraper) {
	t.Helper()
	if err := s.Scrape(context.Background()); err != nil {
		t.Fatalf("scrape: %v", err)
	}
}

func scrapeFails(t testing.TB, s *Scraper, reason string) {
	t.Helper()
	err := s.Scrape(context.Background())
	var se *ScrapeError
	if !errors.As(err, &se) {
		t.Fatalf("scrape error = %v, want a %s ScrapeError", err, reason)
	}
	if se.Reason != reason {
		t.Fatalf("scrape failed with reason %s (%v), want %s", se.Reason, se.Err, reason)
	}
}

// value returns the value of the one series of name with the given labels, failing the test if
// there is not exactly one.
func value(t testing.TB, c prometheus.Collector, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found []float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Gauge != nil:
					found = append(found, m.GetGauge().GetValue())
				case m.Counter != nil:
					found = append(found, m.GetCounter().GetValue())
				default:
					found = append(found, m.GetUntyped().GetValue())
				}
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: found %d series, want 1", name, labels, len(found))
	}
	return found[0]
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// count is the number of series of the given names.
func count(t testing.TB, c prometheus.Collector, names ...string) int {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	n, err := testutil.GatherAndCount(reg, names...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// compareGolden compares the collector's output (comparedNames plus extra) with a golden file,
// or rewrites the file with -update.
func compareGolden(t testing.TB, c prometheus.Collector, golden string, extra ...string) {
	t.Helper()
	names := append(append([]string(nil), comparedNames...), extra...)
	path := filepath.Join("testdata", golden)
	if *update {
		out, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, names...)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if err := testutil.CollectAndCompare(c, want, names...); err != nil {
		t.Errorf("%s: %v", golden, err)
	}
}
