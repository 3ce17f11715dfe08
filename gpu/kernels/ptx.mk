# ptx.mk: build and check the committed PTX of the CUDA kernels. Included by the
# top-level Makefile (after its first target, which stays the default); paths are
# relative to the repository root.
#
#   make ptx        regenerate gpu/kernels/kernels.ptx from gpu/kernels/*.cu
#   make ptx-check  regenerate into a temporary folder, fail if it differs from the
#                   committed file, and assemble it with ptxas for every GPU
#                   architecture we support (sm_70 through sm_90)
#
# One PTX module for the compute_70 virtual architecture is shipped: nvcc 11.8
# emits byte-identical PTX for compute_70 ... compute_90 apart from the .target line
# (these kernels use no architecture-specific instructions), and the driver
# JIT-compiles PTX to the exact SASS of whichever GPU it finds, Volta and newer,
# caching the result. See gpu/README.md.

NVCC ?= nvcc
PTXAS ?= ptxas
PTX_ARCH := compute_70
PTX_SASS_ARCHS := sm_70 sm_75 sm_80 sm_86 sm_89 sm_90
PTX_DIR := gpu/kernels
PTX_SRC := $(wildcard $(PTX_DIR)/*.cu) $(PTX_DIR)/common.cuh
PTX_FLAGS := -arch=$(PTX_ARCH) --ptx -std=c++14

.PHONY: ptx ptx-check

ptx: $(PTX_DIR)/kernels.ptx ## regenerate gpu/kernels/kernels.ptx from the .cu sources (needs nvcc)

$(PTX_DIR)/kernels.ptx: $(PTX_SRC)
	$(NVCC) $(PTX_FLAGS) -o $@ $(PTX_DIR)/kernels.cu

ptx-check: ## the committed PTX matches the .cu sources and assembles for sm_70..sm_90 (needs nvcc)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(NVCC) $(PTX_FLAGS) -o "$$tmp/kernels.ptx" $(PTX_DIR)/kernels.cu && \
	if ! diff -u $(PTX_DIR)/kernels.ptx "$$tmp/kernels.ptx" > "$$tmp/diff"; then \
		head -40 "$$tmp/diff"; \
		echo "ptx-check: $(PTX_DIR)/kernels.ptx is stale: run 'make ptx' and commit it"; exit 1; \
	fi && \
	for a in $(PTX_SASS_ARCHS); do \
		$(PTXAS) -arch=$$a -o /dev/null $(PTX_DIR)/kernels.ptx || { echo "ptx-check: ptxas failed for $$a"; exit 1; }; \
	done && \
	echo "ptx-check: kernels.ptx matches the sources and assembles for $(PTX_SASS_ARCHS)"
