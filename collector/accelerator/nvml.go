//go:build linux && cgo

package accelerator

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NewLibrary returns the Library backed by the system's libnvidia-ml.so through go-nvml. The
// shared library is opened by Init (dlopen), so building and starting need neither the library
// nor a GPU; without them Init fails and the collector reports itself down.
func NewLibrary() Library {
	return newNVMLLibrary(nvml.New())
}

// nvmlLibrary adapts a go-nvml Interface (the real one or go-nvml's mock) to Library.
type nvmlLibrary struct {
	lib nvml.Interface
	// syms records which newer entry points the loaded libnvidia-ml has. go-nvml binds symbols
	// lazily, so calling one an older driver lacks aborts the process; they are looked up once
	// after Init and treated as not supported when absent.
	syms symbols
}

type symbols struct {
	clockEvents, throttleReasons, memoryV2, energy, gpm, mig bool
}

func newNVMLLibrary(lib nvml.Interface) *nvmlLibrary {
	return &nvmlLibrary{lib: lib}
}

// nvmlErr turns an NVML return code into an error (nil on success).
func nvmlErr(ret nvml.Return) error {
	if ret == nvml.SUCCESS {
		return nil
	}
	return &Error{Code: int(ret), Message: ret.Error()}
}

// missing is the error for an entry point the loaded library does not have.
func missing(fn string) error {
	return &Error{Code: int(nvml.ERROR_FUNCTION_NOT_FOUND), Message: fn + " is not in this libnvidia-ml"}
}

func (l *nvmlLibrary) Init() error {
	if err := nvmlErr(l.lib.Init()); err != nil {
		return err
	}
	ext := l.lib.Extensions()
	has := func(names ...string) bool {
		for _, n := range names {
			if ext.LookupSymbol(n) != nil {
				return false
			}
		}
		return true
	}
	l.syms = symbols{
		clockEvents:     has("nvmlDeviceGetCurrentClocksEventReasons"),
		throttleReasons: has("nvmlDeviceGetCurrentClocksThrottleReasons"),
		memoryV2:        has("nvmlDeviceGetMemoryInfo_v2"),
		energy:          has("nvmlDeviceGetTotalEnergyConsumption"),
		gpm: has("nvmlGpmQueryDeviceSupport", "nvmlGpmSampleAlloc", "nvmlGpmSampleFree",
			"nvmlGpmSampleGet", "nvmlGpmMetricsGet"),
		mig: has("nvmlDeviceGetMigMode", "nvmlDeviceGetMaxMigDeviceCount",
			"nvmlDeviceGetMigDeviceHandleByIndex", "nvmlDeviceGetGpuInstanceId",
			"nvmlDeviceGetComputeInstanceId"),
	}
	return nil
}

func (l *nvmlLibrary) Shutdown() error { return nvmlErr(l.lib.Shutdown()) }

func (l *nvmlLibrary) DeviceCount() (int, error) {
	n, ret := l.lib.DeviceGetCount()
	return n, nvmlErr(ret)
}

func (l *nvmlLibrary) DeviceByIndex(index int) (Device, error) {
	d, ret := l.lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS {
		return nil, nvmlErr(ret)
	}
	return &nvmlDevice{d: d, syms: &l.syms}, nil
}

func (l *nvmlLibrary) DriverVersion() (string, error) {
	v, ret := l.lib.SystemGetDriverVersion()
	return v, nvmlErr(ret)
}

func (l *nvmlLibrary) CUDADriverVersion() (int, error) {
	v, ret := l.lib.SystemGetCudaDriverVersion()
	return v, nvmlErr(ret)
}

func (l *nvmlLibrary) GPMSampleAlloc() (GPMSample, error) {
	if !l.syms.gpm {
		return nil, missing("nvmlGpmSampleAlloc")
	}
	s, ret := l.lib.GpmSampleAlloc()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr(ret)
	}
	return s, nil
}

func (l *nvmlLibrary) GPMSampleFree(s GPMSample) error {
	gs, err := gpmSample(s)
	if err != nil {
		return err
	}
	return nvmlErr(l.lib.GpmSampleFree(gs))
}

func (l *nvmlLibrary) GPMMetric(older, newer GPMSample, id GPMMetricID) (float64, error) {
	s1, err := gpmSample(older)
	if err != nil {
		return 0, err
	}
	s2, err := gpmSample(newer)
	if err != nil {
		return 0, err
	}
	// The request holds room for every metric NVML knows (about 19 KiB); one is asked for.
	req := &nvml.GpmMetricsGetType{NumMetrics: 1, Sample1: s1, Sample2: s2}
	req.Metrics[0].MetricId = uint32(id)
	if err := nvmlErr(l.lib.GpmMetricsGet(req)); err != nil {
		return 0, err
	}
	m := req.Metrics[0]
	if err := nvmlErr(nvml.Return(m.NvmlReturn)); err != nil {
		return 0, err
	}
	return m.Value, nil
}

func gpmSample(s GPMSample) (nvml.GpmSample, error) {
	gs, ok := s.(nvml.GpmSample)
	if !ok || gs == nil {
		return nil, fmt.Errorf("GPM sample of type %T did not come from this library", s)
	}
	return gs, nil
}

// nvmlDevice adapts an nvml.Device.
type nvmlDevice struct {
	d    nvml.Device
	syms *symbols
}

func (d *nvmlDevice) UUID() (string, error) {
	v, ret := d.d.GetUUID()
	return v, nvmlErr(ret)
}

func (d *nvmlDevice) Name() (string, error) {
	v, ret := d.d.GetName()
	return v, nvmlErr(ret)
}

func (d *nvmlDevice) PCIBusID() (string, error) {
	p, ret := d.d.GetPciInfo()
	if ret != nvml.SUCCESS {
		return "", nvmlErr(ret)
	}
	b := make([]byte, 0, len(p.BusId))
	for _, c := range p.BusId {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b), nil
}

func (d *nvmlDevice) UtilizationRates() (Utilization, error) {
	u, ret := d.d.GetUtilizationRates()
	return Utilization{GPU: u.Gpu, Memory: u.Memory}, nvmlErr(ret)
}

func (d *nvmlDevice) MemoryInfo() (MemoryInfo, error) {
	if d.syms.memoryV2 {
		m, ret := d.d.GetMemoryInfo_v2()
		if ret == nvml.SUCCESS {
			return MemoryInfo{Total: m.Total, Used: m.Used, Free: m.Free, Reserved: m.Reserved, HasReserved: true}, nil
		}
		// Older drivers export the symbol but refuse the v2 struct; v1 still answers.
		if ret != nvml.ERROR_NOT_SUPPORTED && ret != nvml.ERROR_ARGUMENT_VERSION_MISMATCH {
			return MemoryInfo{}, nvmlErr(ret)
		}
	}
	m, ret := d.d.GetMemoryInfo()
	return MemoryInfo{Total: m.Total, Used: m.Used, Free: m.Free}, nvmlErr(ret)
}

func (d *nvmlDevice) PowerUsage() (uint32, error) {
	v, ret := d.d.GetPowerUsage()
	return v, nvmlErr(ret)
}

func (d *nvmlDevice) EnforcedPowerLimit() (uint32, error) {
	v, ret := d.d.GetEnforcedPowerLimit()
	return v, nvmlErr(ret)
}

func (d *nvmlDevice) TotalEnergyConsumption() (uint64, error) {
	if !d.syms.energy {
		return 0, missing("nvmlDeviceGetTotalEnergyConsumption")
	}
	v, ret := d.d.GetTotalEnergyConsumption()
	return v, nvmlErr(ret)
}

func (d *nvmlDevice) ClockMHz(clock Clock) (uint32, error) {
	t := nvml.CLOCK_SM
	if clock == ClockMemory {
		t = nvml.CLOCK_MEM
	}
	v, ret := d.d.GetClockInfo(t)
	return v, nvmlErr(ret)
}

func (d *nvmlDevice) Temperature() (uint32, error) {
	v, ret := d.d.GetTemperature(nvml.TEMPERATURE_GPU)
	return v, nvmlErr(ret)
}

func (d *nvmlDevice) ClockEventReasons() (uint64, error) {
	switch {
	case d.syms.clockEvents:
		v, ret := d.d.GetCurrentClocksEventReasons()
		return v, nvmlErr(ret)
	case d.syms.throttleReasons: // drivers before R535 only have the old name; same bits
		v, ret := d.d.GetCurrentClocksThrottleReasons()
		return v, nvmlErr(ret)
	}
	return 0, missing("nvmlDeviceGetCurrentClocksEventReasons")
}

func (d *nvmlDevice) ECCEnabled() (bool, error) {
	cur, _, ret := d.d.GetEccMode()
	return cur == nvml.FEATURE_ENABLED, nvmlErr(ret)
}

func (d *nvmlDevice) ECCErrors(uncorrected bool) (uint64, error) {
	t := nvml.MEMORY_ERROR_TYPE_CORRECTED
	if uncorrected {
		t = nvml.MEMORY_ERROR_TYPE_UNCORRECTED
	}
	v, ret := d.d.GetTotalEccErrors(t, nvml.VOLATILE_ECC)
	return v, nvmlErr(ret)
}

func (d *nvmlDevice) MIGEnabled() (bool, error) {
	if !d.syms.mig {
		return false, missing("nvmlDeviceGetMigMode")
	}
	cur, _, ret := d.d.GetMigMode()
	return cur == nvml.DEVICE_MIG_ENABLE, nvmlErr(ret)
}

func (d *nvmlDevice) MIGInstances() ([]MIGInstance, error) {
	if !d.syms.mig {
		return nil, missing("nvmlDeviceGetMaxMigDeviceCount")
	}
	n, ret := d.d.GetMaxMigDeviceCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr(ret)
	}
	var out []MIGInstance
	for i := range n {
		m, ret := d.d.GetMigDeviceHandleByIndex(i)
		if ret == nvml.ERROR_NOT_FOUND || ret == nvml.ERROR_INVALID_ARGUMENT {
			continue // an empty slot: fewer instances exist than could
		}
		if ret != nvml.SUCCESS {
			return nil, nvmlErr(ret)
		}
		var inst MIGInstance
		if inst.UUID, ret = m.GetUUID(); ret != nvml.SUCCESS {
			return nil, nvmlErr(ret)
		}
		if inst.GPUInstanceID, ret = m.GetGpuInstanceId(); ret != nvml.SUCCESS {
			return nil, nvmlErr(ret)
		}
		if inst.ComputeInstanceID, ret = m.GetComputeInstanceId(); ret != nvml.SUCCESS {
			return nil, nvmlErr(ret)
		}
		if mem, ret := m.GetMemoryInfo(); ret == nvml.SUCCESS {
			inst.MemoryUsed, inst.MemoryTotal, inst.HasMemory = mem.Used, mem.Total, true
		}
		out = append(out, inst)
	}
	return out, nil
}

func (d *nvmlDevice) GPMSupported() (bool, error) {
	if !d.syms.gpm {
		return false, nil // an older library: no GPM, which is an answer, not an error
	}
	s, ret := d.d.GpmQueryDeviceSupport()
	return s.IsSupportedDevice != 0, nvmlErr(ret)
}

func (d *nvmlDevice) GPMSampleGet(s GPMSample) error {
	gs, err := gpmSample(s)
	if err != nil {
		return err
	}
	return nvmlErr(d.d.GpmSampleGet(gs))
}
