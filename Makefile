# captioner: build, test, benchmark. `make help` lists the targets.
GO        ?= go
BIN       ?= bin
# Link the CUDA build against the toolkit's stub libcuda when no driver is installed;
# at run time the real driver's libcuda.so.1 is used.
CUDA_STUBS ?= /usr/lib/x86_64-linux-gnu/stubs
# Beside a checkout that has the shared assets folder next to it (as in CI), use it;
# elsewhere the binary downloads the public files into its cache (`captioner setup`).
ifneq ($(wildcard ../shared/models/mobilenet_v2),)
export CAPTIONER_ASSETS ?= $(abspath ../shared)
endif
# The assets folder as make's wildcard reads it: ../shared where the lines above
# found it (its absolute path would split at a space), else CAPTIONER_ASSETS.
ASSETS_REF = $(if $(filter file,$(origin CAPTIONER_ASSETS)),../shared,$(CAPTIONER_ASSETS))
# make caption's default: the sample photos of the shared assets folder.
IMAGES ?= $(if $(ASSETS_REF),$(wildcard $(ASSETS_REF)/samples/*.jpg $(ASSETS_REF)/samples/*.bmp))

.PHONY: help c-fallback-check deps-build deps-test deps-bench build setup caption build-cuda test test-go test-race test-purego test-cuda-build test-deploy gpu-bundle gpu-bundle-check bench bench-attention bench-server soak soak-reload fuzz-short vet fmt-check images image-local

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s '	'

include gpu/kernels/ptx.mk

deps-build:
	scripts/install-deps.sh build

deps-test:
	scripts/install-deps.sh test

deps-bench:
	scripts/install-deps.sh bench

build: deps-build ## the CPU binary bin/captioner (hands over to bin/captioner-cuda when a GPU is present)
	$(GO) build -o $(BIN)/captioner ./cmd/captioner

# make install puts the binary in $(PREFIX)/bin and the shipped models in
# $(PREFIX)/share/captioner/models, where the binary looks for them (internal/locate);
# DESTDIR stages the tree for a package.
PREFIX  ?= /usr/local
DESTDIR ?=
MODELS  := models/flickr8k-attention models/flickr8k-merge-lstm
.PHONY: install
install: build ## install bin/captioner (and bin/captioner-cuda if built) and the shipped models under $(DESTDIR)$(PREFIX)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BIN)/captioner $(DESTDIR)$(PREFIX)/bin/captioner
	if [ -f $(BIN)/captioner-cuda ]; then install -m 755 $(BIN)/captioner-cuda $(DESTDIR)$(PREFIX)/bin/captioner-cuda; fi
	for m in $(MODELS); do \
		install -d $(DESTDIR)$(PREFIX)/share/captioner/$$m && install -m 644 $$m/* $(DESTDIR)$(PREFIX)/share/captioner/$$m/ || exit 1; \
	done

setup: build ## download and verify the public assets (encoder weights; add ARGS=--dataset for Flickr8k)
	$(BIN)/captioner setup $(ARGS)

caption: build ## caption IMAGES (default: the sample photos) with the shipped model
	@test -n "$(strip $(IMAGES))" || { echo 'caption: no photos to caption: name them (make caption IMAGES="a.jpg b.png"); the default, the sample photos, lies in the shared assets folder ($(if $(CAPTIONER_ASSETS),$(CAPTIONER_ASSETS)/samples has none,set CAPTIONER_ASSETS to it or put it at ../shared))'; exit 1; }
	$(BIN)/captioner caption $(IMAGES)

build-cuda: ## the CUDA binary bin/captioner-cuda
	CGO_LDFLAGS="-L$(CUDA_STUBS)" $(GO) build -tags cuda -o $(BIN)/captioner-cuda ./cmd/captioner

test: deps-test fmt-check vet c-fallback-check test-go test-race test-purego test-cuda-build test-deploy gpu-bundle-check ptx-check fuzz-short ## everything CI runs

fmt-check: ## fail, listing them, if any Go files are not gofmt'd
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "not gofmt'd (run gofmt -w):"; echo "$$files"; exit 1; fi

vet: ## go vet, the product and the deployment checks' module
	$(GO) vet ./...
	cd deploy/check && $(GO) vet ./...

# The cgo sources compile their AVX-512 kernels only with GCC on x86-64; elsewhere
# (clang, arm64, GCC before 10) they take portable branches, which no build here
# compiles: __clang__ makes GCC check those branches' syntax.
c-fallback-check: ## the C sources' portable branches (clang, non-x86) compile
	for f in gpu/cpu/*.c imgproc/*.c; do $(CC) -fsyntax-only -std=gnu11 -D__clang__=1 $$f || exit 1; done

# Without the shared assets the tests that need them skip, and go test prints a
# passing package's skips only with -v: say so before and after the run.
ASSETS_NOTE = $(if $(and $(ASSETS_REF),$(wildcard $(ASSETS_REF)/models/mobilenet_v2)),true,echo "test-go: no shared assets folder (set CAPTIONER_ASSETS, or put it at ../shared): the tests that need the encoder weights, Flickr8k or the sample photos are skipped; CI runs them all")
test-go: ## unit, integration and golden tests
	@$(ASSETS_NOTE)
	$(GO) test -count=1 ./...
	@$(ASSETS_NOTE)

test-race: ## the race detector over the concurrent parts: the server and its batching queue, the pipeline, progress
	$(GO) test -race -count=1 ./server/... ./pipeline/... ./progress/...

test-purego: ## the pure-Go fallback (no cgo, or the purecpu tag: gonum GEMM, image/jpeg; purecpu,staticjpeg: libjpeg-turbo linked statically, as in the GPU bundle) builds and passes the kernel and image suites
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./gpu/... ./imgproc
	$(GO) test -count=1 -tags purecpu ./gpu/cpu ./imgproc
	$(GO) test -count=1 -tags purecpu,staticjpeg ./imgproc

test-cuda-build: ## the CUDA path compiles (packages and test binaries), linked against the stub libcuda
	CGO_LDFLAGS="-L$(CUDA_STUBS)" $(GO) build -tags cuda ./...
	CGO_LDFLAGS="-L$(CUDA_STUBS)" $(GO) vet -tags cuda ./gpu/... ./cmd/...
	CGO_LDFLAGS="-L$(CUDA_STUBS)" $(GO) test -tags cuda -c -o /dev/null ./gpu/cuda
	CGO_LDFLAGS="-L$(CUDA_STUBS)" $(GO) test -tags cuda -c -o /dev/null ./gpu/selector

test-deploy: ## the container images, Compose file and Kubernetes manifests against the configuration (own module: deploy/check)
	cd deploy/check && $(GO) test -count=1 ./...

# The GPU bundle: everything a bare x86-64 Linux machine with an NVIDIA driver and
# some cuBLAS needs to run scripts/gpu-check.sh (see gpu/README.md). Built with the
# purecpu tag (gonum GEMM, no oneDNN) and the staticjpeg tag (libjpeg-turbo linked
# from its static archive), so its binaries need only libc, libm, libcuda.so.1 and
# the dynamic loader itself (ld-linux, for libjpeg-turbo's thread-local error
# buffer); gzipped so the folder stays small enough to carry.
# GPU_MODELS are the caption model folders it holds: the attention model (the
# default) when the checkout has it, and the merge model. `make gpu-bundle
# GPU_MODELS=` builds a lean bundle without models, for a run from the root of a
# checkout, whose models/ gpu-check.sh then uses (the device tool carries the
# working tree and the bundle together, 64 MiB at most).
GPU_BUNDLE ?= gpu-bundle
GPU_MODELS ?= $(wildcard models/flickr8k-attention) models/flickr8k-merge-lstm
GPU_BUNDLE_MAX_MB = 60
GPU_BUILD = CGO_LDFLAGS="-L$(CUDA_STUBS)" $(GO)
GPU_FLAGS = -tags cuda,purecpu,staticjpeg -trimpath -ldflags="-s -w"
GPU_LIBS_OK = libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 ld-linux-x86-64.so.2 libcuda.so.1
GPU_PHOTOS = $(wordlist 1,8,$(sort $(wildcard $(CAPTIONER_ASSETS)/samples/flickr8k_fullres/*.jpg)))
MODEL_FILES = config.json decoder.safetensors vocab.json
MODEL_DOCS = scores.json MODEL.md
ENCODER_FILES = mobilenet_v2_1.0_224_quant.tflite imagenet_labels.txt LICENSE

gpu-bundle: ## the GPU bundle folder gpu-bundle/ with GPU_MODELS (<= 60 MB; GPU_MODELS= : lean, no models; needs CAPTIONER_ASSETS for the encoder weights and photos)
	@test -n "$(GPU_PHOTOS)" || { echo "gpu-bundle: no photos: set CAPTIONER_ASSETS to the shared assets folder"; exit 1; }
	@for m in $(GPU_MODELS); do for f in $(MODEL_FILES); do \
		test -f $$m/$$f || { echo "gpu-bundle: $$m has no $$f: GPU_MODELS lists caption model folders (GPU_MODELS= for none)"; exit 1; }; \
	done; done
	rm -rf $(GPU_BUNDLE)
	mkdir -p $(GPU_BUNDLE)/bin $(GPU_BUNDLE)/photos $(GPU_BUNDLE)/assets/models/mobilenet_v2
	$(GPU_BUILD) build $(GPU_FLAGS) -o $(GPU_BUNDLE)/bin/captioner-cuda ./cmd/captioner
	$(GPU_BUILD) build $(GPU_FLAGS) -o $(GPU_BUNDLE)/bin/loadgen ./cmd/loadgen
	$(GPU_BUILD) test $(GPU_FLAGS) -c -o $(GPU_BUNDLE)/bin/cuda.test ./gpu/cuda
	$(GPU_BUILD) test $(GPU_FLAGS) -c -o $(GPU_BUNDLE)/bin/selector.test ./gpu/selector
	$(GPU_BUILD) test $(GPU_FLAGS) -c -o $(GPU_BUNDLE)/bin/gpucheck.test ./gpu/gpucheck
	@for b in $(GPU_BUNDLE)/bin/*; do \
		for lib in $$(readelf -d $$b | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do \
			case " $(GPU_LIBS_OK) " in *" $$lib "*) ;; *) echo "gpu-bundle: $$b needs $$lib, which a bare machine lacks"; exit 1 ;; esac; \
		done; \
	done
	gzip -6 $(GPU_BUNDLE)/bin/*
	@for m in $(GPU_MODELS); do \
		d=$(GPU_BUNDLE)/models/$$(basename $$m); mkdir -p $$d && cp $(addprefix $$m/,$(MODEL_FILES)) $$d/ || exit 1; \
		for f in $(MODEL_DOCS); do if [ -f $$m/$$f ]; then cp $$m/$$f $$d/ || exit 1; fi; done; \
		echo "gpu-bundle: model $$m"; \
	done
	cp $(addprefix $(CAPTIONER_ASSETS)/models/mobilenet_v2/,$(ENCODER_FILES)) $(GPU_BUNDLE)/assets/models/mobilenet_v2/
	cp $(GPU_PHOTOS) $(GPU_BUNDLE)/photos/
	cp scripts/gpu-check.sh scripts/gpu-peer.py scripts/gpu-report.py $(GPU_BUNDLE)/
	@bytes=$$(du -sb $(GPU_BUNDLE) | cut -f1); \
	echo "gpu-bundle: $(GPU_BUNDLE)/ is $$((bytes / 1000000)) MB ($$bytes bytes), models: $(or $(notdir $(GPU_MODELS)),none (lean: gpu-check.sh uses the models/ beside the bundle))"; \
	test $$bytes -le $$(($(GPU_BUNDLE_MAX_MB) * 1000000)) || { echo "gpu-bundle: over $(GPU_BUNDLE_MAX_MB) MB: fewer GPU_MODELS, or GPU_MODELS= for a lean bundle"; exit 1; }

gpu-bundle-check: ## build the bundle and run its gpu-check.sh against the stand-in driver and the CUDA emulator
ifeq ($(GPU_PHOTOS),)
	@echo "gpu-bundle-check: skipped: the bundle needs the shared assets (CAPTIONER_ASSETS, or ../shared beside the checkout)"
else
	$(MAKE) gpu-bundle
	rm -rf $(GPU_BUNDLE).emu && mkdir -p $(GPU_BUNDLE).emu
	$(GO) run ./gpu/cuda/fakedriver/cmd/fakedriver $(GPU_BUNDLE).emu/driver
	bash $(GPU_BUNDLE)/gpu-check.sh --emulated $(GPU_BUNDLE).emu/driver --out $(GPU_BUNDLE).emu/results
	cat $(GPU_BUNDLE).emu/results/results.md
	@! grep -n "report: could not write" $(GPU_BUNDLE).emu/results/check.log || { echo "gpu-bundle-check: gpu-report.py failed (its traceback is in $(GPU_BUNDLE).emu/results/check.log)"; exit 1; }
endif

# Fuzz budgets are counts of executions, not durations: with a duration, Go 1.26's fuzz
# coordinator can report its own deadline as a failure ("context deadline exceeded", no
# crasher; golang/go#75804, fixed in Go 1.27), and it did in CI on a loaded machine. The
# counts take about 10 s each on a CI machine: the image parsers run ~10,000 inputs/s
# there, the upload path through the server ~700.
FUZZ_PARSER_EXECS ?= 60000x
FUZZ_UPLOAD_EXECS ?= 5000x
fuzz-short: ## a short coverage-guided fuzz of every untrusted-input parser (seed corpora in testdata/fuzz)
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZ_PARSER_EXECS) ./imgproc
	$(GO) test -run '^$$' -fuzz '^FuzzScaledDecode$$' -fuzztime $(FUZZ_PARSER_EXECS) ./imgproc
	$(GO) test -run '^$$' -fuzz '^FuzzReadHeader$$' -fuzztime $(FUZZ_PARSER_EXECS) ./imgproc
	$(GO) test -run '^$$' -fuzz '^FuzzRawUpload$$' -fuzztime $(FUZZ_UPLOAD_EXECS) ./server
	$(GO) test -run '^$$' -fuzz '^FuzzMultipartUpload$$' -fuzztime $(FUZZ_UPLOAD_EXECS) ./server
	$(GO) test -run '^$$' -fuzz '^FuzzLoadCSV$$' -fuzztime $(FUZZ_PARSER_EXECS) ./text

ROUNDS ?= 3
bench: deps-bench ## one table: encoder, decoder and training against the PyTorch reference at its best, ROUNDS rounds of back-to-back pairs, ranges and ratios
	/usr/bin/python3 scripts/bench.py --rounds $(ROUNDS)

bench-attention: deps-bench ## the attention decoder against PyTorch's, alternating for 3 rounds (issue 12's 1.5x target)
	scripts/bench-attention.sh 3

bench-server: deps-bench ## captioner serve vs the Flask reference server and its --best variant under cmd/loadgen, same run
	scripts/bench-server.sh

SOAK_DURATION ?= 2m
SOAK_BASELINE ?= 30s
soak: ## 16 ordinary clients alone, then for SOAK_DURATION beside 64 slow-body and 4 decode-bomb clients: throughput, 5xx, RSS (minutes, not in CI)
	CAPTIONER_SOAK=1 CAPTIONER_SOAK_DURATION=$(SOAK_DURATION) CAPTIONER_SOAK_BASELINE=$(SOAK_BASELINE) $(GO) test -count=1 -timeout 30m -run '^TestSoakUnderAttack$$' -v ./server

soak-reload: ## 100 model reloads under the real model: resident memory must stay within 20% (minutes, not in CI)
	CAPTIONER_SOAK=1 $(GO) test -count=1 -timeout 30m -run '^TestReloadsKeepRSSFlat$$' -v ./server

images: ## container images captioner:cpu and captioner:cuda (needs a Docker engine; see docs/deploy.md)
	docker build -f docker/Dockerfile -t captioner:cpu .
	docker build -f docker/Dockerfile.cuda -t captioner:cuda .

image-local: ## the CPU image with buildah from a debootstrap base, no Docker engine (root, ~20 min)
	docker/build-local.sh $(BIN)/captioner-cpu.tar
