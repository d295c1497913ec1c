//go:build unix

package collector

import (
	"syscall"
	"time"
)

// processCPU is the process's user plus system CPU time so far (getrusage). On a shared
// machine a benchmark's wall time per op counts the time other processes held the core; its
// CPU time per op does not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
