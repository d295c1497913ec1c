package acceltest

import (
	"context"
	"strings"
	"testing"

	"github.com/inferprobe/inferprobe/collector/accelerator"
)

// The fake is what the collector reads as two GPUs with every series: the dry run (the
// collector's own poll and exposition) shows each of them.
func TestDryRunSeesEverySeries(t *testing.T) {
	lib := New()
	var out strings.Builder
	if err := accelerator.DryRun(context.Background(), lib, accelerator.DefaultOptions(), &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		`inferprobe_accelerator_up 1`,
		`inferprobe_accelerator_devices 2`,
		`inferprobe_accelerator_memory_bandwidth_utilization_ratio{gpu="0"`,
		`inferprobe_accelerator_memory_bandwidth_utilization_ratio{gpu="1"`,
		`inferprobe_accelerator_mig_memory_used_bytes{`,
		`inferprobe_accelerator_mig_mode{gpu="0"`,
		`inferprobe_accelerator_clock_event_active{gpu="0",reason="hw_slowdown"`,
		`inferprobe_accelerator_errors_total{call=`,
		`reason="error"`,
		`inferprobe_accelerator_temperature_celsius{gpu="0"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("dry run output lacks %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, `inferprobe_accelerator_temperature_celsius{gpu="1"`) {
		t.Errorf("GPU 1's temperature read fails, yet it is exported:\n%s", text)
	}
	if lib.inits != 0 {
		t.Errorf("%d Init calls left without Shutdown", lib.inits)
	}
}
