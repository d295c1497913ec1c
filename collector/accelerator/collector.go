package accelerator

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// staleIntervals is how many poll intervals a snapshot stays servable. Past that the poller is
// stuck (a hung NVML call) and serving old values as current would mislead, so per-GPU series
// are withheld and up reads 0 until a poll completes again.
const staleIntervals = 3

// Collector is a prometheus.Collector for per-GPU NVML metrics. NVML is read only by Run's
// goroutine, on an interval; Collect serves the last snapshot and never calls NVML, so a slow or
// hung NVML can delay the data but never a scrape.
//
// Lifecycle: New, register, then Run(ctx) in a goroutine owned by the caller; Run calls Init
// once, polls until ctx is done, and calls Shutdown before it returns. If Init fails the
// collector exports inferprobe_accelerator_up 0 and makes no other NVML call, ever.
type Collector struct {
	lib        Library
	opts       Options
	logger     *slog.Logger
	descs      descs
	reasons    []ClockEventReason
	now        func() time.Time // wall clock; tests replace it
	staleAfter time.Duration

	started atomic.Bool
	snap    atomic.Pointer[snapshot] // the last published poll; read by Collect

	// Poller state, touched only by the one goroutine running Run (or DryRun).
	state         libState
	reinit        bool // a GPU was lost: Shutdown and Init before the next read
	enumerated    bool
	gpus          []*gpu
	driverVersion string
	cudaVersion   string
	errCounts     map[errKey]uint64
	logged        map[errKey]bool
}

type libState int

const (
	stateClosed libState = iota // not initialised (yet, or again after Shutdown)
	stateOpen                   // Init succeeded
	stateFailed                 // Init failed: never call NVML again
)

// gpu is one selected device and what the poller keeps about it between polls.
type gpu struct {
	index                int
	dev                  Device
	uuid, name, pciBusID string

	gpm      bool         // GPM is supported and both sample buffers are allocated
	samples  [2]GPMSample // filled alternately; the metric spans the previous and the newest
	next     int          // index of the buffer the next sample goes into
	havePrev bool         // samples[1-next] holds a valid sample from the previous poll
}

// errKey identifies a failure counter; every part is bounded.
type errKey struct {
	gpu, call, reason string
}

// value is one quantity read from NVML: ok with v, or err, or neither (not applicable, e.g.
// ECC counters while ECC is off, or bandwidth before the second GPM sample).
type value struct {
	v   float64
	ok  bool
	err error
}

func (x *value) set(v float64) { x.v, x.ok = v, true }

// deviceReading is everything one poll read from one GPU.
type deviceReading struct {
	Index                             int
	UUID, Name, PCIBusID              string
	Utilization, MemoryBusy           value
	MemoryBandwidth                   value
	MemoryUsed, MemoryTotal           value
	MemoryReserved                    value
	Power, PowerLimit, Energy         value
	SMClock, MemoryClock, Temperature value
	ClockEvents                       value // ok when ClockEventMask was read
	ClockEventMask                    uint64
	ECCEnabled, ECCCorrected          value
	ECCUncorrected                    value
	MIGEnabled                        value
	MIGInstances                      []MIGInstance
	MIGInstancesErr                   error
	Lost                              bool // the GPU answered GPU_IS_LOST; later reads were skipped
}

// snapshot is one poll's result, immutable once published.
type snapshot struct {
	taken    time.Time // when the poll finished
	polled   bool      // NVML was read (initialised and devices enumerated)
	duration time.Duration
	readings []deviceReading
	common   []prometheus.Metric // errors, poll duration, device count: always served
	device   []prometheus.Metric // per-GPU series: served while the snapshot is fresh
}

// New returns a collector reading lib with opts. A nil logger discards logs; a non-positive
// Interval becomes DefaultInterval. It calls nothing in lib: Run does.
func New(lib Library, opts Options, logger *slog.Logger) *Collector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	return &Collector{
		lib:        lib,
		opts:       opts,
		logger:     logger,
		descs:      newDescs(),
		reasons:    ClockEventReasons(),
		now:        time.Now,
		staleAfter: staleIntervals * opts.Interval,
		errCounts:  map[errKey]uint64{},
		logged:     map[errKey]bool{},
	}
}

// Run initialises NVML, polls it every Options.Interval until ctx is done, then frees what it
// holds and shuts NVML down. It returns when ctx is done (after a poll in progress finishes: an
// NVML call cannot be interrupted). If Init fails it makes no other NVML call and just waits for
// ctx. Run may be called only once per Collector.
func (c *Collector) Run(ctx context.Context) {
	if !c.started.CompareAndSwap(false, true) {
		c.logger.Error("accelerator collector: Run called more than once; ignoring the extra call")
		return
	}
	if ctx.Err() != nil {
		return
	}
	if err := c.open(); err != nil {
		<-ctx.Done()
		return
	}
	defer c.close()
	c.poll()
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil {
				return
			}
			c.poll()
		}
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs.all() {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It serves the last snapshot and never calls NVML.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap.Load()
	fresh := false
	if s != nil && s.polled {
		age := max(c.now().Sub(s.taken), 0)
		fresh = age <= c.staleAfter
		ch <- prometheus.MustNewConstMetric(c.descs.age, prometheus.GaugeValue, age.Seconds())
	}
	up := 0.0
	if fresh {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.descs.up, prometheus.GaugeValue, up)
	if s == nil {
		return
	}
	for _, m := range s.common {
		ch <- m
	}
	if fresh {
		for _, m := range s.device {
			ch <- m
		}
	}
}

// open calls Init and, when it succeeds, reads the versions and enumerates the GPUs. A failed
// Init is final: it is logged, counted and published, and the state forbids further calls.
func (c *Collector) open() error {
	start := time.Now()
	if err := c.lib.Init(); err != nil {
		c.state = stateFailed
		c.errCounts[errKey{call: "init", reason: reasonOf(err)}]++
		c.logger.Warn("NVML initialisation failed; accelerator metrics are disabled (inferprobe_accelerator_up 0) and NVML will not be called again",
			"err", err)
		c.publish(start, nil, false)
		return err
	}
	c.state = stateOpen
	c.reinit = false
	c.driverVersion = ""
	if v, err := c.lib.DriverVersion(); err != nil {
		c.fail(-1, "driver_version", err)
	} else {
		c.driverVersion = v
	}
	c.cudaVersion = ""
	if v, err := c.lib.CUDADriverVersion(); err != nil {
		c.fail(-1, "cuda_driver_version", err)
	} else {
		c.cudaVersion = cudaVersionString(v)
	}
	c.enumerate()
	return nil
}

// close frees the GPM buffers and shuts NVML down, if it is open.
func (c *Collector) close() {
	if c.state != stateOpen {
		return
	}
	for _, g := range c.gpus {
		c.freeGPM(g)
	}
	if err := c.lib.Shutdown(); err != nil {
		c.fail(-1, "shutdown", err)
	}
	c.state = stateClosed
	c.gpus = nil
	c.enumerated = false
}

// enumerate finds the selected GPUs and reads what does not change while the driver is loaded.
func (c *Collector) enumerate() {
	n, err := c.lib.DeviceCount()
	if err != nil {
		c.fail(-1, "device_count", err)
		return
	}
	sel := newSelector(c.opts.Devices)
	gpus := make([]*gpu, 0, n)
	for i := range n {
		d, err := c.lib.DeviceByIndex(i)
		if err != nil {
			c.fail(i, "device_handle", err)
			continue
		}
		uuid, err := d.UUID()
		if err != nil { // without a UUID the GPU can be neither labelled nor matched
			c.fail(i, "uuid", err)
			continue
		}
		if !sel.match(i, uuid) {
			continue
		}
		g := &gpu{index: i, dev: d, uuid: uuid}
		if g.name, err = d.Name(); err != nil {
			c.fail(i, "name", err)
		}
		if g.pciBusID, err = d.PCIBusID(); err != nil {
			c.fail(i, "pci_info", err)
		}
		c.setupGPM(g)
		gpus = append(gpus, g)
	}
	if u := sel.unmatched(); len(u) > 0 {
		c.logger.Warn("--collector.accelerator.devices entries match no GPU", "entries", u, "gpus", n)
	}
	c.gpus = gpus
	c.enumerated = true
}

func (c *Collector) setupGPM(g *gpu) {
	ok, err := g.dev.GPMSupported()
	if err != nil {
		c.fail(g.index, "gpm_support", err)
		return
	}
	if !ok {
		return
	}
	for i := range g.samples {
		s, err := c.lib.GPMSampleAlloc()
		if err != nil {
			c.fail(g.index, "gpm_alloc", err)
			c.freeGPM(g)
			return
		}
		g.samples[i] = s
	}
	g.gpm = true
}

func (c *Collector) freeGPM(g *gpu) {
	for i, s := range g.samples {
		if s == nil {
			continue
		}
		if err := c.lib.GPMSampleFree(s); err != nil {
			c.fail(g.index, "gpm_free", err)
		}
		g.samples[i] = nil
	}
	g.gpm, g.havePrev = false, false
}

// poll reads every selected GPU once and publishes the result.
func (c *Collector) poll() {
	if c.state == stateFailed {
		return
	}
	start := time.Now()
	if c.reinit {
		c.logger.Info("re-initialising NVML after a lost GPU")
		c.close()
		if err := c.open(); err != nil {
			return // open published the failure
		}
	}
	if c.state != stateOpen {
		return
	}
	if !c.enumerated {
		if c.enumerate(); !c.enumerated {
			c.publish(start, nil, false)
			return
		}
	}
	readings := make([]deviceReading, 0, len(c.gpus))
	for _, g := range c.gpus {
		readings = append(readings, c.read(g))
	}
	c.publish(start, readings, true)
}

// reader runs the reads of one GPU, recording failures; after GPU_IS_LOST it skips the rest.
type reader struct {
	c    *Collector
	g    *gpu
	lost bool
}

// do runs fn (one NVML query that stores its results on success) unless the GPU was lost; on
// failure it marks fields with the error and counts it.
func (r *reader) do(call string, fn func() error, fields ...*value) bool {
	if r.lost {
		return false
	}
	err := fn()
	if err == nil {
		return true
	}
	for _, f := range fields {
		f.err = err
	}
	r.c.fail(r.g.index, call, err)
	if errors.Is(err, ErrGPULost) {
		r.lost = true
	}
	return false
}

func ratio(pct uint32) float64 { return float64(pct) / 100 }

// read queries one GPU. Each query fills its own fields, so one failing leaves the others.
func (c *Collector) read(g *gpu) deviceReading {
	r := deviceReading{Index: g.index, UUID: g.uuid, Name: g.name, PCIBusID: g.pciBusID}
	rd := reader{c: c, g: g}
	d := g.dev
	rd.do("utilization", func() error {
		u, err := d.UtilizationRates()
		if err == nil {
			r.Utilization.set(ratio(u.GPU))
			r.MemoryBusy.set(ratio(u.Memory))
		}
		return err
	}, &r.Utilization, &r.MemoryBusy)
	rd.do("memory_info", func() error {
		m, err := d.MemoryInfo()
		if err == nil {
			r.MemoryUsed.set(float64(m.Used))
			r.MemoryTotal.set(float64(m.Total))
			if m.HasReserved {
				r.MemoryReserved.set(float64(m.Reserved))
			}
		}
		return err
	}, &r.MemoryUsed, &r.MemoryTotal, &r.MemoryReserved)
	readNumber(&rd, "power_usage", &r.Power, fromMilli, d.PowerUsage)
	readNumber(&rd, "power_limit", &r.PowerLimit, fromMilli, d.EnforcedPowerLimit)
	readNumber(&rd, "energy", &r.Energy, fromMilli, d.TotalEnergyConsumption)
	readNumber(&rd, "sm_clock", &r.SMClock, fromMega, func() (uint32, error) { return d.ClockMHz(ClockSM) })
	readNumber(&rd, "memory_clock", &r.MemoryClock, fromMega, func() (uint32, error) { return d.ClockMHz(ClockMemory) })
	readNumber(&rd, "temperature", &r.Temperature, nil, d.Temperature)
	rd.do("clock_events", func() error {
		mask, err := d.ClockEventReasons()
		if err == nil {
			r.ClockEventMask = mask
			r.ClockEvents.set(float64(mask))
		}
		return err
	}, &r.ClockEvents)
	readFlag(&rd, "ecc_mode", &r.ECCEnabled, d.ECCEnabled)
	if r.ECCEnabled.ok && r.ECCEnabled.v == 1 {
		readNumber(&rd, "ecc_errors", &r.ECCCorrected, nil, func() (uint64, error) { return d.ECCErrors(false) })
		readNumber(&rd, "ecc_errors", &r.ECCUncorrected, nil, func() (uint64, error) { return d.ECCErrors(true) })
	}
	readFlag(&rd, "mig_mode", &r.MIGEnabled, d.MIGEnabled)
	if r.MIGEnabled.ok && r.MIGEnabled.v == 1 {
		rd.do("mig_instances", func() error {
			insts, err := d.MIGInstances()
			if err == nil {
				r.MIGInstances = insts
			}
			r.MIGInstancesErr = err
			return err
		})
	}
	if g.gpm {
		c.readGPM(&rd, &r)
	}
	r.Lost = rd.lost
	return r
}

// readNumber runs one numeric query and stores its result in dst, converted to base units by
// conv (nil: as is).
func readNumber[T uint32 | uint64](rd *reader, call string, dst *value, conv func(float64) float64, fn func() (T, error)) {
	rd.do(call, func() error {
		n, err := fn()
		if err == nil {
			v := float64(n)
			if conv != nil {
				v = conv(v)
			}
			dst.set(v)
		}
		return err
	}, dst)
}

// Unit conversions to base units. Dividing (not multiplying by 1e-3) keeps 123456790 mJ at
// exactly 123456.79 J.
func fromMilli(x float64) float64 { return x / 1000 }
func fromMega(x float64) float64  { return x * 1e6 }

// readFlag runs one yes/no query and stores it in dst as 1 or 0.
func readFlag(rd *reader, call string, dst *value, fn func() (bool, error)) {
	rd.do(call, func() error {
		on, err := fn()
		if err == nil {
			dst.set(b2f(on))
		}
		return err
	}, dst)
}

// readGPM takes this poll's GPM sample and, when the previous poll left one, computes the DRAM
// bandwidth utilisation over the time between them.
func (c *Collector) readGPM(rd *reader, r *deviceReading) {
	g := rd.g
	cur := g.samples[g.next]
	if !rd.do("gpm_sample", func() error { return g.dev.GPMSampleGet(cur) }, &r.MemoryBandwidth) {
		g.havePrev = false
		return
	}
	if g.havePrev {
		rd.do("gpm_metrics", func() error {
			pct, err := c.lib.GPMMetric(g.samples[1-g.next], cur, GPMMetricDRAMBandwidthUtil)
			if err == nil {
				r.MemoryBandwidth.set(pct / 100)
			}
			return err
		}, &r.MemoryBandwidth)
	}
	g.next, g.havePrev = 1-g.next, true
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// publish builds the metrics of one poll and makes them the snapshot Collect serves.
func (c *Collector) publish(start time.Time, readings []deviceReading, polled bool) {
	s := &snapshot{taken: c.now(), polled: polled, duration: time.Since(start), readings: readings}
	for k, n := range c.errCounts {
		s.common = append(s.common, prometheus.MustNewConstMetric(c.descs.errors, prometheus.CounterValue, float64(n),
			k.gpu, k.call, k.reason))
	}
	s.common = append(s.common, prometheus.MustNewConstMetric(c.descs.pollDuration, prometheus.GaugeValue, s.duration.Seconds()))
	if polled {
		s.common = append(s.common, prometheus.MustNewConstMetric(c.descs.devices, prometheus.GaugeValue, float64(len(c.gpus))))
	}
	for i := range readings {
		s.device = c.descs.deviceMetrics(s.device, &readings[i], c.driverVersion, c.cudaVersion, c.reasons)
	}
	c.snap.Store(s)
}

// fail counts a failed NVML call and logs the first failure of each kind; a lost GPU schedules
// a re-initialisation before the next poll.
func (c *Collector) fail(index int, call string, err error) {
	k := errKey{call: call, reason: reasonOf(err)}
	if index >= 0 {
		k.gpu = strconv.Itoa(index)
	}
	c.errCounts[k]++
	if k.reason == reasonGPULost {
		c.reinit = true
	}
	if c.logged[k] {
		return
	}
	c.logged[k] = true
	level := slog.LevelWarn
	if k.reason == reasonNotSupported {
		level = slog.LevelDebug // a capability the GPU lacks, not a fault
	}
	c.logger.Log(context.Background(), level, "NVML call failed; the series it feeds are absent (later failures are only counted)",
		"gpu", k.gpu, "call", call, "reason", k.reason, "err", err)
}

// Values of the reason label of errors_total.
const (
	reasonNotSupported = "not_supported"
	reasonGPULost      = "gpu_lost"
	reasonError        = "error"
)

func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrNotSupported):
		return reasonNotSupported
	case errors.Is(err, ErrGPULost):
		return reasonGPULost
	}
	return reasonError
}

// cudaVersionString renders NVML's CUDA version number (12040) as "12.4".
func cudaVersionString(v int) string {
	return strconv.Itoa(v/1000) + "." + strconv.Itoa(v%1000/10)
}
