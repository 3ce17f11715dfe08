#!/usr/bin/env bash
# gpu-check.sh: the GPU machine's one command. It lives inside the GPU bundle
# (`make gpu-bundle`, see gpu/README.md) and needs only bash, coreutils, gzip or
# python3, the NVIDIA driver and a cuBLAS 11.8-13 somewhere (a Python
# environment's nvidia-cublas wheel is found by itself):
#
#   bash gpu-bundle/gpu-check.sh [--models DIR] [--out DIR]
#   bash gpu-bundle/gpu-check.sh --list-models  # the models it would check, the default first
#   bash gpu-bundle/gpu-check.sh --emulated DIR # CI: stand-in driver in DIR, quick sizes
#
# Caption models: every folder of the bundle's models/, else (a lean bundle,
# `make gpu-bundle GPU_MODELS=`) of the models/ beside the bundle folder, i.e.
# the checkout's when run from its root; --models DIR names another. The default
# model is the attention model when there is one (the shipped default).
#
# Steps, each under its own time limit so that one failure cannot eat the 7.5
# minutes' budget: device information, the kernel suite on the GPU, device
# selection, encoder+decoder parity with the CPU for every model, encoder
# benchmarks, decoder and training benchmarks per model, `serve` of the default
# model under loadgen at 1, 16, 64 and 256 clients, the PyTorch peer
# (gpu-peer.py) of the default model; then, when the budget allows, every model
# served at once, the other models' peers, parity again with the GPU's GEMMs
# in TF32 (cuda.tf32; measured, not judged), the encoder's time kernel by
# kernel, and the kernel suite under compute-sanitizer's memcheck and
# racecheck. Results: results.json, results.md
# and check.log in --out (default: $OUT when set, else ./gpu-check-results).
# Both result files are rewritten after every step, so a run cut short still
# leaves what it measured.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${OUT:-$PWD/gpu-check-results}
emulated=""
models_dir=""
list=""
while (($#)); do
	case $1 in
	--models) models_dir=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--emulated) emulated=$(cd "$2" && pwd); shift 2 ;;
	--list-models) list=1; shift ;;
	-h | --help) sed -n '2,28p' "$0"; exit 0 ;;
	*) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

# The models, one "name<TAB>arch<TAB>folder" line each, the default first.
models=$(python3 - "$here" "$models_dir" <<-'EOF'
import json, os, sys
here, given = sys.argv[1], sys.argv[2]
roots = [given] if given else [os.path.join(here, "models"), os.path.join(os.path.dirname(here), "models")]
for root in roots:
    found = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        d = os.path.join(os.path.abspath(root), name)
        if os.path.isfile(os.path.join(d, "config.json")) and os.path.isfile(os.path.join(d, "decoder.safetensors")):
            with open(os.path.join(d, "config.json")) as f:
                found.append((name, json.load(f).get("arch") or "merge", d))
    if found:
        found.sort(key=lambda m: m[1] != "attention")  # stable: the first attention model, then by name
        print("\n".join("\t".join(m) for m in found))
        sys.exit(0)
where = " and ".join(roots)
sys.exit(f"gpu-check: no caption model found: looked for folders holding config.json and decoder.safetensors in {where}; "
         "run from the root of a checkout that has models/ (a bundle built with GPU_MODELS= has none of its own) or pass --models DIR")
EOF
) || exit 1
mapfile -t names < <(cut -f1 <<<"$models")
mapfile -t archs < <(cut -f2 <<<"$models")
mapfile -t dirs < <(cut -f3 <<<"$models")
if [[ -n $list ]]; then
	echo "$models"
	exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
log=$out/check.log
: >"$log"
say() { echo "gpu-check: $*" | tee -a "$log" >&2; }
echo "$models" >"$work/models.tsv"
say "models (the default first): ${names[*]}"

# The binaries travel gzipped (the bundle stays small enough to carry).
mkdir -p "$work/bin"
for f in "$here"/bin/*.gz; do
	b=$work/bin/$(basename "$f" .gz)
	if command -v gzip >/dev/null; then gzip -dc "$f" >"$b"; else python3 -c 'import gzip,shutil,sys; shutil.copyfileobj(gzip.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$b"; fi
	chmod +x "$b"
done
bin=$work/bin

export CAPTIONER_ASSETS=$here/assets CAPTIONER_CACHE=$work/cache
photos=$here/photos
if [[ -n $emulated ]]; then
	export LD_LIBRARY_PATH=$emulated${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	mode=emulated
	scale() { echo "$2"; } # the emulator runs the quick sizes
else
	mode=gpu
	scale() { echo "$1"; }
	# The Go binaries are built on Debian 12 and need glibc 2.34 or newer
	# (gpu/README.md): say so up front, not once per failing step.
	glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
	if [[ -n $glibc ]] && ! printf '2.34\n%s\n' "$glibc" | sort -V -C; then
		echo "gpu-check: this machine's glibc is $glibc, and the bundle's binaries need 2.34 or newer: the Go steps will not start (\"GLIBC_2.34 not found\"); build the bundle where glibc is at most $glibc, or run this in a container with a newer one" >&2
	fi
	# The driver's libcuda.so.1, where containers mount it outside the loader's
	# cache. ldconfig by path: a user's PATH may lack /sbin. Not the toolkit's
	# compat/ libcuda: older than the kernel module, cuInit fails with 803.
	if ! { /sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null; } | grep -q 'libcuda\.so\.1 '; then
		for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/wsl/lib /usr/lib64; do
			[[ -e $d/libcuda.so.1 ]] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} && break
		done
	fi
	# cuBLAS: a Python environment's nvidia-cublas wheel when the system has none.
	cublas=$(python3 - 2>/dev/null <<-'EOF'
	import glob, os, site, sys
	roots = set(site.getsitepackages() + [site.getusersitepackages()] + [p for p in sys.path if p.endswith("-packages")])
	for r in sorted(roots):
	    for lib in glob.glob(os.path.join(r, "nvidia", "**", "libcublas.so.1[123]*"), recursive=True):
	        print(os.path.dirname(lib))
	EOF
	)
	if [[ -z $cublas ]]; then
		cublas=$(timeout 60 find / -xdev \( -path /proc -o -path /sys \) -prune -o -name 'libcublas.so.1[123]*' -print 2>/dev/null | xargs -r -n1 dirname)
	fi
	CAPTIONER_CUDA_LIBRARY_PATH=$(printf '%s\n' $cublas | awk '!seen[$0]++' | paste -sd: -)
	export CAPTIONER_CUDA_LIBRARY_PATH
	say "cuBLAS folders found: ${CAPTIONER_CUDA_LIBRARY_PATH:-none (captioner-cuda will say where it looked)}"
fi

# Step results: one line of JSON each, in $work/steps.jsonl. Every step's limit
# is cut to what is left of the whole run's budget (7.5 minutes); a step with
# under 5 s left is skipped, which fails the run. An optional step runs only
# when its whole limit fits; skipped, or out of time, it does not fail the run.
: >"$work/steps.jsonl"
deadline=$(($(date +%s) + ${GPU_CHECK_BUDGET:-450}))
left() { echo $((deadline - $(date +%s))); }
skipped() { # skipped NAME OPTIONAL(true|false) WHY
	python3 -c 'import json, sys; print(json.dumps({"step": sys.argv[1], "status": "skipped", "optional": sys.argv[2] == "true", "why": sys.argv[3], "rc": -1, "seconds": 0}))' "$@" >>"$work/steps.jsonl"
	say "step $1: skipped ($3)"
	report
}
# step NAME SECONDS COMMAND...: run with a time limit, log, record. With
# optional=true in its environment, a step that runs out of time does not fail
# the run (one that fails still does).
step() {
	local name=$1 limit=$2 t0 rc dt status=ok
	shift 2
	(($(left) < limit)) && limit=$(left)
	if ((limit < 5)); then
		skipped "$name" false "the run's time budget is spent"
		return 0
	fi
	say "step $name (limit ${limit}s): $*"
	t0=$(date +%s.%N)
	timeout --kill-after=5 "$limit" "$@" >"$work/$name.out" 2>&1
	rc=$?
	cat "$work/$name.out" >>"$log"
	dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
	((rc == 124 || rc == 137)) && status=timeout
	((rc != 0 && rc != 124 && rc != 137)) && status=failed
	echo "{\"step\":\"$name\",\"status\":\"$status\",\"optional\":${optional:-false},\"rc\":$rc,\"seconds\":$dt}" >>"$work/steps.jsonl"
	say "step $name: $status (rc $rc, ${dt}s)"
	report
	return 0
}
fits() { # fits NAME SECONDS: whether an optional step of that limit fits the budget
	(($(left) >= $2)) && return 0
	skipped "$1" true "optional: needs ${2}s, $(left)s of the budget left"
	return 1
}
report() { python3 "$here/gpu-report.py" "$work" "$out" "$mode" 2>>"$log" || say "report: could not write results (see check.log)"; }

# serve_check NAME START-LIMIT LIMIT CLIENTS DURATION FOLDER...: captioner-cuda
# serve with the GPU configuration (configs/gpu.yaml's batching), the first
# folder's model the default and the others beside it (--models), under
# loadgen: one target per model, each request naming its model.
port=18089
serve_check() {
	local name=$1 start=$2 limit=$3 clients=$4 duration=$5 pid
	shift 5
	local extra targets=() d
	extra=$(IFS=,; echo "${*:2}")
	port=$((port + 1))
	CAPTIONER_SERVER_MAX_BATCH=$(scale 64 8) CAPTIONER_SERVER_QUEUE_SIZE=1024 CAPTIONER_SERVER_MAX_QUEUE_DELAY=5ms \
		CAPTIONER_DECODE_BATCH_SIZE=$(scale 64 8) CAPTIONER_SERVER_REQUEST_TIMEOUT=30s \
		"$bin/captioner-cuda" serve --device cuda --model "$1" ${extra:+--models "$extra"} --addr 127.0.0.1:$port >"$work/$name.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for d in "$@"; do
		targets+=(-target "$(basename "$d")=http://127.0.0.1:$port?model=$(basename "$d")" -pid "$(basename "$d")=$pid")
	done
	step "$name-start" "$start" python3 - "http://127.0.0.1:$port/readyz" <<-'EOF'
	import sys, time, urllib.request
	while True:  # until the server has loaded and warmed up (the step's limit ends it)
	    try:
	        if urllib.request.urlopen(sys.argv[1], timeout=5).status == 200:
	            break
	    except OSError:
	        pass
	    time.sleep(0.5)
	EOF
	# The GPU's utilization while loadgen runs, four samples a second with
	# their Unix times (the report lines them up with the levels): near 100%,
	# the GPU is the bound; well below, the host is.
	local sampler=""
	if [[ -z $emulated ]] && command -v nvidia-smi >/dev/null; then
		while :; do
			echo "$(date +%s.%N) $(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>/dev/null | head -n 1)"
			sleep 0.25
		done >"$work/$name-util.txt" &
		sampler=$!
		pids+=("$sampler")
	fi
	step "$name" "$limit" "$bin/loadgen" "${targets[@]}" -photos "$photos" -clients "$clients" -duration "$duration" \
		-max-requests "$(scale 20000 40)" -warmup "$(scale 16 1)" -overload 0 -json "$work/$name.json"
	[[ -n $sampler ]] && kill "$sampler" 2>/dev/null
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# The server logs every request: keep the start and the end (the log must come
	# back from the device machine, whose files are limited to 16 MiB).
	{ head -n 40 "$work/$name.log"; echo "... ($(wc -l <"$work/$name.log") lines in all) ..."; tail -n 60 "$work/$name.log"; } >>"$log"
}

step device 20 bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi: not available"; uname -srm; nproc'
step suite "$(scale 60 120)" "$bin/cuda.test" -test.run '^(TestKernels|TestTF32)$' -test.v -test.count=1
step selector 20 "$bin/selector.test" -test.v -test.count=1
step parity "$(scale 75 120)" "$bin/gpucheck.test" -test.run '^TestParity$' -test.v \
	-check.model "${dirs[0]}" -check.models "$(IFS=,; echo "${dirs[*]:1}")" \
	-check.photos "$photos" -check.max-photos "$(scale 0 2)" -check.out "$work/parity.json"
step bench-encoder "$(scale 110 60)" "$bin/gpucheck.test" -test.run '^$' -test.bench '^BenchmarkEncode$' \
	-test.benchtime "$(scale 2s 1x)" -check.batches "$(scale 1,8,64,256 1)" -check.model "${dirs[0]}"
for i in "${!dirs[@]}"; do
	step "bench-decoder-${names[i]}" "$(scale 45 90)" "$bin/gpucheck.test" -test.run '^$' \
		-test.bench "^BenchmarkDecode\$/.*/.*/batch=$(scale '.*' 1)\$" -test.benchtime "$(scale 2s 1x)" -check.model "${dirs[i]}"
	step "bench-train-${names[i]}" "$(scale 30 60)" "$bin/gpucheck.test" -test.run '^$' -test.bench '^BenchmarkTrain$' \
		-test.benchtime "$(scale 3s 1x)" -check.model "${dirs[i]}" -check.train-batch "$(scale 64 2)"
done
serve_check serve "$(scale 30 90)" "$(scale 70 90)" "$(scale 1,16,64,256 1,16)" "$(scale 8s 3s)" "${dirs[0]}"

# The peer needs the first python3 with PyTorch (on the GPU machine, the one on
# the PATH); in CI it runs only where PyTorch is installed, on the CPU.
py=""
for p in python3 /usr/bin/python3; do
	if "$p" -c 'import torch' 2>/dev/null; then py=$p && break; fi
done
peer() { # peer NAME LIMIT FOLDER [--no-encoder]
	local name=$1 limit=$2 dir=$3
	shift 3
	if [[ -z $emulated ]]; then
		step "$name" "$limit" "${py:-python3}" "$here/gpu-peer.py" --model "$dir" --json "$work/$name.json" "$@"
	elif [[ -n $py ]]; then
		step "$name" 60 "$py" "$here/gpu-peer.py" --model "$dir" --json "$work/$name.json" --quick "$@"
	fi
}
peer "peer-${names[0]}" 90 "${dirs[0]}"

# With the budget left: every model served at once, and the other models' peers.
if ((${#dirs[@]} > 1)); then
	start=$(scale 30 90) limit=$(scale 50 60)
	fits serve-all $((start + limit)) &&
		optional=true serve_check serve-all "$start" "$limit" "$(scale 16,256 1)" "$(scale 5s 2s)" "${dirs[@]}"
	for i in "${!dirs[@]}"; do
		((i == 0)) && continue
		fits "peer-${names[i]}" 45 && optional=true peer "peer-${names[i]}" 45 "${dirs[i]}" --no-encoder
	done
fi
# With the budget left: how far TF32 tensor-core GEMMs (cuda.tf32) move the
# features and captions; measured, not judged.
limit=$(scale 75 60)
fits parity-tf32 "$limit" && optional=true step parity-tf32 "$limit" "$bin/gpucheck.test" -test.run '^TestParity$' -test.v -check.tf32 \
	-check.model "${dirs[0]}" -check.models "$(IFS=,; echo "${dirs[*]:1}")" \
	-check.photos "$photos" -check.max-photos "$(scale 0 2)" -check.out "$work/parity-tf32.json"
# With the budget left: where the encoder's time goes, kernel by kernel, each
# call timed alone (gpu/gpucheck TestEncoderProfile), for the next optimisation.
limit=$(scale 60 90)
fits profile-encoder "$limit" && optional=true step profile-encoder "$limit" "$bin/gpucheck.test" -test.run '^TestEncoderProfile$' -test.v \
	-check.profile-batch "$(scale 64 2)" -check.profile-passes "$(scale 5 1)" -check.profile-out "$work/profile-encoder.json"
# With the budget left: the kernel suite under the CUDA toolkit's
# compute-sanitizer, which sees what emulation cannot: accesses out of bounds
# on the GPU itself (memcheck) and shared-memory races between threads that
# really run at once (racecheck).
# The PATH's, else the toolkit's at /usr/local/cuda, else the newest versioned one.
sanitizer=$(command -v compute-sanitizer || { ls -d /usr/local/cuda/bin/compute-sanitizer; ls -d /usr/local/cuda-*/bin/compute-sanitizer | sort -rV; } 2>/dev/null | head -n 1)
for tool in memcheck racecheck; do
	if [[ -n $emulated || -z $sanitizer ]]; then
		skipped "sanitize-$tool" true "optional: no compute-sanitizer${emulated:+ for the emulator}"
	elif fits "sanitize-$tool" 90; then
		optional=true step "sanitize-$tool" 90 "$sanitizer" --tool "$tool" --error-exitcode 1 --print-limit 20 \
			"$bin/cuda.test" -test.run '^TestKernels$' -test.count=1
	fi
done
report
say "results in $out (results.json, results.md, check.log)"
python3 - "$work/steps.jsonl" <<-'EOF'
import json, sys
bad = [s for s in map(json.loads, open(sys.argv[1])) if s["status"] == "failed" or s["status"] != "ok" and not s.get("optional")]
sys.exit(1 if bad else 0)
EOF
