#!/usr/bin/env bash
# The attention decoder against its PyTorch peer (issue 12's speed target:
# greedy and beam-3 captions/s and training tokens/s at least 1.5x PyTorch's).
# The two alternate for ROUNDS rounds, so that a shared machine's changing load
# hits both alike; each round prints the load average and captioner/PyTorch.
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
	(cd decoder && "$work/decoder.test" -test.run '^$' -test.bench '^BenchmarkAttention(Greedy|Beam)' -test.benchtime 3s &&
		"$work/decoder.test" -test.run '^$' -test.bench '^BenchmarkAttentionTrainStep$' -test.benchtime 3x) >"$work/go.txt"
	$py "$assets/bench/torch_captioner.py" decoder --threads 2 --arch attention --hidden 512 --vocab 2600 --tokens 12 >"$work/torch.json"
	$py - "$work/go.txt" "$work/torch.json" "$r" "$load" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, re, sys
go, torch, rnd, load0, load1 = sys.argv[1:]
ours = {}
for line in open(go):
    m = re.match(r"BenchmarkAttention(\w+?)(-\d+)?\s+\d+\s+\d+ ns/op\s+([\d.]+) (\S+)", line)
    if m:
        ours[m.group(1)] = float(m.group(3))
theirs = {row["what"]: row.get("captions_per_s", row.get("tokens_per_s")) for row in json.load(open(torch))["rows"]}
pairs = [("GreedyB1", "greedy b1"), ("GreedyB32", "greedy b32"), ("Beam3B1", "beam3 b1"), ("TrainStep", "train b64 T12")]
print(f"round {rnd}  load {load0} -> {load1}")
for o, t in pairs:
    print(f"  {o:10s} captioner {ours[o]:8.1f}  pytorch {theirs[t]:8.1f}  ratio {ours[o] / theirs[t]:5.2f}")
EOF
done
