//go:build linux && cgo

package accelerator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/inferprobe/inferprobe/internal/testkit"
)

var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newTestCollector returns a collector over the mock with a frozen clock (so the age is 0).
func newTestCollector(t testing.TB, s *mockServer, opts Options) *Collector {
	t.Helper()
	c := New(newNVMLLibrary(s), opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.now = func() time.Time { return testEpoch }
	return c
}

// openAndPoll initialises the collector the way Run does and polls n times in this goroutine.
func openAndPoll(t testing.TB, c *Collector, n int) {
	t.Helper()
	c.started.Store(true)
	if err := c.open(); err != nil {
		t.Fatalf("open: %v", err)
	}
	for range n {
		c.poll()
	}
}

// allNames lists every series name the collector can expose except the poll duration, whose
// value is a measured time.
func allNames(c *Collector) []string {
	var names []string
	for _, d := range c.descs.all() {
		name := descName(d)
		if name != namespace+"poll_duration_seconds" {
			names = append(names, name)
		}
	}
	return names
}

func descName(d *prometheus.Desc) string {
	s := d.String() // Desc{fqName: "name", help: ...}
	s = s[strings.Index(s, `"`)+1:]
	return s[:strings.Index(s, `"`)]
}

const expositionTwoGPUs = `
# HELP inferprobe_accelerator_clock_event_active 1 if the named clock-event (throttle) reason is holding the clocks down now, else 0.
# TYPE inferprobe_accelerator_clock_event_active gauge
inferprobe_accelerator_clock_event_active{gpu="0",reason="applications_clocks_setting",uuid="U0"} 0
inferprobe_accelerator_clock_event_active{gpu="0",reason="display_clocks_setting",uuid="U0"} 0
inferprobe_accelerator_clock_event_active{gpu="0",reason="gpu_idle",uuid="U0"} 0
inferprobe_accelerator_clock_event_active{gpu="0",reason="hw_power_brake_slowdown",uuid="U0"} 0
inferprobe_accelerator_clock_event_active{gpu="0",reason="hw_slowdown",uuid="U0"} 0
inferprobe_accelerator_clock_event_active{gpu="0",reason="hw_thermal_slowdown",uuid="U0"} 1
inferprobe_accelerator_clock_event_active{gpu="0",reason="sw_power_cap",uuid="U0"} 1
inferprobe_accelerator_clock_event_active{gpu="0",reason="sw_thermal_slowdown",uuid="U0"} 0
inferprobe_accelerator_clock_event_active{gpu="0",reason="sync_boost",uuid="U0"} 0
inferprobe_accelerator_clock_event_active{gpu="1",reason="applications_clocks_setting",uuid="U1"} 0
inferprobe_accelerator_clock_event_active{gpu="1",reason="display_clocks_setting",uuid="U1"} 0
inferprobe_accelerator_clock_event_active{gpu="1",reason="gpu_idle",uuid="U1"} 1
inferprobe_accelerator_clock_event_active{gpu="1",reason="hw_power_brake_slowdown",uuid="U1"} 0
inferprobe_accelerator_clock_event_active{gpu="1",reason="hw_slowdown",uuid="U1"} 0
inferprobe_accelerator_clock_event_active{gpu="1",reason="hw_thermal_slowdown",uuid="U1"} 0
inferprobe_accelerator_clock_event_active{gpu="1",reason="sw_power_cap",uuid="U1"} 0
inferprobe_accelerator_clock_event_active{gpu="1",reason="sw_thermal_slowdown",uuid="U1"} 0
inferprobe_accelerator_clock_event_active{gpu="1",reason="sync_boost",uuid="U1"} 0
# HELP inferprobe_accelerator_devices Number of GPUs selected for export in the last NVML enumeration.
# TYPE inferprobe_accelerator_devices gauge
inferprobe_accelerator_devices 2
# HELP inferprobe_accelerator_ecc_enabled 1 if ECC is enabled now, else 0.
# TYPE inferprobe_accelerator_ecc_enabled gauge
inferprobe_accelerator_ecc_enabled{gpu="0",uuid="U0"} 1
inferprobe_accelerator_ecc_enabled{gpu="1",uuid="U1"} 1
# HELP inferprobe_accelerator_ecc_errors_total Device memory ECC errors since the driver was loaded (volatile count), by type (corrected, uncorrected); only where ECC is enabled.
# TYPE inferprobe_accelerator_ecc_errors_total counter
inferprobe_accelerator_ecc_errors_total{gpu="0",type="corrected",uuid="U0"} 3
inferprobe_accelerator_ecc_errors_total{gpu="0",type="uncorrected",uuid="U0"} 0
inferprobe_accelerator_ecc_errors_total{gpu="1",type="corrected",uuid="U1"} 4
inferprobe_accelerator_ecc_errors_total{gpu="1",type="uncorrected",uuid="U1"} 0
# HELP inferprobe_accelerator_energy_joules_total Energy consumed since the driver was loaded, in joules (NVML total energy, mJ / 1000).
# TYPE inferprobe_accelerator_energy_joules_total counter
inferprobe_accelerator_energy_joules_total{gpu="0",uuid="U0"} 123456.789
inferprobe_accelerator_energy_joules_total{gpu="1",uuid="U1"} 123456.79
# HELP inferprobe_accelerator_info Static GPU identity; always 1.
# TYPE inferprobe_accelerator_info gauge
inferprobe_accelerator_info{cuda_version="12.4",driver_version="550.54.15",gpu="0",name="NVIDIA H100 80GB HBM3",pci_bus_id="00000000:18:00.0",uuid="U0"} 1
inferprobe_accelerator_info{cuda_version="12.4",driver_version="550.54.15",gpu="1",name="NVIDIA H100 80GB HBM3",pci_bus_id="00000000:19:00.0",uuid="U1"} 1
# HELP inferprobe_accelerator_last_update_age_seconds Seconds since the last completed NVML poll, at scrape time; per-GPU series are withheld once it exceeds three poll intervals.
# TYPE inferprobe_accelerator_last_update_age_seconds gauge
inferprobe_accelerator_last_update_age_seconds 0
# HELP inferprobe_accelerator_memory_bandwidth_utilization_ratio Fraction (0..1) of peak DRAM bandwidth used between the last two polls (GPM, Hopper and newer; absent elsewhere).
# TYPE inferprobe_accelerator_memory_bandwidth_utilization_ratio gauge
inferprobe_accelerator_memory_bandwidth_utilization_ratio{gpu="0",uuid="U0"} 0.405
inferprobe_accelerator_memory_bandwidth_utilization_ratio{gpu="1",uuid="U1"} 0.415
# HELP inferprobe_accelerator_memory_busy_ratio Fraction (0..1) of the last NVML sample period during which device memory was being read or written.
# TYPE inferprobe_accelerator_memory_busy_ratio gauge
inferprobe_accelerator_memory_busy_ratio{gpu="0",uuid="U0"} 0.2
inferprobe_accelerator_memory_busy_ratio{gpu="1",uuid="U1"} 0.21
# HELP inferprobe_accelerator_memory_clock_hertz Current memory clock frequency in hertz.
# TYPE inferprobe_accelerator_memory_clock_hertz gauge
inferprobe_accelerator_memory_clock_hertz{gpu="0",uuid="U0"} 2.619e+09
inferprobe_accelerator_memory_clock_hertz{gpu="1",uuid="U1"} 2.619e+09
# HELP inferprobe_accelerator_memory_reserved_bytes Device memory reserved by the driver and firmware, in bytes (NVML memory info v2).
# TYPE inferprobe_accelerator_memory_reserved_bytes gauge
inferprobe_accelerator_memory_reserved_bytes{gpu="0",uuid="U0"} 5.36870912e+08
inferprobe_accelerator_memory_reserved_bytes{gpu="1",uuid="U1"} 5.36870912e+08
# HELP inferprobe_accelerator_memory_total_bytes Total installed device memory, in bytes.
# TYPE inferprobe_accelerator_memory_total_bytes gauge
inferprobe_accelerator_memory_total_bytes{gpu="0",uuid="U0"} 8.589934592e+10
inferprobe_accelerator_memory_total_bytes{gpu="1",uuid="U1"} 8.589934592e+10
# HELP inferprobe_accelerator_memory_used_bytes Device memory allocated, in bytes (excludes the driver-reserved part where memory_reserved_bytes is exported).
# TYPE inferprobe_accelerator_memory_used_bytes gauge
inferprobe_accelerator_memory_used_bytes{gpu="0",uuid="U0"} 1.073741824e+09
inferprobe_accelerator_memory_used_bytes{gpu="1",uuid="U1"} 2.147483648e+09
# HELP inferprobe_accelerator_mig_mode 1 if MIG (multi-instance GPU) mode is enabled now, else 0.
# TYPE inferprobe_accelerator_mig_mode gauge
inferprobe_accelerator_mig_mode{gpu="0",uuid="U0"} 0
inferprobe_accelerator_mig_mode{gpu="1",uuid="U1"} 0
# HELP inferprobe_accelerator_power_limit_watts Power limit in force in watts (the enforced limit, the least of all limits set).
# TYPE inferprobe_accelerator_power_limit_watts gauge
inferprobe_accelerator_power_limit_watts{gpu="0",uuid="U0"} 700
inferprobe_accelerator_power_limit_watts{gpu="1",uuid="U1"} 700
# HELP inferprobe_accelerator_power_watts Board power draw in watts as NVML reports it (a 1 s average on Ampere and newer except A100, instantaneous on older GPUs).
# TYPE inferprobe_accelerator_power_watts gauge
inferprobe_accelerator_power_watts{gpu="0",uuid="U0"} 300
inferprobe_accelerator_power_watts{gpu="1",uuid="U1"} 301
# HELP inferprobe_accelerator_sm_clock_hertz Current SM (streaming multiprocessor) clock frequency in hertz.
# TYPE inferprobe_accelerator_sm_clock_hertz gauge
inferprobe_accelerator_sm_clock_hertz{gpu="0",uuid="U0"} 1.98e+09
inferprobe_accelerator_sm_clock_hertz{gpu="1",uuid="U1"} 1.98e+09
# HELP inferprobe_accelerator_temperature_celsius GPU core temperature in degrees Celsius.
# TYPE inferprobe_accelerator_temperature_celsius gauge
inferprobe_accelerator_temperature_celsius{gpu="0",uuid="U0"} 40
inferprobe_accelerator_temperature_celsius{gpu="1",uuid="U1"} 41
# HELP inferprobe_accelerator_up 1 if NVML is initialised and the last poll of it completed within three poll intervals, else 0.
# TYPE inferprobe_accelerator_up gauge
inferprobe_accelerator_up 1
# HELP inferprobe_accelerator_utilization_ratio Fraction (0..1) of the last NVML sample period (1/6 s to 1 s) during which one or more kernels ran on the GPU.
# TYPE inferprobe_accelerator_utilization_ratio gauge
inferprobe_accelerator_utilization_ratio{gpu="0",uuid="U0"} 0.1
inferprobe_accelerator_utilization_ratio{gpu="1",uuid="U1"} 0.11
`

func TestExpositionTwoGPUs(t *testing.T) {
	s := newMockServer(t, 2)
	c := newTestCollector(t, s, DefaultOptions())
	openAndPoll(t, c, 2) // two polls: GPM bandwidth needs two samples
	want := strings.NewReplacer("U0", mockUUID(0), "U1", mockUUID(1)).Replace(expositionTwoGPUs)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), allNames(c)...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, namespace+"poll_duration_seconds"); n != 1 {
		t.Errorf("poll_duration_seconds series = %d, want 1", n)
	}
	// A pedantic registry checks the series against Describe and for consistency.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic gather: %v", err)
	}
	c.close()
	if got := s.calls("Interface.Shutdown"); got != 1 {
		t.Errorf("Shutdown calls = %d, want 1", got)
	}
	if got, want := s.calls("Interface.GpmSampleFree"), 4; got != want {
		t.Errorf("GpmSampleFree calls = %d, want %d (two buffers per GPU)", got, want)
	}
}

func TestBandwidthNeedsTwoSamples(t *testing.T) {
	s := newMockServer(t, 1)
	c := newTestCollector(t, s, DefaultOptions())
	openAndPoll(t, c, 1)
	got := gather(t, c)
	if _, ok := got[`inferprobe_accelerator_memory_bandwidth_utilization_ratio{gpu="0",uuid="`+mockUUID(0)+`"}`]; ok {
		t.Error("bandwidth exported after one GPM sample; want it absent until the second")
	}
	if n := s.calls("Interface.GpmMetricsGet"); n != 0 {
		t.Errorf("GpmMetricsGet called %d times after one sample", n)
	}
	if got[namespace+"up"] != 1 || got[`inferprobe_accelerator_power_watts{gpu="0",uuid="`+mockUUID(0)+`"}`] != 300 {
		t.Errorf("first poll should export everything else; got %v", got)
	}
	c.poll()
	if v := gather(t, c)[`inferprobe_accelerator_memory_bandwidth_utilization_ratio{gpu="0",uuid="`+mockUUID(0)+`"}`]; v != 0.405 {
		t.Errorf("bandwidth after two samples = %v, want 0.405", v)
	}
}

// gather collects c through a pedantic registry into "name{label=value,…}" → value, labels in
// name order.
func gather(t testing.TB, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[seriesKey(mf.GetName(), m.GetLabel())] = metricValue(m)
		}
	}
	return out
}

func seriesKey(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}

func gpuLabels(k string) (gpu string) {
	i := strings.Index(k, `gpu="`)
	if i < 0 {
		return ""
	}
	rest := k[i+5:]
	return rest[:strings.Index(rest, `"`)]
}

func TestDeviceFilter(t *testing.T) {
	tests := []struct {
		name    string
		devices []string
		want    []string // gpu labels exported
	}{
		{"all by default", nil, []string{"0", "1", "2"}},
		{"by index", []string{"1"}, []string{"1"}},
		{"by UUID", []string{mockUUID(2)}, []string{"2"}},
		{"by UUID in another case", []string{strings.ToLower(mockUUID(0))}, []string{"0"}},
		{"index and UUID mixed", []string{"0", mockUUID(2)}, []string{"0", "2"}},
		{"index and UUID of one GPU", []string{"1", mockUUID(1)}, []string{"1"}},
		{"nothing matches", []string{"7", "GPU-nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMockServer(t, 3)
			opts := DefaultOptions()
			opts.Devices = tt.devices
			c := newTestCollector(t, s, opts)
			openAndPoll(t, c, 1)
			got := gather(t, c)
			seen := map[string]bool{}
			for k := range got {
				if strings.HasPrefix(k, namespace+"info{") {
					seen[gpuLabels(k)] = true
				}
			}
			if gotGPUs := slices.Sorted(maps.Keys(seen)); !slices.Equal(gotGPUs, tt.want) {
				t.Errorf("exported GPUs = %v, want %v", gotGPUs, tt.want)
			}
			if n := got[namespace+"devices"]; int(n) != len(tt.want) {
				t.Errorf("devices = %v, want %d", n, len(tt.want))
			}
			if got[namespace+"up"] != 1 {
				t.Errorf("up = %v, want 1 (NVML works even when no GPU is selected)", got[namespace+"up"])
			}
			// GPUs left out are never read beyond their UUID.
			for i := range 3 {
				read := s.calls(fmt.Sprintf("Device%d.GetUtilizationRates", i)) > 0
				if want := slices.Contains(tt.want, fmt.Sprint(i)); read != want {
					t.Errorf("GPU %d read = %v, want %v", i, read, want)
				}
			}
		})
	}
}

// failure describes one NVML call made to fail on GPU 0 (or the library) and what must follow.
type failure struct {
	call   string                                // errors_total call label
	gpu    string                                // errors_total gpu label
	count  float64                               // failures after two polls
	gone   []string                              // families whose GPU 0 series disappear
	edit   func(want map[string]float64)         // other expected changes
	breakF func(s *mockServer, code nvml.Return) // makes the call fail
}

func failures() []failure {
	dev0 := func(s *mockServer) *mock.Device { return &s.devs[0].Device }
	everything := []string{"info", "utilization_ratio", "memory_busy_ratio", "memory_bandwidth_utilization_ratio",
		"memory_used_bytes", "memory_total_bytes", "memory_reserved_bytes", "power_watts", "power_limit_watts",
		"energy_joules_total", "sm_clock_hertz", "memory_clock_hertz", "temperature_celsius", "clock_event_active",
		"ecc_enabled", "ecc_errors_total", "mig_mode"}
	relabelGPU0 := func(label, value string) func(map[string]float64) {
		return func(want map[string]float64) { relabelInfo(want, "0", label, value) }
	}
	return []failure{
		{call: "utilization", gpu: "0", count: 2, gone: []string{"utilization_ratio", "memory_busy_ratio"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, code }
			}},
		{call: "memory_info", gpu: "0", count: 2, gone: []string{"memory_used_bytes", "memory_total_bytes", "memory_reserved_bytes"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) { return nvml.Memory_v2{}, code }
				dev0(s).GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, code }
			}},
		{call: "power_usage", gpu: "0", count: 2, gone: []string{"power_watts"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, code }
			}},
		{call: "power_limit", gpu: "0", count: 2, gone: []string{"power_limit_watts"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, code }
			}},
		{call: "energy", gpu: "0", count: 2, gone: []string{"energy_joules_total"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, code }
			}},
		{call: "sm_clock", gpu: "0", count: 2, gone: []string{"sm_clock_hertz"},
			breakF: func(s *mockServer, code nvml.Return) {
				old := dev0(s).GetClockInfoFunc
				dev0(s).GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
					if c == nvml.CLOCK_SM {
						return 0, code
					}
					return old(c)
				}
			}},
		{call: "memory_clock", gpu: "0", count: 2, gone: []string{"memory_clock_hertz"},
			breakF: func(s *mockServer, code nvml.Return) {
				old := dev0(s).GetClockInfoFunc
				dev0(s).GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
					if c == nvml.CLOCK_MEM {
						return 0, code
					}
					return old(c)
				}
			}},
		{call: "temperature", gpu: "0", count: 2, gone: []string{"temperature_celsius"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, code }
			}},
		{call: "clock_events", gpu: "0", count: 2, gone: []string{"clock_event_active"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, code }
			}},
		{call: "ecc_mode", gpu: "0", count: 2, gone: []string{"ecc_enabled", "ecc_errors_total"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) { return 0, 0, code }
			}},
		{call: "ecc_errors", gpu: "0", count: 4, gone: []string{"ecc_errors_total"}, // two types per poll
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 0, code }
			}},
		{call: "mig_mode", gpu: "0", count: 2, gone: []string{"mig_mode"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, code }
			}},
		{call: "gpm_sample", gpu: "0", count: 2, gone: []string{"memory_bandwidth_utilization_ratio"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GpmSampleGetFunc = func(nvml.GpmSample) nvml.Return { return code }
			}},
		{call: "gpm_metrics", gpu: "0", count: 1, gone: []string{"memory_bandwidth_utilization_ratio"}, // computed on the 2nd poll only
			breakF: func(s *mockServer, code nvml.Return) {
				old := s.GpmMetricsGetFunc
				s.GpmMetricsGetFunc = func(m *nvml.GpmMetricsGetType) nvml.Return {
					if ret := old(m); ret != nvml.SUCCESS || m.Sample1.(*testSample).gpu != 0 {
						return ret
					}
					m.Metrics[0].NvmlReturn = uint32(code) // a per-metric failure
					return nvml.SUCCESS
				}
			}},
		// Read once, when the GPUs are enumerated.
		{call: "uuid", gpu: "0", count: 1, gone: everything,
			edit: func(want map[string]float64) { want[namespace+"devices"] = 1 },
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetUUIDFunc = func() (string, nvml.Return) { return "", code }
			}},
		{call: "device_handle", gpu: "0", count: 1, gone: everything,
			edit: func(want map[string]float64) { want[namespace+"devices"] = 1 },
			breakF: func(s *mockServer, code nvml.Return) {
				old := s.DeviceGetHandleByIndexFunc
				s.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
					if i == 0 {
						return nil, code
					}
					return old(i)
				}
			}},
		{call: "name", gpu: "0", count: 1, edit: relabelGPU0("name", ""),
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetNameFunc = func() (string, nvml.Return) { return "", code }
			}},
		{call: "pci_info", gpu: "0", count: 1, edit: relabelGPU0("pci_bus_id", ""),
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) { return nvml.PciInfo{}, code }
			}},
		{call: "gpm_support", gpu: "0", count: 1, gone: []string{"memory_bandwidth_utilization_ratio"},
			breakF: func(s *mockServer, code nvml.Return) {
				dev0(s).GpmQueryDeviceSupportFunc = func() (nvml.GpmSupport, nvml.Return) { return nvml.GpmSupport{}, code }
			}},
		{call: "gpm_alloc", gpu: "0", count: 1, gone: []string{"memory_bandwidth_utilization_ratio"},
			breakF: func(s *mockServer, code nvml.Return) {
				old := s.GpmSampleAllocFunc
				n := 0
				s.GpmSampleAllocFunc = func() (nvml.GpmSample, nvml.Return) {
					if n++; n == 2 { // GPU 0's second buffer; the first must then be freed
						return nil, code
					}
					return old()
				}
			}},
		{call: "driver_version", count: 1,
			edit: func(want map[string]float64) { relabelInfo(want, "", "driver_version", "") },
			breakF: func(s *mockServer, code nvml.Return) {
				s.SystemGetDriverVersionFunc = func() (string, nvml.Return) { return "", code }
			}},
		{call: "cuda_driver_version", count: 1,
			edit: func(want map[string]float64) { relabelInfo(want, "", "cuda_version", "") },
			breakF: func(s *mockServer, code nvml.Return) {
				s.SystemGetCudaDriverVersionFunc = func() (int, nvml.Return) { return 0, code }
			}},
		{call: "device_count", count: 3, // at Init, then retried on each of the two polls
			edit: func(want map[string]float64) {
				for k := range want {
					if k != namespace+"up" {
						delete(want, k)
					}
				}
				want[namespace+"up"] = 0
			},
			breakF: func(s *mockServer, code nvml.Return) {
				s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, code }
			}},
	}
}

// relabelInfo sets one label of the info series of one GPU (gpu "" for all).
func relabelInfo(want map[string]float64, gpu, label, value string) {
	for k := range want {
		if !strings.HasPrefix(k, namespace+"info{") || (gpu != "" && gpuLabels(k) != gpu) {
			continue
		}
		i := strings.Index(k, label+`="`) + len(label) + 2
		j := i + strings.Index(k[i:], `"`)
		if nk := k[:i] + value + k[j:]; nk != k {
			delete(want, k)
			want[nk] = 1
		}
	}
}

// TestCallFailures makes each NVML call fail in turn, with "not supported" and with an unknown
// error, and checks that exactly the series it feeds disappear (never turn to zero), that every
// other series is unchanged, and that the failures are counted by call and reason.
func TestCallFailures(t *testing.T) {
	baseline := func(t *testing.T) map[string]float64 {
		c := newTestCollector(t, newMockServer(t, 2), DefaultOptions())
		openAndPoll(t, c, 2)
		return gather(t, c)
	}(t)
	drop := func(m map[string]float64) { delete(m, namespace+"poll_duration_seconds") }
	drop(baseline)
	codes := []struct {
		code   nvml.Return
		reason string
	}{
		{nvml.ERROR_NOT_SUPPORTED, "not_supported"},
		{nvml.ERROR_UNKNOWN, "error"},
	}
	for _, f := range failures() {
		for _, code := range codes {
			t.Run(f.call+"/"+code.reason, func(t *testing.T) {
				s := newMockServer(t, 2)
				f.breakF(s, code.code)
				c := newTestCollector(t, s, DefaultOptions())
				openAndPoll(t, c, 2)
				got := gather(t, c)
				drop(got)

				want := maps.Clone(baseline)
				for k := range want {
					for _, fam := range f.gone {
						if strings.HasPrefix(k, namespace+fam+"{") && gpuLabels(k) == "0" {
							delete(want, k)
						}
					}
				}
				if f.edit != nil {
					f.edit(want)
				}
				want[fmt.Sprintf(`%serrors_total{call=%q,gpu=%q,reason=%q}`, namespace, f.call, f.gpu, code.reason)] = f.count
				if f.call == "gpm_alloc" && s.calls("Interface.GpmSampleFree") != 1 {
					t.Errorf("GpmSampleFree calls = %d after a failed second allocation, want 1", s.calls("Interface.GpmSampleFree"))
				}
				diff(t, got, want)
			})
		}
	}
}

// diff reports series present in only one map or with different values.
func diff(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("missing %s (want %v)", k, want[k])
		case g != want[k]:
			t.Errorf("%s = %v, want %v", k, g, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %v", k, got[k])
		}
	}
}

func TestMemoryInfoV2Fallback(t *testing.T) {
	s := newMockServer(t, 1)
	s.devs[0].GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) { return nvml.Memory_v2{}, nvml.ERROR_NOT_SUPPORTED }
	s.devs[0].GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		return nvml.Memory{Total: mockMemTotal, Used: 5 << 30, Free: mockMemTotal - 5<<30}, nvml.SUCCESS
	}
	c := newTestCollector(t, s, DefaultOptions())
	openAndPoll(t, c, 1)
	const want = `
# HELP inferprobe_accelerator_memory_total_bytes Total installed device memory, in bytes.
# TYPE inferprobe_accelerator_memory_total_bytes gauge
inferprobe_accelerator_memory_total_bytes{gpu="0",uuid="U0"} 8.589934592e+10
# HELP inferprobe_accelerator_memory_used_bytes Device memory allocated, in bytes (excludes the driver-reserved part where memory_reserved_bytes is exported).
# TYPE inferprobe_accelerator_memory_used_bytes gauge
inferprobe_accelerator_memory_used_bytes{gpu="0",uuid="U0"} 5.36870912e+09
`
	err := testutil.CollectAndCompare(c, strings.NewReader(strings.ReplaceAll(want, "U0", mockUUID(0))),
		namespace+"memory_total_bytes", namespace+"memory_used_bytes", namespace+"memory_reserved_bytes", namespace+"errors_total")
	if err != nil {
		t.Error(err)
	}
}

func TestOlderLibraryWithoutNewSymbols(t *testing.T) {
	s := newMockServer(t, 1)
	missing := map[string]bool{"nvmlDeviceGetCurrentClocksEventReasons": true, "nvmlDeviceGetMemoryInfo_v2": true, "nvmlGpmSampleAlloc": true}
	s.LookupSymbolFunc = func(name string) error {
		if missing[name] {
			return fmt.Errorf("%s: undefined symbol", name)
		}
		return nil
	}
	s.devs[0].GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) { return nvml.ClocksThrottleReasonHwSlowdown, nvml.SUCCESS }
	c := newTestCollector(t, s, DefaultOptions())
	openAndPoll(t, c, 2)
	got := gather(t, c)
	u := mockUUID(0)
	if v, ok := got[`inferprobe_accelerator_clock_event_active{gpu="0",reason="hw_slowdown",uuid="`+u+`"}`]; !ok || v != 1 {
		t.Errorf("hw_slowdown from the pre-R535 call = %v (present %v), want 1", v, ok)
	}
	for _, name := range []string{"GetCurrentClocksEventReasons", "GetMemoryInfo_v2", "GpmQueryDeviceSupport", "GpmSampleGet"} {
		if n := s.calls("Device0." + name); n != 0 {
			t.Errorf("%s called %d times although the library lacks it", name, n)
		}
	}
	if _, ok := got[`inferprobe_accelerator_memory_reserved_bytes{gpu="0",uuid="`+u+`"}`]; ok {
		t.Error("reserved memory exported without the v2 call")
	}
	if _, ok := got[`inferprobe_accelerator_memory_bandwidth_utilization_ratio{gpu="0",uuid="`+u+`"}`]; ok {
		t.Error("bandwidth exported without GPM")
	}
	for k := range got {
		if strings.HasPrefix(k, namespace+"errors_total") {
			t.Errorf("missing optional symbols must not count as errors; got %s", k)
		}
	}
}

func TestGPULostReinitialises(t *testing.T) {
	s := newMockServer(t, 2)
	lost := true
	s.devs[0].GetPowerUsageFunc = func() (uint32, nvml.Return) {
		if lost {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		return 300000, nvml.SUCCESS
	}
	c := newTestCollector(t, s, DefaultOptions())
	openAndPoll(t, c, 1)
	u0 := mockUUID(0)
	got := gather(t, c)
	if v := got[namespace+`errors_total{call="power_usage",gpu="0",reason="gpu_lost"}`]; v != 1 {
		t.Errorf("gpu_lost errors = %v, want 1", v)
	}
	// Reads of GPU 0 before the lost one are kept, the rest skipped; GPU 1 is whole.
	for fam, want := range map[string]bool{"utilization_ratio": true, "memory_used_bytes": true, "power_watts": false,
		"power_limit_watts": false, "temperature_celsius": false, "clock_event_active": false} {
		found := false
		for k := range got {
			if strings.HasPrefix(k, namespace+fam+"{") && gpuLabels(k) == "0" {
				found = true
			}
		}
		if found != want {
			t.Errorf("GPU 0 %s present = %v, want %v", fam, found, want)
		}
	}
	if _, ok := got[`inferprobe_accelerator_temperature_celsius{gpu="1",uuid="`+mockUUID(1)+`"}`]; !ok {
		t.Error("GPU 1 lost its series because GPU 0 was lost")
	}
	if got := s.calls("Device0.GetEnforcedPowerLimit"); got != 0 {
		t.Errorf("GPU 0 was read %d times after it was lost", got)
	}
	if n := s.calls("Interface.Shutdown"); n != 0 {
		t.Fatalf("Shutdown called %d times in the poll that saw the loss; want the re-init on the next one", n)
	}

	lost = false
	c.poll()
	if n, m := s.calls("Interface.Shutdown"), s.calls("Interface.Init"); n != 1 || m != 2 {
		t.Errorf("after the next poll Shutdown/Init calls = %d/%d, want 1/2", n, m)
	}
	if n := s.calls("Interface.DeviceGetCount"); n != 2 {
		t.Errorf("DeviceGetCount calls = %d, want 2 (re-enumerated)", n)
	}
	if n := s.calls("Interface.GpmSampleFree"); n != 4 {
		t.Errorf("GpmSampleFree calls = %d, want 4 (buffers freed before Shutdown)", n)
	}
	got = gather(t, c)
	if v := got[`inferprobe_accelerator_power_watts{gpu="0",uuid="`+u0+`"}`]; v != 300 {
		t.Errorf("power after re-init = %v, want 300", v)
	}
	if v := got[namespace+"up"]; v != 1 {
		t.Errorf("up after re-init = %v, want 1", v)
	}
	c.poll()
	if n := s.calls("Interface.Init"); n != 2 {
		t.Errorf("Init calls = %d after a healthy poll, want still 2", n)
	}
}

func TestGPULostAndReinitFails(t *testing.T) {
	s := newMockServer(t, 1)
	s.devs[0].GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
	c := newTestCollector(t, s, DefaultOptions())
	openAndPoll(t, c, 1)
	s.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
	before := s.callCounts()
	for range 3 {
		c.poll()
	}
	after := s.callCounts()
	before["Interface.Shutdown"]++
	before["Interface.Init"]++
	before["Interface.GpmSampleFree"] += 2
	if !maps.Equal(before, after) {
		t.Errorf("after a failed re-init the calls went from %v to %v; want only Shutdown, Init and the frees", before, after)
	}
	got := gather(t, c)
	if got[namespace+"up"] != 0 || got[namespace+`errors_total{call="init",gpu="",reason="error"}`] != 1 {
		t.Errorf("want up 0 and one init error; got %v", got)
	}
	c.close() // must not call Shutdown again
	if n := s.calls("Interface.Shutdown"); n != 1 {
		t.Errorf("Shutdown calls = %d, want 1", n)
	}
}

func TestInitFailureCallsNothingElse(t *testing.T) {
	for _, code := range []nvml.Return{nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED, nvml.ERROR_NO_PERMISSION} {
		t.Run(code.Error(), func(t *testing.T) {
			defer goleak.VerifyNone(t)
			s := newMockServer(t, 2)
			s.InitFunc = func() nvml.Return { return code }
			var logs testkit.LockedBuffer
			opts := DefaultOptions()
			opts.Interval = MinInterval
			c := New(newNVMLLibrary(s), opts, slog.New(slog.NewTextHandler(&logs, nil)))

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); c.Run(ctx) }()
			waitFor(t, func() bool { return c.snap.Load() != nil })
			for range 3 { // polls after the failure (as a ticker would make) call nothing either
				time.Sleep(opts.Interval / 2)
				got := gather(t, c)
				if got[namespace+"up"] != 0 {
					t.Errorf("up = %v, want 0", got[namespace+"up"])
				}
			}
			cancel()
			<-done
			c.poll()
			c.close()

			if got := s.callCounts(); !maps.Equal(got, map[string]int{"Interface.Init": 1}) {
				t.Errorf("mock calls = %v, want only one Init", got)
			}
			want := `
# HELP inferprobe_accelerator_errors_total Failed NVML calls since start, by call and reason (not_supported, gpu_lost, error); gpu is empty for calls not tied to one GPU.
# TYPE inferprobe_accelerator_errors_total counter
inferprobe_accelerator_errors_total{call="init",gpu="",reason="error"} 1
# HELP inferprobe_accelerator_up 1 if NVML is initialised and the last poll of it completed within three poll intervals, else 0.
# TYPE inferprobe_accelerator_up gauge
inferprobe_accelerator_up 0
`
			if err := testutil.CollectAndCompare(c, strings.NewReader(want), allNames(c)...); err != nil {
				t.Error(err)
			}
			if n := strings.Count(logs.String(), "NVML initialisation failed"); n != 1 {
				t.Errorf("init failure logged %d times, want once:\n%s", n, logs.String())
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after a bound.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRunPollsAndStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := newMockServer(t, 2)
	opts := DefaultOptions()
	opts.Interval = MinInterval
	c := New(newNVMLLibrary(s), opts, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()

	// Two polls: the second one (from the ticker) yields the GPM bandwidth.
	waitFor(t, func() bool {
		return testutil.CollectAndCount(c, namespace+"memory_bandwidth_utilization_ratio") == 2
	})
	if got := testutil.ToFloat64(upOnly(c)); got != 1 {
		t.Errorf("up = %v, want 1", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := s.calls("Interface.Shutdown"); n != 1 {
		t.Errorf("Shutdown calls = %d, want 1", n)
	}
	if n, m := s.calls("Interface.GpmSampleFree"), s.calls("Interface.GpmSampleAlloc"); n != m || n != 4 {
		t.Errorf("GPM buffers allocated %d, freed %d; want 4 and 4", m, n)
	}
	if n := s.calls("Interface.Init"); n != 1 {
		t.Errorf("Init calls = %d, want 1", n)
	}

	// A second Run must neither initialise again nor block.
	c.Run(context.Background())
	if n := s.calls("Interface.Init"); n != 1 {
		t.Errorf("Init calls after a second Run = %d, want 1", n)
	}
}

func TestCanceledBeforeRunCallsNothing(t *testing.T) {
	s := newMockServer(t, 1)
	c := New(newNVMLLibrary(s), DefaultOptions(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Run(ctx)
	if got := s.callCounts(); len(got) != 0 {
		t.Errorf("calls = %v, want none", got)
	}
}

func TestStaleSnapshotWithholdsGPUSeries(t *testing.T) {
	s := newMockServer(t, 1)
	opts := DefaultOptions()
	c := newTestCollector(t, s, opts)
	openAndPoll(t, c, 1)
	tests := []struct {
		after   time.Duration
		up      float64
		devices bool
	}{
		{0, 1, true},
		{staleIntervals * opts.Interval, 1, true},
		{staleIntervals*opts.Interval + time.Second, 0, false},
	}
	for _, tt := range tests {
		c.now = func() time.Time { return testEpoch.Add(tt.after) }
		got := gather(t, c)
		if got[namespace+"up"] != tt.up {
			t.Errorf("after %s: up = %v, want %v", tt.after, got[namespace+"up"], tt.up)
		}
		if age := got[namespace+"last_update_age_seconds"]; age != tt.after.Seconds() {
			t.Errorf("after %s: age = %v", tt.after, age)
		}
		_, ok := got[`inferprobe_accelerator_power_watts{gpu="0",uuid="`+mockUUID(0)+`"}`]
		if ok != tt.devices {
			t.Errorf("after %s: per-GPU series present = %v, want %v", tt.after, ok, tt.devices)
		}
		if _, ok := got[namespace+"devices"]; !ok {
			t.Errorf("after %s: devices gauge missing", tt.after)
		}
	}
}

func TestMIGInstances(t *testing.T) {
	s := newMockServer(t, 1)
	d := s.devs[0]
	d.SetMigMode(nvml.DEVICE_MIG_ENABLE)
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
	migs := []*mock.Device{}
	for i := range 2 {
		migs = append(migs, &mock.Device{
			GetUUIDFunc: func() (string, nvml.Return) {
				return fmt.Sprintf("MIG-0000000%d-aaaa-bbbb-cccc-dddddddddddd", i), nvml.SUCCESS
			},
			GetGpuInstanceIdFunc:     func() (int, nvml.Return) { return 3 + i, nvml.SUCCESS },
			GetComputeInstanceIdFunc: func() (int, nvml.Return) { return 0, nvml.SUCCESS },
			GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
				return nvml.Memory{Total: 20 << 30, Used: uint64(i+1) << 30}, nvml.SUCCESS
			},
		})
	}
	d.GetMigDeviceHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if i < len(migs) {
			return migs[i], nvml.SUCCESS
		}
		return nil, nvml.ERROR_NOT_FOUND
	}
	c := newTestCollector(t, s, DefaultOptions())
	openAndPoll(t, c, 1)
	const want = `
# HELP inferprobe_accelerator_mig_instance_info One series per MIG device of a GPU in MIG mode; always 1.
# TYPE inferprobe_accelerator_mig_instance_info gauge
inferprobe_accelerator_mig_instance_info{compute_instance_id="0",gpu="0",gpu_instance_id="3",mig_uuid="MIG-00000000-aaaa-bbbb-cccc-dddddddddddd",uuid="U0"} 1
inferprobe_accelerator_mig_instance_info{compute_instance_id="0",gpu="0",gpu_instance_id="4",mig_uuid="MIG-00000001-aaaa-bbbb-cccc-dddddddddddd",uuid="U0"} 1
# HELP inferprobe_accelerator_mig_memory_total_bytes Device memory of a MIG instance, in bytes.
# TYPE inferprobe_accelerator_mig_memory_total_bytes gauge
inferprobe_accelerator_mig_memory_total_bytes{gpu="0",mig_uuid="MIG-00000000-aaaa-bbbb-cccc-dddddddddddd",uuid="U0"} 2.147483648e+10
inferprobe_accelerator_mig_memory_total_bytes{gpu="0",mig_uuid="MIG-00000001-aaaa-bbbb-cccc-dddddddddddd",uuid="U0"} 2.147483648e+10
# HELP inferprobe_accelerator_mig_memory_used_bytes Device memory used by a MIG instance, in bytes.
# TYPE inferprobe_accelerator_mig_memory_used_bytes gauge
inferprobe_accelerator_mig_memory_used_bytes{gpu="0",mig_uuid="MIG-00000000-aaaa-bbbb-cccc-dddddddddddd",uuid="U0"} 1.073741824e+09
inferprobe_accelerator_mig_memory_used_bytes{gpu="0",mig_uuid="MIG-00000001-aaaa-bbbb-cccc-dddddddddddd",uuid="U0"} 2.147483648e+09
# HELP inferprobe_accelerator_mig_mode 1 if MIG (multi-instance GPU) mode is enabled now, else 0.
# TYPE inferprobe_accelerator_mig_mode gauge
inferprobe_accelerator_mig_mode{gpu="0",uuid="U0"} 1
`
	err := testutil.CollectAndCompare(c, strings.NewReader(strings.ReplaceAll(want, "U0", mockUUID(0))),
		namespace+"mig_mode", namespace+"mig_instance_info", namespace+"mig_memory_used_bytes",
		namespace+"mig_memory_total_bytes", namespace+"errors_total")
	if err != nil {
		t.Error(err)
	}
	if n := s.calls("Device0.GetMigDeviceHandleByIndex"); n != 7 {
		t.Errorf("GetMigDeviceHandleByIndex calls = %d, want 7 (every slot)", n)
	}
}

func TestNVMLCodesMatch(t *testing.T) {
	// library.go mirrors these nvml.h values so that it needs no cgo.
	for _, tt := range []struct {
		ours int
		nvml nvml.Return
	}{
		{codeNotSupported, nvml.ERROR_NOT_SUPPORTED},
		{codeFunctionNotFound, nvml.ERROR_FUNCTION_NOT_FOUND},
		{codeGPULost, nvml.ERROR_GPU_IS_LOST},
	} {
		if tt.ours != int(tt.nvml) {
			t.Errorf("code %d != nvml %d", tt.ours, int(tt.nvml))
		}
	}
	for _, r := range ClockEventReasons() {
		if r.Bit&^uint64(nvml.ClocksEventReasonAll) != 0 {
			t.Errorf("reason %s bit %#x outside NVML's mask", r.Name, r.Bit)
		}
	}
	want := map[string]uint64{
		"gpu_idle": nvml.ClocksEventReasonGpuIdle, "applications_clocks_setting": nvml.ClocksEventReasonApplicationsClocksSetting,
		"sw_power_cap": nvml.ClocksEventReasonSwPowerCap, "hw_slowdown": nvml.ClocksThrottleReasonHwSlowdown,
		"sync_boost": nvml.ClocksEventReasonSyncBoost, "sw_thermal_slowdown": nvml.ClocksEventReasonSwThermalSlowdown,
		"hw_thermal_slowdown":     nvml.ClocksThrottleReasonHwThermalSlowdown,
		"hw_power_brake_slowdown": nvml.ClocksThrottleReasonHwPowerBrakeSlowdown,
		"display_clocks_setting":  nvml.ClocksEventReasonDisplayClockSetting,
	}
	got := map[string]uint64{}
	for _, r := range ClockEventReasons() {
		got[r.Name] = r.Bit
	}
	if !maps.Equal(got, want) {
		t.Errorf("clock event reasons = %v, want %v", got, want)
	}
}

func TestDryRun(t *testing.T) {
	s := newMockServer(t, 2)
	var out bytes.Buffer
	if err := dryRun(context.Background(), newNVMLLibrary(s), DefaultOptions(), &out, time.Millisecond); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	// Compare with runs of blanks folded: the table's column widths are not the point.
	text := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{
		"NVML driver 550.54.15, CUDA 12.4, 2 GPU(s) selected",
		"GPU 0 " + mockUUID(0) + " name NVIDIA H100 80GB HBM3 pci bus id 00000000:18:00.0",
		"utilization 10.0 % memory busy 20.0 % memory bandwidth (GPM) 40.5 %",
		"memory used 1024 MiB memory total 81920 MiB memory reserved 512 MiB",
		"power 300.0 W power limit 700.0 W energy since driver load 123.457 kJ",
		"SM clock 1980 MHz memory clock 2619 MHz temperature 40 °C",
		"clock events active sw_power_cap, hw_thermal_slowdown",
		"ECC enabled yes ECC errors corrected 3 ECC errors uncorrected 0 MIG mode no",
		"clock events active gpu_idle",
		"# Exposition",
		"inferprobe_accelerator_up 1",
		`inferprobe_accelerator_power_watts{gpu="1",uuid="` + mockUUID(1) + `"} 301`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, text)
		}
	}
	if n, m := s.calls("Interface.Init"), s.calls("Interface.Shutdown"); n != 1 || m != 1 {
		t.Errorf("Init/Shutdown calls = %d/%d, want 1/1", n, m)
	}
}

func TestDryRunInitFailure(t *testing.T) {
	s := newMockServer(t, 1)
	s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	var out bytes.Buffer
	err := dryRun(context.Background(), newNVMLLibrary(s), DefaultOptions(), &out, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "initialising NVML") {
		t.Errorf("err = %v, want an initialisation error", err)
	}
	if got := s.callCounts(); !maps.Equal(got, map[string]int{"Interface.Init": 1}) {
		t.Errorf("calls = %v, want only Init", got)
	}
}

func TestDryRunCanceledDuringGap(t *testing.T) {
	s := newMockServer(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	s.devs[0].GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) {
		cancel() // cancel during the first poll, so the gap sees it
		return 40, nvml.SUCCESS
	}
	err := dryRun(ctx, newNVMLLibrary(s), DefaultOptions(), io.Discard, time.Hour)
	if err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := s.calls("Interface.Shutdown"); n != 1 {
		t.Errorf("Shutdown calls = %d, want 1", n)
	}
}
