package benchinput

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time the process has used so far, every thread's, user
// and system. Beside a benchmark's rate, CPU time per item is a figure that
// the load of a shared machine disturbs far less.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic("benchinput: getrusage: " + err.Error())
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
