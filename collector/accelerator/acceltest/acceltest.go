// Package acceltest is a fake NVML for tests beyond package accelerator: an accelerator.Library
// with two GPUs that answers every call the collector makes, so that a daemon started with it
// exports every inferprobe_accelerator_* series (MIG, GPM bandwidth, ECC, clock events and a
// failing call among them) on a machine without a GPU. The live check of the dashboards and
// rules (slo_live_test.go) runs on it.
package acceltest

import (
	"fmt"
	"sync"
	"time"

	"github.com/inferprobe/inferprobe/collector/accelerator"
)

// GPUs is how many GPUs the fake library has: GPU 0 is in MIG mode with two instances and has
// its clocks held down by a hardware slowdown; GPU 1 is whole, idle, and fails its temperature
// read (an NVML error other than "not supported") on every poll.
const GPUs = 2

// Library is the fake NVML. Its zero value is not usable: call New.
type Library struct {
	start time.Time
	mu    sync.Mutex
	inits int // successful Init calls not yet shut down
	seq   int // GPM samples taken, to order them
}

// New returns a fake NVML whose energy counters start now.
func New() *Library { return &Library{start: time.Now()} }

// Init succeeds.
func (l *Library) Init() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inits++
	return nil
}

// Shutdown undoes one Init.
func (l *Library) Shutdown() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inits == 0 {
		return &accelerator.Error{Code: 1, Message: "Uninitialized"}
	}
	l.inits--
	return nil
}

// DeviceCount returns GPUs.
func (l *Library) DeviceCount() (int, error) { return GPUs, nil }

// DeviceByIndex returns GPU index.
func (l *Library) DeviceByIndex(index int) (accelerator.Device, error) {
	if index < 0 || index >= GPUs {
		return nil, &accelerator.Error{Code: 2, Message: "Invalid Argument"}
	}
	return &device{lib: l, i: index}, nil
}

// DriverVersion returns a plausible driver version.
func (l *Library) DriverVersion() (string, error) { return "570.124.06", nil }

// CUDADriverVersion returns 12.8 in NVML's encoding.
func (l *Library) CUDADriverVersion() (int, error) { return 12080, nil }

// sample is a GPM sample buffer: which GPU filled it, and in which order.
type sample struct {
	gpu, seq int
}

// GPMSampleAlloc returns an empty sample buffer.
func (l *Library) GPMSampleAlloc() (accelerator.GPMSample, error) { return &sample{gpu: -1}, nil }

// GPMSampleFree accepts a buffer of GPMSampleAlloc.
func (l *Library) GPMSampleFree(accelerator.GPMSample) error { return nil }

// GPMMetric returns the DRAM bandwidth use of the GPU both samples are of (40% plus the GPU's
// index) when they are two samples of one GPU, older first, as NVML requires.
func (l *Library) GPMMetric(older, newer accelerator.GPMSample, id accelerator.GPMMetricID) (float64, error) {
	o, ok1 := older.(*sample)
	n, ok2 := newer.(*sample)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok1 || !ok2 || id != accelerator.GPMMetricDRAMBandwidthUtil || o.gpu < 0 || o.gpu != n.gpu || o.seq >= n.seq {
		return 0, &accelerator.Error{Code: 2, Message: "Invalid Argument"}
	}
	return 40 + float64(o.gpu), nil
}

// device is GPU i of the fake library; its methods implement accelerator.Device with the values
// the package comment and GPUs describe.
type device struct {
	lib *Library
	i   int
}

func (d *device) UUID() (string, error) {
	return fmt.Sprintf("GPU-00000000-0000-4000-8000-%012d", d.i), nil
}
func (d *device) Name() (string, error) { return "NVIDIA H100 80GB HBM3", nil }
func (d *device) PCIBusID() (string, error) {
	return fmt.Sprintf("00000000:%02X:00.0", 0x18+d.i), nil
}
func (d *device) UtilizationRates() (accelerator.Utilization, error) {
	return accelerator.Utilization{GPU: uint32(60 - 50*d.i), Memory: uint32(30 - 25*d.i)}, nil
}

const gib = 1 << 30

func (d *device) MemoryInfo() (accelerator.MemoryInfo, error) {
	total, reserved, used := uint64(80*gib), uint64(gib/2), uint64(70-60*d.i)*gib
	return accelerator.MemoryInfo{Total: total, Used: used, Reserved: reserved,
		Free: total - reserved - used, HasReserved: true}, nil
}
func (d *device) PowerUsage() (uint32, error)         { return uint32(500000 - 400000*d.i), nil }
func (d *device) EnforcedPowerLimit() (uint32, error) { return 700000, nil }

// TotalEnergyConsumption grows at the board's power draw since New, so rates are positive.
func (d *device) TotalEnergyConsumption() (uint64, error) {
	w, _ := d.PowerUsage()
	return 1e9 + uint64(time.Since(d.lib.start).Milliseconds())*uint64(w)/1000, nil
}
func (d *device) ClockMHz(c accelerator.Clock) (uint32, error) {
	switch c {
	case accelerator.ClockSM:
		return 1980, nil
	case accelerator.ClockMemory:
		return 2619, nil
	}
	return 0, &accelerator.Error{Code: 2, Message: "Invalid Argument"}
}
func (d *device) Temperature() (uint32, error) {
	if d.i == 1 {
		return 0, &accelerator.Error{Code: 999, Message: "Unknown Error"}
	}
	return 71, nil
}

// Clock-event bits of NVML (nvmlClocksEventReason*): GPU idle, hardware slowdown.
const (
	reasonGPUIdle    = 0x1
	reasonHWSlowdown = 0x8
)

func (d *device) ClockEventReasons() (uint64, error) {
	if d.i == 0 {
		return reasonHWSlowdown, nil
	}
	return reasonGPUIdle, nil
}
func (d *device) ECCEnabled() (bool, error) { return true, nil }
func (d *device) ECCErrors(uncorrected bool) (uint64, error) {
	if uncorrected {
		return 0, nil
	}
	return uint64(3 + d.i), nil
}
func (d *device) MIGEnabled() (bool, error) { return d.i == 0, nil }
func (d *device) MIGInstances() ([]accelerator.MIGInstance, error) {
	if d.i != 0 {
		return nil, nil
	}
	out := make([]accelerator.MIGInstance, 2)
	for k := range out {
		out[k] = accelerator.MIGInstance{
			UUID:          fmt.Sprintf("MIG-00000000-0000-4000-8000-%012d", k),
			GPUInstanceID: 1 + k, ComputeInstanceID: 0,
			MemoryUsed: uint64(10+10*k) * gib, MemoryTotal: 40 * gib, HasMemory: true,
		}
	}
	return out, nil
}
func (d *device) GPMSupported() (bool, error) { return true, nil }
func (d *device) GPMSampleGet(s accelerator.GPMSample) error {
	smp, ok := s.(*sample)
	if !ok {
		return &accelerator.Error{Code: 2, Message: "Invalid Argument"}
	}
	d.lib.mu.Lock()
	defer d.lib.mu.Unlock()
	d.lib.seq++
	smp.gpu, smp.seq = d.i, d.lib.seq
	return nil
}
