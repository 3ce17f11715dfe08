// Package emutest checks the CUDA grid emulator of gpu/cudaemu itself, with
// kernels of its own that a correct emulator must run, or must reject.
package emutest

/*
#cgo CFLAGS: -O2 -std=gnu11 -Wall -Wno-unused-function
#cgo LDFLAGS: -lm
#include "../../emu.h"
*/
import "C"

import "unsafe"

// The kernels of emutest.c.
const (
	gridIDs = iota
	rotate
	divergent
	undeclared
	overrun
)

// launch runs kernel k with out as its argument and returns emu_launch's result.
func launch(k int, out []int32, gx, gy, bx int) int {
	buf := C.emu_alloc(C.size_t(4 * len(out)))
	defer C.emu_free(buf, C.size_t(4*len(out)))
	arg := []uint64{uint64(buf)}
	rc := C.emu_launch(C.int(k), (*C.uint64_t)(unsafe.Pointer(&arg[0])), C.uint(gx), C.uint(gy), C.uint(bx))
	C.emu_dtoh(unsafe.Pointer(&out[0]), buf, C.size_t(4*len(out)))
	return int(rc)
}

const (
	ok                 = int(C.EMU_OK)
	divergentBarrier   = int(C.EMU_DIVERGENT_BARRIER)
	undeclaredBarrier  = int(C.EMU_UNDECLARED_BARRIER)
	badLaunch          = int(C.EMU_BAD_LAUNCH)
	maxThreadsPerBlock = int(C.EMU_MAX_THREADS)
)
