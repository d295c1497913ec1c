package accelerator

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "inferprobe_accelerator_"

// descs holds every series the collector can expose. Built once per Collector (no package state).
type descs struct {
	up, age, pollDuration, devices, errors *prometheus.Desc

	info, util, memBusy, memBandwidth          *prometheus.Desc
	memUsed, memTotal, memReserved             *prometheus.Desc
	power, powerLimit, energy                  *prometheus.Desc
	smClock, memClock, temperature, clockEvent *prometheus.Desc
	eccEnabled, eccErrors                      *prometheus.Desc
	migMode, migInfo, migMemUsed, migMemTotal  *prometheus.Desc
}

func newDescs() descs {
	gpu := []string{"gpu", "uuid"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+name, help, labels, nil)
	}
	return descs{
		up: d("up", "1 if NVML is initialised and the last poll of it completed within three poll intervals, else 0."),
		age: d("last_update_age_seconds",
			"Seconds since the last completed NVML poll, at scrape time; per-GPU series are withheld once it exceeds three poll intervals."),
		pollDuration: d("poll_duration_seconds", "Wall-clock seconds the last NVML poll took (all selected GPUs)."),
		devices:      d("devices", "Number of GPUs selected for export in the last NVML enumeration."),
		errors: d("errors_total",
			"Failed NVML calls since start, by call and reason (not_supported, gpu_lost, error); gpu is empty for calls not tied to one GPU.",
			"gpu", "call", "reason"),

		info: d("info", "Static GPU identity; always 1.",
			"gpu", "uuid", "name", "pci_bus_id", "driver_version", "cuda_version"),
		util: d("utilization_ratio",
			"Fraction (0..1) of the last NVML sample period (1/6 s to 1 s) during which one or more kernels ran on the GPU.", gpu...),
		memBusy: d("memory_busy_ratio",
			"Fraction (0..1) of the last NVML sample period during which device memory was being read or written.", gpu...),
		memBandwidth: d("memory_bandwidth_utilization_ratio",
			"Fraction (0..1) of peak DRAM bandwidth used between the last two polls (GPM, Hopper and newer; absent elsewhere).", gpu...),
		memUsed: d("memory_used_bytes",
			"Device memory allocated, in bytes (excludes the driver-reserved part where memory_reserved_bytes is exported).", gpu...),
		memTotal:    d("memory_total_bytes", "Total installed device memory, in bytes.", gpu...),
		memReserved: d("memory_reserved_bytes", "Device memory reserved by the driver and firmware, in bytes (NVML memory info v2).", gpu...),
		power:       d("power_watts", "Board power draw in watts as NVML reports it (a 1 s average on Ampere and newer except A100, instantaneous on older GPUs).", gpu...),
		powerLimit:  d("power_limit_watts", "Power limit in force in watts (the enforced limit, the least of all limits set).", gpu...),
		energy:      d("energy_joules_total", "Energy consumed since the driver was loaded, in joules (NVML total energy, mJ / 1000).", gpu...),
		smClock:     d("sm_clock_hertz", "Current SM (streaming multiprocessor) clock frequency in hertz.", gpu...),
		memClock:    d("memory_clock_hertz", "Current memory clock frequency in hertz.", gpu...),
		temperature: d("temperature_celsius", "GPU core temperature in degrees Celsius.", gpu...),
		clockEvent: d("clock_event_active",
			"1 if the named clock-event (throttle) reason is holding the clocks down now, else 0.", "gpu", "uuid", "reason"),
		eccEnabled: d("ecc_enabled", "1 if ECC is enabled now, else 0.", gpu...),
		eccErrors: d("ecc_errors_total",
			"Device memory ECC errors since the driver was loaded (volatile count), by type (corrected, uncorrected); only where ECC is enabled.",
			"gpu", "uuid", "type"),
		migMode: d("mig_mode", "1 if MIG (multi-instance GPU) mode is enabled now, else 0.", gpu...),
		migInfo: d("mig_instance_info", "One series per MIG device of a GPU in MIG mode; always 1.",
			"gpu", "uuid", "mig_uuid", "gpu_instance_id", "compute_instance_id"),
		migMemUsed:  d("mig_memory_used_bytes", "Device memory used by a MIG instance, in bytes.", "gpu", "uuid", "mig_uuid"),
		migMemTotal: d("mig_memory_total_bytes", "Device memory of a MIG instance, in bytes.", "gpu", "uuid", "mig_uuid"),
	}
}

// all returns every desc, for Describe.
func (d *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{
		d.up, d.age, d.pollDuration, d.devices, d.errors,
		d.info, d.util, d.memBusy, d.memBandwidth, d.memUsed, d.memTotal, d.memReserved,
		d.power, d.powerLimit, d.energy, d.smClock, d.memClock, d.temperature, d.clockEvent,
		d.eccEnabled, d.eccErrors, d.migMode, d.migInfo, d.migMemUsed, d.migMemTotal,
	}
}

// deviceMetrics turns one GPU's reading into metrics, appending to out. Fields that were not
// read (not supported, failed, not applicable) produce no series.
func (d *descs) deviceMetrics(out []prometheus.Metric, r *deviceReading, driver, cuda string, reasons []ClockEventReason) []prometheus.Metric {
	idx := strconv.Itoa(r.Index)
	out = append(out, prometheus.MustNewConstMetric(d.info, prometheus.GaugeValue, 1,
		idx, r.UUID, r.Name, r.PCIBusID, driver, cuda))
	gauges := []struct {
		desc *prometheus.Desc
		v    value
	}{
		{d.util, r.Utilization},
		{d.memBusy, r.MemoryBusy},
		{d.memBandwidth, r.MemoryBandwidth},
		{d.memUsed, r.MemoryUsed},
		{d.memTotal, r.MemoryTotal},
		{d.memReserved, r.MemoryReserved},
		{d.power, r.Power},
		{d.powerLimit, r.PowerLimit},
		{d.smClock, r.SMClock},
		{d.memClock, r.MemoryClock},
		{d.temperature, r.Temperature},
		{d.eccEnabled, r.ECCEnabled},
		{d.migMode, r.MIGEnabled},
	}
	for _, g := range gauges {
		if g.v.ok {
			out = append(out, prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.v.v, idx, r.UUID))
		}
	}
	if r.Energy.ok {
		out = append(out, prometheus.MustNewConstMetric(d.energy, prometheus.CounterValue, r.Energy.v, idx, r.UUID))
	}
	if r.ClockEvents.ok {
		for _, reason := range reasons {
			v := 0.0
			if r.ClockEventMask&reason.Bit != 0 {
				v = 1
			}
			out = append(out, prometheus.MustNewConstMetric(d.clockEvent, prometheus.GaugeValue, v, idx, r.UUID, reason.Name))
		}
	}
	if r.ECCCorrected.ok {
		out = append(out, prometheus.MustNewConstMetric(d.eccErrors, prometheus.CounterValue, r.ECCCorrected.v, idx, r.UUID, "corrected"))
	}
	if r.ECCUncorrected.ok {
		out = append(out, prometheus.MustNewConstMetric(d.eccErrors, prometheus.CounterValue, r.ECCUncorrected.v, idx, r.UUID, "uncorrected"))
	}
	for _, m := range r.MIGInstances {
		out = append(out, prometheus.MustNewConstMetric(d.migInfo, prometheus.GaugeValue, 1, idx, r.UUID, m.UUID,
			strconv.Itoa(m.GPUInstanceID), strconv.Itoa(m.ComputeInstanceID)))
		if m.HasMemory {
			out = append(out,
				prometheus.MustNewConstMetric(d.migMemUsed, prometheus.GaugeValue, float64(m.MemoryUsed), idx, r.UUID, m.UUID),
				prometheus.MustNewConstMetric(d.migMemTotal, prometheus.GaugeValue, float64(m.MemoryTotal), idx, r.UUID, m.UUID))
		}
	}
	return out
}
