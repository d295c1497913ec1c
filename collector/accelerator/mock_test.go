//go:build linux && cgo

package accelerator

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Values the mock GPUs report; GPU i adds i to most so that series of different GPUs differ.
const (
	mockMemTotal    = 81920 << 20 // the canned H100's 80 GiB
	mockMemReserved = 512 << 20
	mockEnergyMJ    = 123456789
	mockSMClockMHz  = 1980
	mockMemClockMHz = 2619
	mockPowerLimit  = 700000 // mW
	mockBWPercent   = 40.5   // GPM DRAM bandwidth of GPU 0; GPU i reports mockBWPercent + i
	gpuThrottled    = nvml.ClocksEventReasonSwPowerCap | nvml.ClocksThrottleReasonHwThermalSlowdown
)

func mockUUID(i int) string { return fmt.Sprintf("GPU-00000000-0000-4000-8000-%012d", i) }

// testSample is a GPM sample buffer that remembers which GPU filled it and when, so the mock's
// GpmMetricsGet can check that the collector passes two samples of one GPU, older first.
type testSample struct {
	*mock.GpmSample
	mu  sync.Mutex
	gpu int
	seq int
}

// mockServer is go-nvml's DGX H100 mock with the functions its canned devices leave unset.
type mockServer struct {
	*server.Server
	devs []*server.Device
	seq  int // GPM samples taken, to order them
}

func newMockServer(t testing.TB, n int) *mockServer {
	t.Helper()
	s := &mockServer{Server: dgxh100.NewWithGPUs(gpus.Multiple(n, gpus.H100_SXM5_80GB)...)}
	s.GpmSampleAllocFunc = func() (nvml.GpmSample, nvml.Return) {
		return &testSample{GpmSample: &mock.GpmSample{}, gpu: -1}, nvml.SUCCESS
	}
	s.GpmSampleFreeFunc = func(nvml.GpmSample) nvml.Return { return nvml.SUCCESS }
	s.GpmMetricsGetFunc = func(m *nvml.GpmMetricsGetType) nvml.Return {
		s1, ok1 := m.Sample1.(*testSample)
		s2, ok2 := m.Sample2.(*testSample)
		if !ok1 || !ok2 || m.NumMetrics != 1 || m.Metrics[0].MetricId != uint32(nvml.GPM_METRIC_DRAM_BW_UTIL) {
			return nvml.ERROR_INVALID_ARGUMENT
		}
		s1.mu.Lock()
		g1, q1 := s1.gpu, s1.seq
		s1.mu.Unlock()
		s2.mu.Lock()
		g2, q2 := s2.gpu, s2.seq
		s2.mu.Unlock()
		if g1 < 0 || g1 != g2 || q1 >= q2 {
			t.Errorf("GpmMetricsGet got samples (gpu %d seq %d, gpu %d seq %d); want two of one GPU, older first", g1, q1, g2, q2)
			return nvml.ERROR_INVALID_ARGUMENT
		}
		m.Metrics[0].Value = mockBWPercent + float64(g1)
		return nvml.SUCCESS
	}
	for i, d := range s.Devices {
		dev := d.(*server.Device)
		s.devs = append(s.devs, dev)
		dev.UUID = mockUUID(i)
		dev.PciBusID = fmt.Sprintf("00000000:%02X:00.0", 0x18+i)
		s.setDeviceFuncs(i, dev)
	}
	return s
}

func (s *mockServer) setDeviceFuncs(i int, dev *server.Device) {
	u := uint32(i)
	dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
		var p nvml.PciInfo
		for j, c := range dev.PciBusID {
			p.BusId[j] = int8(c)
		}
		p.PciDeviceId = dev.Config.PciDeviceId
		return p, nvml.SUCCESS
	}
	dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{Gpu: 10 + u, Memory: 20 + u}, nvml.SUCCESS
	}
	dev.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
		used := uint64(1+i) << 30
		return nvml.Memory_v2{Total: mockMemTotal, Reserved: mockMemReserved, Used: used,
			Free: mockMemTotal - mockMemReserved - used}, nvml.SUCCESS
	}
	dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 300000 + 1000*u, nvml.SUCCESS }
	dev.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return mockPowerLimit, nvml.SUCCESS }
	dev.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return mockEnergyMJ + uint64(i), nvml.SUCCESS }
	dev.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
		switch c {
		case nvml.CLOCK_SM:
			return mockSMClockMHz, nvml.SUCCESS
		case nvml.CLOCK_MEM:
			return mockMemClockMHz, nvml.SUCCESS
		}
		return 0, nvml.ERROR_INVALID_ARGUMENT
	}
	dev.GetTemperatureFunc = func(sensor nvml.TemperatureSensors) (uint32, nvml.Return) {
		if sensor != nvml.TEMPERATURE_GPU {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return 40 + u, nvml.SUCCESS
	}
	dev.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		if i == 0 {
			return gpuThrottled, nvml.SUCCESS
		}
		return nvml.ClocksEventReasonGpuIdle, nvml.SUCCESS
	}
	dev.GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
		return nvml.FEATURE_ENABLED, nvml.FEATURE_ENABLED, nvml.SUCCESS
	}
	dev.GetTotalEccErrorsFunc = func(t nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
		if c != nvml.VOLATILE_ECC {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		if t == nvml.MEMORY_ERROR_TYPE_CORRECTED {
			return uint64(3 + i), nvml.SUCCESS
		}
		return 0, nvml.SUCCESS
	}
	dev.GpmQueryDeviceSupportFunc = func() (nvml.GpmSupport, nvml.Return) {
		return nvml.GpmSupport{Version: 1, IsSupportedDevice: 1}, nvml.SUCCESS
	}
	dev.GpmSampleGetFunc = func(smp nvml.GpmSample) nvml.Return {
		ts := smp.(*testSample)
		ts.mu.Lock()
		defer ts.mu.Unlock()
		s.seq++ // only the poller goroutine takes samples
		ts.gpu, ts.seq = i, s.seq
		return nvml.SUCCESS
	}
}

// callCounts returns, for every "…Calls" method of the moq-generated mocks behind s, how many
// calls it recorded (only the non-zero ones), keyed "Interface.Init", "Device0.GetName", ….
func (s *mockServer) callCounts() map[string]int {
	out := map[string]int{}
	add := func(prefix string, v any) {
		rv := reflect.ValueOf(v)
		rt := rv.Type()
		for i := range rt.NumMethod() {
			m := rt.Method(i)
			if !strings.HasSuffix(m.Name, "Calls") || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 {
				continue
			}
			if n := rv.Method(i).Call(nil)[0].Len(); n > 0 {
				out[prefix+"."+strings.TrimSuffix(m.Name, "Calls")] = n
			}
		}
	}
	add("Interface", &s.Interface)
	add("ExtendedInterface", &s.ExtendedInterface)
	for i, d := range s.devs {
		add(fmt.Sprintf("Device%d", i), &d.Device)
	}
	return out
}

// calls returns how many times one recorded method was called.
func (s *mockServer) calls(name string) int { return s.callCounts()[name] }
