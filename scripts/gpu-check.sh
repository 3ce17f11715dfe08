#!/usr/bin/env bash
# gpu-check.sh: the GPU machine's one command. It lives inside the GPU bundle
# (`make gpu-bundle`, see gpu/README.md) and needs only bash, coreutils, gzip or
# python3, the NVIDIA driver and a cuBLAS 11.8-13 somewhere (a Python
# environment's nvidia-cublas wheel is found by itself):
#
#   bash gpu-bundle/gpu-check.sh [--arch merge|attention] [--out DIR]
#   bash gpu-bundle/gpu-check.sh --emulated DIR   # CI: stand-in driver in DIR, quick sizes
#
# Steps, each under its own time limit so that one failure cannot eat the budget
# (about 7 minutes in all on a GPU): device information, the kernel suite on the
# GPU, device selection, encoder+decoder parity with the CPU on the bundle's
# photos, encoder / decoder / training benchmarks, `serve` under loadgen at 1,
# 16, 64 and 256 clients, and the PyTorch peer (gpu-peer.py) on the same GPU.
# Results: results.json, results.md and check.log in --out (default: $OUT when
# set, else ./gpu-check-results). Both result files are rewritten after every
# step, so a run cut short still leaves what it measured.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
arch=merge
out=${OUT:-$PWD/gpu-check-results}
emulated=""
while (($#)); do
	case $1 in
	--arch) arch=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--emulated) emulated=$(cd "$2" && pwd); shift 2 ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
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

# The binaries travel gzipped (the bundle stays small enough to carry).
mkdir -p "$work/bin"
for f in "$here"/bin/*.gz; do
	b=$work/bin/$(basename "$f" .gz)
	if command -v gzip >/dev/null; then gzip -dc "$f" >"$b"; else python3 -c 'import gzip,shutil,sys; shutil.copyfileobj(gzip.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$b"; fi
	chmod +x "$b"
done
bin=$work/bin

export CAPTIONER_ASSETS=$here/assets CAPTIONER_CACHE=$work/cache
model=$here/models/flickr8k-merge-lstm
photos=$here/photos
if [[ -n $emulated ]]; then
	export LD_LIBRARY_PATH=$emulated${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	mode=emulated
	scale() { echo "$2"; } # the emulator runs the quick sizes
else
	mode=gpu
	scale() { echo "$1"; }
	# The driver's libcuda.so.1, where containers mount it outside the loader's cache.
	if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
		for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/wsl/lib /usr/lib64 /usr/local/cuda/compat; do
			[[ -e $d/libcuda.so.1 ]] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} && break
		done
	fi
	# cuBLAS: a Python environment's nvidia-cublas wheel when the system has none.
	dirs=$(python3 - 2>/dev/null <<-'EOF'
	import glob, os, site, sys
	roots = set(site.getsitepackages() + [site.getusersitepackages()] + [p for p in sys.path if p.endswith("-packages")])
	for r in sorted(roots):
	    for lib in glob.glob(os.path.join(r, "nvidia", "**", "libcublas.so.1[123]*"), recursive=True):
	        print(os.path.dirname(lib))
	EOF
	)
	if [[ -z $dirs ]]; then
		dirs=$(timeout 60 find / -xdev \( -path /proc -o -path /sys \) -prune -o -name 'libcublas.so.1[123]*' -print 2>/dev/null | xargs -r -n1 dirname)
	fi
	CAPTIONER_CUDA_LIBRARY_PATH=$(printf '%s\n' $dirs | awk '!seen[$0]++' | paste -sd: -)
	export CAPTIONER_CUDA_LIBRARY_PATH
	say "cuBLAS folders found: ${CAPTIONER_CUDA_LIBRARY_PATH:-none (captioner-cuda will say where it looked)}"
fi

# Step results: one line of JSON each, in $work/steps.jsonl. Every step's limit
# is cut to what is left of the whole run's budget (7.5 minutes on a GPU); a
# step with under 5 s left is skipped.
: >"$work/steps.jsonl"
deadline=$(($(date +%s) + ${GPU_CHECK_BUDGET:-450}))
step() { # step NAME SECONDS COMMAND...: run with a time limit, log, record
	local name=$1 limit=$2 t0 rc left
	shift 2
	left=$((deadline - $(date +%s)))
	((limit > left)) && limit=$left
	if ((limit < 5)); then
		echo "{\"step\":\"$name\",\"status\":\"skipped\",\"rc\":-1,\"seconds\":0}" >>"$work/steps.jsonl"
		say "step $name: skipped (the run's time budget is spent)"
		report
		return 0
	fi
	say "step $name (limit ${limit}s): $*"
	t0=$(date +%s.%N)
	timeout --kill-after=5 "$limit" "$@" >"$work/$name.out" 2>&1
	rc=$?
	cat "$work/$name.out" >>"$log"
	local dt
	dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
	local status=ok
	((rc == 124 || rc == 137)) && status=timeout
	((rc != 0 && rc != 124 && rc != 137)) && status=failed
	echo "{\"step\":\"$name\",\"status\":\"$status\",\"rc\":$rc,\"seconds\":$dt}" >>"$work/steps.jsonl"
	say "step $name: $status (rc $rc, ${dt}s)"
	report
	return 0
}
report() { python3 "$here/gpu-report.py" "$work" "$out" "$mode" "$arch" 2>>"$log" || say "report: could not write results (see check.log)"; }

step device 30 bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi: not available"; uname -srm; nproc'
step suite "$(scale 90 120)" "$bin/cuda.test" -test.run '^TestKernels$' -test.v -test.count=1
step selector 30 "$bin/selector.test" -test.v -test.count=1
step parity "$(scale 90 60)" "$bin/gpucheck.test" -test.run '^TestParity$' -test.v \
	-check.model "$model" -check.photos "$photos" -check.max-photos "$(scale 0 2)" -check.out "$work/parity.json"
step bench-encoder "$(scale 90 60)" "$bin/gpucheck.test" -test.run '^$' -test.bench '^BenchmarkEncode$' \
	-test.benchtime "$(scale 2s 1x)" -check.batches "$(scale 1,8,64,256 1)" -check.model "$model"
step bench-decoder "$(scale 60 60)" "$bin/gpucheck.test" -test.run '^$' -test.bench "^BenchmarkDecode\$/arch=$arch/.*/batch=$(scale '.*' 1)\$" \
	-test.benchtime "$(scale 2s 1x)" -check.arch "$arch" -check.model "$model"
step bench-train "$(scale 45 60)" "$bin/gpucheck.test" -test.run '^$' -test.bench '^BenchmarkTrain$' \
	-test.benchtime "$(scale 3s 1x)" -check.arch "$arch" -check.model "$model" -check.train-batch "$(scale 64 2)"

# serve under loadgen: the GPU configuration (configs/gpu.yaml's batching).
port=18089
CAPTIONER_SERVER_MAX_BATCH=$(scale 64 8) CAPTIONER_SERVER_QUEUE_SIZE=1024 CAPTIONER_SERVER_MAX_QUEUE_DELAY=5ms \
	CAPTIONER_DECODE_BATCH_SIZE=$(scale 64 8) CAPTIONER_SERVER_REQUEST_TIMEOUT=30s \
	"$bin/captioner-cuda" serve --device cuda --model "$model" --addr 127.0.0.1:$port >"$work/serve.log" 2>&1 &
pids+=($!)
step serve-start "$(scale 60 90)" python3 - "http://127.0.0.1:$port/readyz" <<-'EOF'
	import sys, time, urllib.request
	while True:  # until the server has loaded and warmed up (the step's limit ends it)
	    try:
	        if urllib.request.urlopen(sys.argv[1], timeout=5).status == 200:
	            break
	    except OSError:
	        pass
	    time.sleep(0.5)
	EOF
step serve "$(scale 130 90)" "$bin/loadgen" -target captioner=http://127.0.0.1:$port -photos "$photos" \
	-clients "$(scale 1,16,64,256 1,16)" -duration "$(scale 8s 3s)" -max-requests "$(scale 20000 40)" \
	-warmup "$(scale 16 1)" -overload 0 -json "$work/serve.json"
kill "${pids[@]}" 2>/dev/null
# The server logs every request: keep the start and the end (the log must come back
# from the device machine, whose files are limited to 16 MiB).
{ head -n 40 "$work/serve.log"; echo "... ($(wc -l <"$work/serve.log") lines in all) ..."; tail -n 60 "$work/serve.log"; } >>"$log"

# The first python3 with PyTorch (on the GPU machine, the one on the PATH).
py=python3
for p in python3 /usr/bin/python3; do
	if "$p" -c 'import torch, torchvision' 2>/dev/null; then py=$p && break; fi
done
if [[ -z $emulated ]]; then
	step peer 120 "$py" "$here/gpu-peer.py" --arch "$arch" --model "$model" --json "$work/peer.json"
elif "$py" -c 'import torch, torchvision' 2>/dev/null; then
	step peer 60 "$py" "$here/gpu-peer.py" --arch "$arch" --model "$model" --json "$work/peer.json" --quick
fi
report
say "results in $out (results.json, results.md, check.log)"
python3 - "$work/steps.jsonl" <<-'EOF'
import json, sys
bad = [s for s in map(json.loads, open(sys.argv[1])) if s["status"] != "ok"]
sys.exit(1 if bad else 0)
EOF
