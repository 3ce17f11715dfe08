package server

import "syscall"

// niceThread lowers the scheduling priority of the calling OS thread (on
// Linux, setpriority with a thread id applies to that thread alone).
func niceThread(nice int) {
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice)
}
