package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/inferprobe/inferprobe/config"
)

// Rearmer is what the scraper needs of a target's warmup gate: on a detected model-server
// restart it is told once, so the cold start is measured again and the latency histograms stay
// clean. Rearm must not block for long; it runs on the scrape goroutine.
type Rearmer interface {
	Rearm(reason string)
}

// Restart reasons, passed to Rearmer.Rearm and logged.
const (
	// RestartProcessStartTime: the server's process_start_time_seconds changed.
	RestartProcessStartTime = "process_start_time"
	// RestartCounterReset: a normalised token counter went down.
	RestartCounterReset = "counter_reset"
	// RestartRecovery: the server answered again after refusing connections or failing with an
	// HTTP error, and has no process_start_time_seconds that could tell otherwise.
	RestartRecovery = "recovery"
)

// Scrape error reasons, the values of the reason label of inferprobe_server_scrape_errors_total.
const (
	ReasonTimeout    = "timeout"
	ReasonConnection = "connection"
	ReasonHTTPStatus = "http_status"
	ReasonTooLarge   = "too_large"
	ReasonParse      = "parse"
)

// reasons lists every reason, so each counter is exposed (at 0) from the start.
var reasons = [...]string{ReasonTimeout, ReasonConnection, ReasonHTTPStatus, ReasonTooLarge, ReasonParse}

// Health series, labelled target.
const (
	MetricUp             = "inferprobe_server_up"
	MetricScrapeDuration = "inferprobe_server_scrape_duration_seconds"
	MetricScrapeErrors   = "inferprobe_server_scrape_errors_total"
	MetricRestarts       = "inferprobe_server_restarts_total"
	// MetricEngineInfo is 1 with label engine while the server answers: the engine in use, or
	// "unknown" when auto-detection found none.
	MetricEngineInfo = "inferprobe_server_engine_info"
)

// DefaultMaxBodyBytes bounds an exposition when Options.MaxBodyBytes is 0. A large vLLM
// exposition is a few hundred KiB; 16 MiB leaves room for passthrough-heavy servers while
// keeping a runaway endpoint from exhausting memory.
const DefaultMaxBodyBytes = 16 << 20

// acceptHeader asks, like Prometheus with native histograms on, for delimited protobuf first,
// then OpenMetrics, then the text format.
const acceptHeader = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,` +
	`application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,` +
	`text/plain;version=0.0.4;q=0.5,*/*;q=0.1`

// Options configures a Scraper.
type Options struct {
	// Target is the target's name, the value of every series' target label.
	Target string
	// Model is the target's configured model: the model_name of series that a server labels
	// with a placeholder (trtllm-serve's model_name="undefined").
	Model string
	// Config is the target's validated metrics block (URL and engine defaults already applied).
	Config config.Metrics
	// Client sends the scrapes; nil uses a client with Go's default transport. Its own Timeout,
	// if any, applies on top of Config.Timeout.
	Client *http.Client
	// Header is added to every scrape request (e.g. credentials for a gateway); never logged.
	Header http.Header
	// Rearmer is told about restarts; nil only counts them.
	Rearmer Rearmer
	// Logger receives state changes (down, up, restart); nil discards.
	Logger *slog.Logger
	// MaxBodyBytes bounds the decompressed exposition; 0 means DefaultMaxBodyBytes. A larger body
	// is a too_large error.
	MaxBodyBytes int64
	// RecoveryFailures is how many consecutive connection or HTTP-status failures, followed by a
	// success, count as a restart when the server has no process_start_time_seconds; 0 means 1
	// and a negative value turns the signal off.
	RecoveryFailures int
}

// ScrapeError is a failed scrape with its bounded reason (one of the Reason constants).
type ScrapeError struct {
	Reason string
	Err    error
}

// Error implements error.
func (e *ScrapeError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ScrapeError) Unwrap() error { return e.Err }

// Scraper scrapes one target's model-server metrics on its own schedule and keeps the last
// normalised snapshot, which Collect serves without waiting for the server. It is also a
// prometheus.Collector for the one target; use Collector to serve many.
type Scraper struct {
	target   string
	url      string
	interval time.Duration
	timeout  time.Duration
	engine   string     // as configured
	spec     engineSpec // for a configured engine
	client   *http.Client
	header   http.Header
	rearm    Rearmer
	logger   *slog.Logger
	maxBody  int64

	descUp, descDuration, descErrors, descRestarts, descEngine *prometheus.Desc

	snap atomic.Pointer[snapshot]

	// now asks Run for a scrape at once. rearmed says the gate was re-armed for the restart
	// the next successful scrape started after it may detect (see ScrapeNow): it holds the
	// ScrapeNow call's number (from calls), 0 when none is pending, so that a scrape already in
	// flight when ScrapeNow came, whose answer predates the restart, does not use it up.
	now     chan struct{}
	rearmed atomic.Uint64
	calls   atomic.Uint64

	// mu serialises scrapes and guards everything below; Collect never takes it.
	mu       sync.Mutex
	body     bytes.Buffer // reused between scrapes
	text     bytes.Buffer
	reader   bytes.Reader
	parser   expfmt.TextParser
	tr       *tableReader
	hits     []int
	sel      *selection
	norm     *normaliser
	errs     [len(reasons)]float64
	restarts float64
	rs       restartState
	up       bool
	scraped  bool
}

// snapshot is what a scraper exposes until its next scrape; never modified once published.
type snapshot struct {
	metrics     []prometheus.Metric
	passthrough []passFamily
}

// NewScraper checks o and returns a scraper that has not scraped yet (it reports up 0).
func NewScraper(o Options) (*Scraper, error) {
	c := o.Config
	switch {
	case o.Target == "":
		return nil, errors.New("server metrics: empty target name")
	case c.URL == "":
		return nil, fmt.Errorf("target %q: metrics.url is empty", o.Target)
	case c.Interval <= 0:
		return nil, fmt.Errorf("target %q: metrics.interval must be positive, got %s", o.Target, c.Interval)
	case c.Timeout <= 0:
		return nil, fmt.Errorf("target %q: metrics.timeout must be positive, got %s", o.Target, c.Timeout)
	case o.MaxBodyBytes < 0:
		return nil, fmt.Errorf("target %q: negative body limit %d", o.Target, o.MaxBodyBytes)
	}
	engine := c.Engine
	if engine == "" {
		engine = EngineAuto
	}
	specs := engines
	var spec engineSpec
	if engine != EngineAuto {
		var ok bool
		if spec, ok = engineByName(engine); !ok {
			return nil, fmt.Errorf("target %q: metrics.engine %q is not one of auto, %s", o.Target, engine, engineNames())
		}
		specs = []engineSpec{spec}
	}
	sel, err := newSelection(specs, c.Passthrough)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", o.Target, err)
	}
	s := &Scraper{
		target:   o.Target,
		url:      c.URL,
		interval: c.Interval,
		timeout:  c.Timeout,
		engine:   engine,
		spec:     spec,
		client:   o.Client,
		header:   o.Header.Clone(),
		rearm:    o.Rearmer,
		logger:   o.Logger,
		maxBody:  o.MaxBodyBytes,
		parser:   expfmt.NewTextParser(model.UTF8Validation),
		tr:       newTableReader(),
		hits:     make([]int, len(engines)),
		sel:      sel,
		norm:     newNormaliser(o.Target, sel),
		rs:       restartState{threshold: o.RecoveryFailures},
	}
	s.norm.model = o.Model
	if s.client == nil {
		s.client = &http.Client{}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.rs.threshold == 0 {
		s.rs.threshold = 1
	}
	s.now = make(chan struct{}, 1)
	target := []string{labelTarget}
	s.descUp = prometheus.NewDesc(MetricUp,
		"1 if the last scrape of the model server's metrics succeeded, else 0.", target, nil)
	s.descDuration = prometheus.NewDesc(MetricScrapeDuration,
		"Duration of the last scrape of the model server's metrics.", target, nil)
	s.descErrors = prometheus.NewDesc(MetricScrapeErrors,
		"Failed scrapes of the model server's metrics, by reason.", []string{labelTarget, "reason"}, nil)
	s.descRestarts = prometheus.NewDesc(MetricRestarts,
		"Model-server restarts detected (each re-arms the target's warmup gate).", target, nil)
	s.descEngine = prometheus.NewDesc(MetricEngineInfo,
		"Model-server engine whose naming inferprobe uses for this target (unknown if none matched).",
		[]string{labelTarget, labelEngine}, nil)
	s.publish(0, "", nil)
	return s, nil
}

func engineNames() string {
	var b bytes.Buffer
	for i, e := range engines {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.name)
	}
	return b.String()
}

// Target returns the target name the scraper labels its series with.
func (s *Scraper) Target() string { return s.target }

// Inherit carries the counters of prev, the scraper this one replaces on a config reload, so
// that counters do not reset; when both scrape the same URL, restart detection also continues
// from prev's last observation. Call it before Run, after prev's Run has returned.
func (s *Scraper) Inherit(prev *Scraper) {
	if prev == nil || prev == s {
		return
	}
	prev.mu.Lock()
	errs, restarts, rs, url := prev.errs, prev.restarts, prev.rs.clone(), prev.url
	prev.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs, s.restarts = errs, restarts
	if url == s.url {
		rs.threshold = s.rs.threshold
		s.rs = rs
	}
	s.publish(0, "", nil)
}

// Run scrapes now and then every interval until ctx ends; a scrape in flight is abandoned then.
// Call it once per scraper, from the goroutine that owns the scraper's lifetime.
func (s *Scraper) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		_ = s.Scrape(ctx) // failures are counted, exposed and logged by Scrape
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.now:
		}
	}
}

// ScrapeNow makes Run scrape at once rather than at the next interval. The probe path calls it
// when it saw the server come back and re-armed the warmup gate itself: the restart that scrape
// (or the next successful one) detects is counted, but does not re-arm the gate a second time,
// which would throw away the cold start just measured. It never blocks.
func (s *Scraper) ScrapeNow() {
	s.rearmed.Store(s.calls.Add(1))
	select {
	case s.now <- struct{}{}:
	default: // one is pending already
	}
}

// Scrape performs one scrape now, publishes its snapshot and, on a detected restart, calls the
// Rearmer. It returns the scrape's error (a *ScrapeError), or ctx's error when ctx ended first, in
// which case nothing is counted or published.
func (s *Scraper) Scrape(ctx context.Context) error {
	startedAfter := s.calls.Load() // the ScrapeNow calls this scrape started after
	restart, err := s.scrape(ctx)
	if err != nil {
		return err
	}
	if r := s.rearmed.Load(); r != 0 && r <= startedAfter && s.rearmed.CompareAndSwap(r, 0) && restart != "" {
		s.logger.Info("model-server restart already acted on by the probe path", "reason", restart)
		return nil
	}
	if restart != "" && s.rearm != nil {
		s.rearm.Rearm(restart)
	}
	return nil
}

func (s *Scraper) scrape(parent context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	start := time.Now()
	table, raw, err := s.fetchAndParse(ctx)
	duration := time.Since(start).Seconds()
	if parent.Err() != nil {
		return "", parent.Err() // shutting down or replaced: not the server's doing
	}
	if err != nil {
		var se *ScrapeError
		if !errors.As(err, &se) {
			se = &ScrapeError{Reason: ReasonParse, Err: err}
		}
		for i, r := range reasons {
			if r == se.Reason {
				s.errs[i]++
			}
		}
		s.rs.failed(se.Reason)
		if s.up || !s.scraped {
			s.logger.Warn("model-server metrics scrape failed", "target", s.target, "reason", se.Reason, "err", se.Err)
		} else {
			s.logger.Debug("model-server metrics scrape failed", "target", s.target, "reason", se.Reason, "err", se.Err)
		}
		s.up, s.scraped = false, true
		s.publish(duration, "", nil)
		return "", se
	}

	s.shrinkBuffers()
	spec := s.engineFor()
	res := s.norm.normalise(table, raw, spec, s.rs.scratch())
	restart := s.rs.succeeded(res.startTime, res.haveStartTime, res.counters)
	if restart != "" {
		s.restarts++
		s.logger.Warn("model-server restart detected; re-arming warmup", "target", s.target, "reason", restart)
	} else if !s.up && s.scraped {
		s.logger.Info("model-server metrics scrape recovered", "target", s.target, "engine", spec.name)
	}
	s.up, s.scraped = true, true
	s.publish(duration, spec.name, &res)
	return restart, nil
}

// shrinkBuffers lets go of buffers one unusually large exposition grew, so a daemon does not
// hold the peak for ever. Call it only once the parsed families no longer alias the buffers.
func (s *Scraper) shrinkBuffers() {
	const keep = 1 << 20
	for _, b := range []*bytes.Buffer{&s.body, &s.text} {
		if b.Cap() > keep && b.Cap() > 4*b.Len() {
			*b = bytes.Buffer{}
		}
	}
}

// engineFor returns the configured engine, or the one whose prefix the last exposition used most.
func (s *Scraper) engineFor() engineSpec {
	if s.engine != EngineAuto {
		return s.spec
	}
	best := -1
	for i, n := range s.hits {
		if n > 0 && (best < 0 || n > s.hits[best]) {
			best = i
		}
	}
	if best < 0 {
		return engineSpec{name: EngineUnknown}
	}
	return engines[best]
}

// fetchAndParse gets the exposition into s.body and decodes what s.sel wants: the families the
// table reads and the passthrough families (the same map for protobuf).
func (s *Scraper) fetchAndParse(ctx context.Context) (table, raw map[string]*dto.MetricFamily, err error) {
	format, err := s.fetch(ctx)
	if err != nil {
		return nil, nil, err
	}
	clear(s.hits)
	if table, raw, err = s.parse(format); err != nil {
		return nil, nil, &ScrapeError{Reason: ReasonParse, Err: err}
	}
	return table, raw, nil
}

func (s *Scraper) fetch(ctx context.Context) (expfmt.Format, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return "", &ScrapeError{Reason: ReasonConnection, Err: err}
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("User-Agent", "inferprobe")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(s.timeout.Seconds(), 'f', -1, 64))
	resp, err := s.client.Do(req)
	if err != nil {
		return "", &ScrapeError{Reason: transportReason(err), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", &ScrapeError{Reason: ReasonHTTPStatus, Err: fmt.Errorf("HTTP status %s", resp.Status)}
	}
	if resp.ContentLength > s.maxBody {
		return "", &ScrapeError{Reason: ReasonTooLarge, Err: fmt.Errorf("body of %d bytes exceeds the limit of %d", resp.ContentLength, s.maxBody)}
	}
	s.body.Reset()
	n, err := s.body.ReadFrom(io.LimitReader(resp.Body, s.maxBody+1))
	if err != nil {
		return "", &ScrapeError{Reason: transportReason(err), Err: fmt.Errorf("reading body: %w", err)}
	}
	if n > s.maxBody {
		return "", &ScrapeError{Reason: ReasonTooLarge, Err: fmt.Errorf("body exceeds the limit of %d bytes", s.maxBody)}
	}
	return expfmt.ResponseFormat(resp.Header), nil
}

// transportReason tells a timeout from any other failure to connect or read.
func transportReason(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonConnection
}

// parse decodes s.body. Protobuf is decoded whole by expfmt; the text formats go through
// prepare. A response without a known content type is read as text, the format every engine
// here speaks.
func (s *Scraper) parse(format expfmt.Format) (table, raw map[string]*dto.MetricFamily, err error) {
	if format.FormatType() == expfmt.TypeProtoDelim {
		fams, err := s.parseProto(format)
		return fams, fams, err
	}
	s.tr.reset()
	s.text.Reset()
	if err := prepare(&s.text, s.body.Bytes(), format.FormatType() == expfmt.TypeOpenMetrics, s.sel, s.hits, s.tr); err != nil {
		return nil, nil, err
	}
	if s.text.Len() > 0 {
		s.reader.Reset(s.text.Bytes())
		if raw, err = s.parser.TextToMetricFamilies(&s.reader); err != nil {
			return nil, nil, err
		}
	}
	return s.tr.families(), raw, nil
}

func (s *Scraper) parseProto(format expfmt.Format) (map[string]*dto.MetricFamily, error) {
	if err := checkDelimited(s.body.Bytes()); err != nil {
		return nil, err
	}
	s.reader.Reset(s.body.Bytes())
	dec := expfmt.NewDecoder(&s.reader, format)
	fams := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			return fams, nil
		} else if err != nil {
			return nil, err
		}
		name := mf.GetName()
		for i := range engines {
			if strings.HasPrefix(name, engines[i].prefix) {
				s.hits[i] += len(mf.GetMetric())
			}
		}
		if table, pass := s.sel.classify([]byte(name)); !table && !pass {
			continue
		}
		if _, dup := fams[name]; dup {
			return nil, fmt.Errorf("metric family %q appears twice", name)
		}
		fams[name] = mf
	}
}

// checkDelimited walks the length prefixes of a delimited protobuf stream. expfmt's decoder
// allocates whatever a prefix claims (it decodes with no size limit), so a corrupt or hostile
// body could claim gigabytes; here every message must fit in the body already read.
func checkDelimited(b []byte) error {
	for len(b) > 0 {
		size, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("protobuf: bad length prefix")
		}
		if size > uint64(len(b)-n) {
			return fmt.Errorf("protobuf: message of %d bytes but only %d left", size, len(b)-n)
		}
		b = b[n+int(size):]
	}
	return nil
}

// publish stores a new snapshot: health always, the rest only after a successful scrape.
// duration 0 with no scrape yet leaves the duration series out.
func (s *Scraper) publish(duration float64, engine string, res *result) {
	n := 4 + len(reasons)
	if res != nil {
		n += len(res.metrics)
	}
	ms := make([]prometheus.Metric, 0, n)
	up := 0.0
	if res != nil {
		up = 1
	}
	ms = append(ms, prometheus.MustNewConstMetric(s.descUp, prometheus.GaugeValue, up, s.target))
	if s.scraped {
		ms = append(ms, prometheus.MustNewConstMetric(s.descDuration, prometheus.GaugeValue, duration, s.target))
	}
	for i, r := range reasons {
		ms = append(ms, prometheus.MustNewConstMetric(s.descErrors, prometheus.CounterValue, s.errs[i], s.target, r))
	}
	ms = append(ms, prometheus.MustNewConstMetric(s.descRestarts, prometheus.CounterValue, s.restarts, s.target))
	snap := &snapshot{metrics: ms}
	if res != nil {
		snap.metrics = append(snap.metrics, prometheus.MustNewConstMetric(s.descEngine, prometheus.GaugeValue, 1, s.target, engine))
		snap.metrics = append(snap.metrics, res.metrics...)
		snap.passthrough = res.passthrough
	}
	s.snap.Store(snap)
}

// Describe implements prometheus.Collector. It sends nothing: the series depend on what the
// server exposes, so the scraper is an unchecked collector.
func (s *Scraper) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector: it sends the last snapshot, without waiting for any
// scrape in progress.
func (s *Scraper) Collect(ch chan<- prometheus.Metric) {
	s.snap.Load().send(ch, admission{})
}

// send emits the snapshot; passthrough families another target already claimed with an
// incompatible type are skipped.
func (snap *snapshot) send(ch chan<- prometheus.Metric, adm admission) {
	for _, m := range snap.metrics {
		ch <- m
	}
	for _, pf := range snap.passthrough {
		if !adm.admit(pf.name, pf.typ) {
			continue
		}
		for _, m := range pf.metrics {
			ch <- m
		}
	}
}
