// cublas.h: the few cuBLAS entry points the CUDA backend calls, resolved at run
// time with dlopen/dlsym instead of linked (see cublas.go). The types are cuBLAS's
// ABI, identical in cuBLAS 11, 12 and 13: handles are pointers, enums are int,
// batch strides long long.
#ifndef CAP_CUBLAS_H
#define CAP_CUBLAS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cap_cublas cap_cublas;

// cap_cublas_open loads the library at path (a file name for the dynamic
// loader's own search, or a path) and resolves the entry points. dep (or NULL)
// is loaded first: the library's cublasLt, which the loader would not look for
// in the library's own folder. On failure it
// returns NULL with dlerror's message in err: dlopen, dlsym and dlerror run in
// this one C call, so on one thread, and dlerror's per-thread message is the
// failure's own.
cap_cublas *cap_cublas_open(const char *path, const char *dep, char *err, size_t errlen);
void cap_cublas_close(cap_cublas *l);

// cap_cublas_origin writes the file the library was loaded from.
int cap_cublas_origin(cap_cublas *l, char *buf, size_t len);

int cap_cublas_create(cap_cublas *l, uintptr_t *handle);
int cap_cublas_destroy(cap_cublas *l, uintptr_t handle);
int cap_cublas_version(cap_cublas *l, uintptr_t handle, int *version);
int cap_cublas_set_math(cap_cublas *l, uintptr_t handle, int mode);
int cap_cublas_get_math(cap_cublas *l, uintptr_t handle, int *mode);
int cap_cublas_sgemm(cap_cublas *l, uintptr_t handle, int ta, int tb, int m, int n, int k, float alpha, uintptr_t a,
                     int lda, uintptr_t b, int ldb, float beta, uintptr_t c, int ldc);
int cap_cublas_sgemm_strided(cap_cublas *l, uintptr_t handle, int ta, int tb, int m, int n, int k, float alpha,
                             uintptr_t a, int lda, long long stride_a, uintptr_t b, int ldb, long long stride_b,
                             float beta, uintptr_t c, int ldc, long long stride_c, int batch);

#endif
