#define _GNU_SOURCE
#include "cublas.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cap_cublas {
	void *lib;
	int (*create)(void **);
	int (*destroy)(void *);
	int (*version)(void *, int *);
	int (*sgemm)(void *, int, int, int, int, int, const float *, const float *, int, const float *, int,
	             const float *, float *, int);
	int (*sgemm_strided)(void *, int, int, int, int, int, const float *, const float *, int, long long,
	                     const float *, int, long long, const float *, float *, int, long long, int);
	int (*set_math)(void *, int);
	int (*get_math)(void *, int *);
};

static void failed(char *err, size_t errlen, const char *what) {
	const char *e = dlerror();
	snprintf(err, errlen, "%s", e ? e : what);
}

cap_cublas *cap_cublas_open(const char *path, const char *dep, char *err, size_t errlen) {
	dlerror(); // clear a stale message
	int flags = RTLD_NOW | RTLD_LOCAL;
	// A failure to load dep shows up below, when the library itself cannot load.
	void *d = dep ? dlopen(dep, flags) : NULL;
	void *lib = dlopen(path, flags);
	if (d) dlclose(d); // lib holds its own reference when it needs dep
	if (!lib) {
		failed(err, errlen, "dlopen failed without a message");
		return NULL;
	}
	cap_cublas *l = calloc(1, sizeof *l);
	if (!l) {
		dlclose(lib);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->lib = lib;
	struct {
		const char *name;
		void **fn;
	} syms[] = {
	    {"cublasCreate_v2", (void **)&l->create},
	    {"cublasDestroy_v2", (void **)&l->destroy},
	    {"cublasGetVersion_v2", (void **)&l->version},
	    {"cublasSgemm_v2", (void **)&l->sgemm},
	    {"cublasSgemmStridedBatched", (void **)&l->sgemm_strided},
	    {"cublasSetMathMode", (void **)&l->set_math},
	    {"cublasGetMathMode", (void **)&l->get_math},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		*syms[i].fn = dlsym(lib, syms[i].name);
		if (!*syms[i].fn) {
			failed(err, errlen, syms[i].name);
			dlclose(lib); // a library refused goes, and cannot answer a later search by name
			free(l);
			return NULL;
		}
	}
	// The library taken stays mapped for good (RTLD_NODELETE, added to the
	// loaded library by RTLD_NOLOAD), with what it needs: cuBLAS links a CUDA
	// runtime of its own, whose teardown at an unload (and its handlers run at
	// exit after one) is a known way for CUDA programs to crash, and a process
	// that opens a device again (the GPU check's tests, a reload) finds it
	// loaded.
	void *pin = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD | RTLD_NODELETE);
	if (pin) dlclose(pin);
	return l;
}

void cap_cublas_close(cap_cublas *l) {
	dlclose(l->lib);
	free(l);
}

int cap_cublas_origin(cap_cublas *l, char *buf, size_t len) {
	struct link_map *m;
	if (dlinfo(l->lib, RTLD_DI_LINKMAP, &m) != 0 || !m->l_name) return -1;
	snprintf(buf, len, "%s", m->l_name);
	return 0;
}

int cap_cublas_create(cap_cublas *l, uintptr_t *handle) {
	void *h = NULL;
	int s = l->create(&h);
	*handle = (uintptr_t)h;
	return s;
}

int cap_cublas_destroy(cap_cublas *l, uintptr_t handle) { return l->destroy((void *)handle); }

int cap_cublas_version(cap_cublas *l, uintptr_t handle, int *version) { return l->version((void *)handle, version); }

int cap_cublas_set_math(cap_cublas *l, uintptr_t handle, int mode) { return l->set_math((void *)handle, mode); }

int cap_cublas_get_math(cap_cublas *l, uintptr_t handle, int *mode) { return l->get_math((void *)handle, mode); }

int cap_cublas_sgemm(cap_cublas *l, uintptr_t handle, int ta, int tb, int m, int n, int k, float alpha, uintptr_t a,
                     int lda, uintptr_t b, int ldb, float beta, uintptr_t c, int ldc) {
	return l->sgemm((void *)handle, ta, tb, m, n, k, &alpha, (const float *)a, lda, (const float *)b, ldb, &beta,
	                (float *)c, ldc);
}

int cap_cublas_sgemm_strided(cap_cublas *l, uintptr_t handle, int ta, int tb, int m, int n, int k, float alpha,
                             uintptr_t a, int lda, long long stride_a, uintptr_t b, int ldb, long long stride_b,
                             float beta, uintptr_t c, int ldc, long long stride_c, int batch) {
	return l->sgemm_strided((void *)handle, ta, tb, m, n, k, &alpha, (const float *)a, lda, stride_a,
	                        (const float *)b, ldb, stride_b, &beta, (float *)c, ldc, stride_c, batch);
}
