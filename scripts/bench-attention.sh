#!/usr/bin/env bash
# The attention decoder against its PyTorch peer (issue 12's speed target:
# greedy and beam-3 captions/s and training tokens/s at least 1.5x PyTorch's).
# The two alternate for ROUNDS rounds, so that a shared machine's changing load
# hits both alike; each round prints the load average, each side's rate and
# CPU time per caption (or token), and the ratios captioner/PyTorch of the
# rates and PyTorch/captioner of the CPU times. On a loaded machine the CPU
# time ratio is the steadier figure: the rates follow the share of the CPUs
# each side happened to get.
#   scripts/bench-attention.sh [ROUNDS]   (CAPTIONER_ASSETS: where bench/ lives)
set -euo pipefail
rounds=${1:-3}
assets=${CAPTIONER_ASSETS:-../shared}
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/decoder.test" ./decoder

for r in $(seq 1 "$rounds"); do
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	# Decoding for 3 s per row, as the PyTorch script times each row; a
	# training step takes seconds, so three of them.
	(cd decoder && "$work/decoder.test" -test.run '^$' -test.bench '^BenchmarkAttention(Greedy|Beam)\w*$/^precision=float32$' -test.benchtime 3s &&
		"$work/decoder.test" -test.run '^$' -test.bench '^BenchmarkAttentionTrainStep$' -test.benchtime 3x) >"$work/go.txt"
	# The reference script as it is, its timing loop wrapped to add up the
	# process's CPU time (all threads) per timed call.
	$py - "$assets/bench" >"$work/torch.json" <<'EOF'
import contextlib, io, json, sys, time
sys.path.insert(0, sys.argv[1])
sys.argv = ["torch_captioner.py", "decoder", "--threads", "2", "--arch", "attention", "--hidden", "512", "--vocab", "2600", "--tokens", "12"]
import torch_captioner as tc
cpu, timed = [], tc.timed
def counted_timed(fn, **kw):
    total, calls = [0.0], [0]
    def counted():
        c0 = time.process_time()
        fn()
        total[0] += time.process_time() - c0
        calls[0] += 1
    result = timed(counted, **kw)
    cpu.append(total[0] / calls[0])
    return result
tc.timed = counted_timed
out = io.StringIO()
with contextlib.redirect_stdout(out):
    tc.main()
res = json.loads(out.getvalue())
for row, c, items in zip(res["rows"], cpu, (1, 32, 1, 64 * 12)):
    row["cpu_ms"] = c * 1e3 / items
print(json.dumps(res))
EOF
	$py - "$work/go.txt" "$work/torch.json" "$r" "$load" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, re, sys
go, torch, rnd, load0, load1 = sys.argv[1:]
ours = {}
for line in open(go):
    m = re.match(r"BenchmarkAttention(\w+?)(/precision=float32)?(-\d+)?\s", line)
    if m:  # go test prints the metrics sorted by unit
        units = {u: float(v) for v, u in re.findall(r"([\d.]+) (\S+)", line)}
        ours[m.group(1)] = (units.get("captions/s-median", units.get("tokens/s-median")),
                            units.get("cpu-ms/caption", units.get("cpu-ms/token")))
theirs = {row["what"]: (row.get("captions_per_s", row.get("tokens_per_s")), row["cpu_ms"]) for row in json.load(open(torch))["rows"]}
pairs = [("GreedyB1", "greedy b1"), ("GreedyB32", "greedy b32"), ("Beam3B1", "beam3 b1"), ("TrainStep", "train b64 T12")]
print(f"round {rnd}  load {load0} -> {load1}   (rate: captions or tokens/s; cpu: ms per caption or token)")
for o, t in pairs:
    (ro, co), (rt, ct) = ours[o], theirs[t]
    print(f"  {o:10s} captioner {ro:7.1f}/s {co:7.3f} cpu-ms  pytorch {rt:7.1f}/s {ct:7.3f} cpu-ms  rate x{ro / rt:4.2f}  cpu x{ct / co:4.2f}")
EOF
done
