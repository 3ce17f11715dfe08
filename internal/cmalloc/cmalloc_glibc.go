//go:build linux && cgo

package cmalloc

/*
#include <malloc.h>

// set_mmap_threshold is mallopt(M_MMAP_THRESHOLD) where the C library is
// glibc; elsewhere (musl has neither) it reports 0, not a build failure.
static int set_mmap_threshold(int bytes) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
	return mallopt(M_MMAP_THRESHOLD, bytes);
#else
	return 0;
#endif
}
*/
import "C"

func setMmapThreshold(bytes int) bool { return C.set_mmap_threshold(C.int(bytes)) == 1 }
