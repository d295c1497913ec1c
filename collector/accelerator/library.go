// Package accelerator exports per-GPU metrics read through NVML: utilisation, memory, memory
// bandwidth (GPM), power, energy, clocks, temperature, clock-event (throttle) reasons, ECC errors
// and MIG layout, under the prefix inferprobe_accelerator_.
//
// NVML is reached only through the small Library interface below, so the collector and its tests
// never need the real library. NewLibrary returns the go-nvml backed implementation on linux with
// cgo and a stub everywhere else. NVML is read by a background poller (Collector.Run) on an
// interval; a scrape only serves the last snapshot and never waits on NVML.
package accelerator

import (
	"errors"
	"fmt"
)

// Library is the part of NVML the collector uses. Init must succeed before any other method is
// called; after a failed Init no other method may be called (with the real NVML such a call can
// abort the process). The collector uses a Library from one goroutine at a time.
type Library interface {
	// Init initialises NVML.
	Init() error
	// Shutdown releases NVML; it is called once per successful Init.
	Shutdown() error
	// DeviceCount returns the number of GPUs NVML sees.
	DeviceCount() (int, error)
	// DeviceByIndex returns the GPU with the given NVML index.
	DeviceByIndex(index int) (Device, error)
	// DriverVersion returns the kernel driver version, e.g. "550.54.15".
	DriverVersion() (string, error)
	// CUDADriverVersion returns the CUDA version the driver supports as NVML encodes it
	// (1000*major + 10*minor, e.g. 12040 for 12.4).
	CUDADriverVersion() (int, error)
	// GPMSampleAlloc allocates a GPM sample buffer; free it with GPMSampleFree.
	GPMSampleAlloc() (GPMSample, error)
	// GPMSampleFree releases a buffer from GPMSampleAlloc.
	GPMSampleFree(s GPMSample) error
	// GPMMetric computes one GPM metric between two samples of the same GPU, older first.
	GPMMetric(older, newer GPMSample, id GPMMetricID) (float64, error)
}

// Device is one GPU as NVML sees it. Every method is one NVML query (MIGInstances a few).
type Device interface {
	// UUID returns the GPU's UUID, e.g. "GPU-5e1b...".
	UUID() (string, error)
	// Name returns the product name, e.g. "NVIDIA H100 80GB HBM3".
	Name() (string, error)
	// PCIBusID returns the PCI bus id, e.g. "00000000:18:00.0".
	PCIBusID() (string, error)
	// UtilizationRates returns the percentages of the last sample period during which a kernel
	// ran (GPU) and during which device memory was read or written (Memory).
	UtilizationRates() (Utilization, error)
	// MemoryInfo returns the frame buffer's accounting (v2 with the reserved size where the
	// driver has it).
	MemoryInfo() (MemoryInfo, error)
	// PowerUsage returns the board's power draw in milliwatts.
	PowerUsage() (uint32, error)
	// EnforcedPowerLimit returns the power limit in force in milliwatts.
	EnforcedPowerLimit() (uint32, error)
	// TotalEnergyConsumption returns the energy used since the driver was loaded, in millijoules.
	TotalEnergyConsumption() (uint64, error)
	// ClockMHz returns the current frequency of a clock domain in MHz.
	ClockMHz(clock Clock) (uint32, error)
	// Temperature returns the GPU core temperature in degrees Celsius.
	Temperature() (uint32, error)
	// ClockEventReasons returns the bit mask of the reasons the clocks are held down now
	// (formerly "throttle reasons"); see ClockEventReasons.
	ClockEventReasons() (uint64, error)
	// ECCEnabled reports whether ECC is enabled now.
	ECCEnabled() (bool, error)
	// ECCErrors returns the volatile (since driver load) count of ECC errors of one kind.
	ECCErrors(uncorrected bool) (uint64, error)
	// MIGEnabled reports whether MIG mode is enabled now.
	MIGEnabled() (bool, error)
	// MIGInstances lists the MIG devices of a GPU in MIG mode.
	MIGInstances() ([]MIGInstance, error)
	// GPMSupported reports whether the GPU supports GPM (Hopper and newer).
	GPMSupported() (bool, error)
	// GPMSampleGet fills a GPM sample buffer with this GPU's counters now.
	GPMSampleGet(s GPMSample) error
}

// GPMSample is an opaque GPM sample buffer owned by the Library that allocated it.
type GPMSample any

// GPMMetricID names a GPM metric; the values are NVML's nvmlGpmMetricId_t.
type GPMMetricID uint32

// GPMMetricDRAMBandwidthUtil is the percentage of the DRAM bandwidth used between two samples.
const GPMMetricDRAMBandwidthUtil GPMMetricID = 10

// Clock is a clock domain.
type Clock int

// Clock domains the collector reads.
const (
	ClockSM Clock = iota
	ClockMemory
)

// Utilization is NVML's utilisation sample, in percent.
type Utilization struct {
	GPU    uint32
	Memory uint32
}

// MemoryInfo is the frame buffer's accounting in bytes. With the v1 call (HasReserved false) Used
// includes the memory the driver reserves; with v2 it does not and Reserved holds it.
type MemoryInfo struct {
	Total, Used, Free, Reserved uint64
	HasReserved                 bool
}

// MIGInstance is one MIG device of a GPU in MIG mode.
type MIGInstance struct {
	UUID              string
	GPUInstanceID     int
	ComputeInstanceID int
	// MemoryUsed and MemoryTotal are the instance's frame buffer in bytes; HasMemory is false
	// when NVML could not read it.
	MemoryUsed, MemoryTotal uint64
	HasMemory               bool
}

// ClockEventReason is one named bit of NVML's clock-event (throttle) reason mask.
type ClockEventReason struct {
	// Name is the value of the reason label.
	Name string
	// Bit is the reason's bit in the mask (nvmlClocksEventReason*).
	Bit uint64
}

// ClockEventReasons returns the reasons exposed as one 0/1 series each, in a fixed order.
func ClockEventReasons() []ClockEventReason {
	return []ClockEventReason{
		{"gpu_idle", 0x1},
		{"applications_clocks_setting", 0x2},
		{"sw_power_cap", 0x4},
		{"hw_slowdown", 0x8},
		{"sync_boost", 0x10},
		{"sw_thermal_slowdown", 0x20},
		{"hw_thermal_slowdown", 0x40},
		{"hw_power_brake_slowdown", 0x80},
		{"display_clocks_setting", 0x100},
	}
}

// Errors an NVML failure can match with errors.Is.
var (
	// ErrNotSupported: the GPU or driver does not support the query (NVML_ERROR_NOT_SUPPORTED,
	// or a function missing from an older libnvidia-ml).
	ErrNotSupported = errors.New("not supported")
	// ErrGPULost: the GPU fell off the bus or stopped answering (NVML_ERROR_GPU_IS_LOST).
	ErrGPULost = errors.New("GPU is lost")
	// ErrNotAvailable: this binary was built without NVML (no cgo or not linux).
	ErrNotAvailable = errors.New("NVML not available in this build")
)

// NVML return codes (nvmlReturn_t) the collector treats specially.
const (
	codeNotSupported     = 3
	codeFunctionNotFound = 13
	codeGPULost          = 15
)

// Error is an NVML call that returned something other than success.
type Error struct {
	// Code is the nvmlReturn_t value.
	Code int
	// Message is NVML's description of Code.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (NVML return code %d)", e.Message, e.Code)
}

// Is makes errors.Is(err, ErrNotSupported) and errors.Is(err, ErrGPULost) work.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotSupported:
		return e.Code == codeNotSupported || e.Code == codeFunctionNotFound
	case ErrGPULost:
		return e.Code == codeGPULost
	}
	return false
}
