//go:build unix

package detect_test

import (
	"syscall"
	"time"
)

// processCPU returns the user and system CPU time this process has used,
// or ok=false where it cannot be read.
func processCPU() (cpu time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
