package accelerator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// dryRunGPMGap is the wait between the dry run's two polls: GPM bandwidth needs two samples.
const dryRunGPMGap = time.Second

// DryRun is the check a person runs on a GPU machine (inferprobe accelerators): it initialises
// NVML with lib, polls the selected GPUs (twice, dryRunGPMGap apart, when a GPU supports GPM),
// writes a table of what was read per GPU and then the exposition text of the metrics to w, and
// shuts NVML down. It returns an error when NVML cannot be initialised or ctx ends first.
func DryRun(ctx context.Context, lib Library, opts Options, w io.Writer) error {
	return dryRun(ctx, lib, opts, w, dryRunGPMGap)
}

func dryRun(ctx context.Context, lib Library, opts Options, w io.Writer, gap time.Duration) error {
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := New(lib, opts, logger)
	c.started.Store(true) // this goroutine owns the poller; Run must not start another
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.open(); err != nil {
		return fmt.Errorf("initialising NVML: %w", err)
	}
	defer c.close()
	c.poll()
	if c.anyGPM() {
		t := time.NewTimer(gap)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		c.poll()
	}
	s := c.snap.Load()
	if err := writeTable(w, c, s); err != nil {
		return err
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		return err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("gathering the metrics: %w", err)
	}
	if _, err := fmt.Fprintln(w, "\n# Exposition"); err != nil {
		return err
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return err
		}
	}
	return nil
}

func (c *Collector) anyGPM() bool {
	for _, g := range c.gpus {
		if g.gpm {
			return true
		}
	}
	return false
}

// writeTable prints one block per GPU with every value read, or why it is missing.
func writeTable(w io.Writer, c *Collector, s *snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NVML driver %s, CUDA %s, %d GPU(s) selected, poll took %s\n",
		orNA(c.driverVersion), orNA(c.cudaVersion), len(s.readings), s.duration.Round(time.Microsecond))
	for i := range s.readings {
		r := &s.readings[i]
		fmt.Fprintf(tw, "\nGPU %d\t%s\n", r.Index, r.UUID)
		row := func(name string, v value, format func(float64) string) {
			fmt.Fprintf(tw, "  %s\t%s\n", name, show(v, format))
		}
		pct := func(x float64) string { return fmt.Sprintf("%.1f %%", x*100) }
		mib := func(x float64) string { return fmt.Sprintf("%.0f MiB", x/(1<<20)) }
		unit := func(u string, scale float64, decimals int) func(float64) string {
			return func(x float64) string { return fmt.Sprintf("%.*f %s", decimals, x/scale, u) }
		}
		fmt.Fprintf(tw, "  name\t%s\n", orNA(r.Name))
		fmt.Fprintf(tw, "  pci bus id\t%s\n", orNA(r.PCIBusID))
		row("utilization", r.Utilization, pct)
		row("memory busy", r.MemoryBusy, pct)
		bw := r.MemoryBandwidth
		if !bw.ok && bw.err == nil {
			bw.err = errors.New("n/a (GPM not supported or not yet two samples)")
		}
		row("memory bandwidth (GPM)", bw, pct)
		row("memory used", r.MemoryUsed, mib)
		row("memory total", r.MemoryTotal, mib)
		row("memory reserved", r.MemoryReserved, mib)
		row("power", r.Power, unit("W", 1, 1))
		row("power limit", r.PowerLimit, unit("W", 1, 1))
		row("energy since driver load", r.Energy, unit("kJ", 1000, 3))
		row("SM clock", r.SMClock, unit("MHz", 1e6, 0))
		row("memory clock", r.MemoryClock, unit("MHz", 1e6, 0))
		row("temperature", r.Temperature, unit("°C", 1, 0))
		fmt.Fprintf(tw, "  clock events active\t%s\n", showReasons(r, c.reasons))
		row("ECC enabled", r.ECCEnabled, yesNo)
		if r.ECCEnabled.ok && r.ECCEnabled.v == 1 {
			row("ECC errors corrected", r.ECCCorrected, count)
			row("ECC errors uncorrected", r.ECCUncorrected, count)
		}
		row("MIG mode", r.MIGEnabled, yesNo)
		for _, m := range r.MIGInstances {
			fmt.Fprintf(tw, "  MIG instance\t%s gi=%d ci=%d memory %s\n", m.UUID, m.GPUInstanceID, m.ComputeInstanceID,
				migMemory(m))
		}
		if r.MIGInstancesErr != nil {
			fmt.Fprintf(tw, "  MIG instances\terror: %v\n", r.MIGInstancesErr)
		}
		if r.Lost {
			fmt.Fprintf(tw, "  GPU LOST\tthe remaining reads were skipped\n")
		}
	}
	return tw.Flush()
}

func show(v value, format func(float64) string) string {
	switch {
	case v.ok:
		return format(v.v)
	case errors.Is(v.err, ErrNotSupported):
		return "n/a (not supported)"
	case v.err != nil:
		return "error: " + v.err.Error()
	}
	return "n/a"
}

func showReasons(r *deviceReading, reasons []ClockEventReason) string {
	if !r.ClockEvents.ok {
		return show(r.ClockEvents, nil)
	}
	var active []string
	for _, reason := range reasons {
		if r.ClockEventMask&reason.Bit != 0 {
			active = append(active, reason.Name)
		}
	}
	if len(active) == 0 {
		return "none"
	}
	return strings.Join(active, ", ")
}

func migMemory(m MIGInstance) string {
	if !m.HasMemory {
		return "n/a"
	}
	return fmt.Sprintf("%d/%d MiB", m.MemoryUsed>>20, m.MemoryTotal>>20)
}

func yesNo(x float64) string {
	if x == 1 {
		return "yes"
	}
	return "no"
}

func count(x float64) string { return fmt.Sprintf("%.0f", x) }

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
