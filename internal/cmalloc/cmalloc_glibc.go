//go:build linux && cgo

package cmalloc

/*
#include <malloc.h>
*/
import "C"

func setMmapThreshold(bytes int) bool { return C.mallopt(C.M_MMAP_THRESHOLD, C.int(bytes)) == 1 }
