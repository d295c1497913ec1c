//go:build unix

package otlp_test

import (
	"syscall"
	"time"
)

// processCPU is the process's user plus system CPU time so far (getrusage), which counts the
// exporter's goroutines as well as the benchmark loop's.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
