#!/usr/bin/env python3
"""captioner against the PyTorch reference, side by side, as one table.

Runs the encoder and decoder benchmarks of captioner (go test -bench) and
torch_captioner.py (encoder --mode best, decoder, decoder --arch attention) ALTERNATING,
--rounds times, on 2 threads each, and prints one Markdown table: per row the range of captioner's and
PyTorch's figures over the rounds, the range of their per-round ratios and the ratio
of their means over all rounds (what a target is held to: one round of a few seconds
can land in a slow phase of the shared host on either side), with the
date, the CPU model, its flags (AMX / AVX512-BF16 / AVX512-VNNI / AVX2) and the load average.
Each side's figure in a round is the rate of its median call, as torch_captioner.py's
timed() reports it (captioner's benchmarks: the *-median metrics, internal/benchstat):
the same statistic on both sides, so that a neighbour's burst during a few calls does not
count against one side only.
The machines are shared: a ratio of figures measured a minute apart is what to quote. So
each group of rows that one PyTorch run answers (the encoder, the merge decoder, the
attention decoder) runs as a pair, captioner's benchmarks and that PyTorch run back to
back, the pair's order flipping from round to round: neither side always runs first, or
minutes after the other, in a phase of the machine the other missed.

    scripts/bench.py [--rounds 3] [--only attention]   (from the repository root; make bench)
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

TORCH = os.path.join(os.environ.get("CAPTIONER_ASSETS", "../shared"), "bench", "torch_captioner.py")
DECODER = ["--threads", "2", "--hidden", "256", "--vocab", "2600", "--tokens", "12"]
# The attention decoder at its default sizes: H512, attention 512, embedding 256, 49 regions of 1280.
ATTENTION = ["--threads", "2", "--arch", "attention", "--hidden", "512", "--vocab", "2600", "--tokens", "12"]

# (row, unit, captioner benchmark and metric, PyTorch row and field)
ROWS = [
    ("encoder float32, batch 1", "images/s", ("encoder", "BenchmarkEncode/precision=float32/batch=1", "img/s-median"),
     ("encoder", (1, "frozen-channels_last-float32"), "images_per_s")),
    ("encoder float32, batch 32", "images/s", ("encoder", "BenchmarkEncode/precision=float32/batch=32", "img/s-median"),
     ("encoder", (32, "frozen-channels_last-float32"), "images_per_s")),
    ("encoder bfloat16, batch 1", "images/s", ("encoder", "BenchmarkEncode/precision=bfloat16/batch=1", "img/s-median"),
     ("encoder", (1, "frozen-channels_last-bfloat16"), "images_per_s")),
    ("encoder bfloat16, batch 32", "images/s", ("encoder", "BenchmarkEncode/precision=bfloat16/batch=32", "img/s-median"),
     ("encoder", (32, "frozen-channels_last-bfloat16"), "images_per_s")),
    # torch_captioner.py has no int8 path: the int8 rows compare with PyTorch's best float32.
    ("encoder int8, batch 1", "images/s", ("encoder", "BenchmarkEncode/precision=int8/batch=1", "img/s-median"),
     ("encoder", (1, "frozen-channels_last-float32"), "images_per_s")),
    ("encoder int8, batch 32", "images/s", ("encoder", "BenchmarkEncode/precision=int8/batch=32", "img/s-median"),
     ("encoder", (32, "frozen-channels_last-float32"), "images_per_s")),
    ("decoder greedy, batch 32", "captions/s", ("decoder", "BenchmarkGreedyB32/precision=float32", "captions/s-median"),
     ("decoder", "greedy b32", "captions_per_s")),
    ("decoder training, batch 64", "tokens/s", ("decoder", "BenchmarkTrainStep", "tokens/s-median"),
     ("decoder", "train b64 T12", "tokens_per_s")),
    ("decoder greedy, batch 1", "captions/s", ("decoder", "BenchmarkGreedyB1/precision=float32", "captions/s-median"),
     ("decoder", "greedy b1", "captions_per_s")),
    ("decoder beam 3, batch 1", "captions/s", ("decoder", "BenchmarkBeam3B1/precision=float32", "captions/s-median"),
     ("decoder", "beam3 b1", "captions_per_s")),
    ("attention greedy, batch 32", "captions/s", ("decoder", "BenchmarkAttentionGreedyB32/precision=float32", "captions/s-median"),
     ("attention", "greedy b32", "captions_per_s")),
    ("attention training, batch 64", "tokens/s", ("decoder", "BenchmarkAttentionTrainStep", "tokens/s-median"),
     ("attention", "train b64 T12", "tokens_per_s")),
    ("attention greedy, batch 1", "captions/s", ("decoder", "BenchmarkAttentionGreedyB1/precision=float32", "captions/s-median"),
     ("attention", "greedy b1", "captions_per_s")),
    ("attention beam 3, batch 1", "captions/s", ("decoder", "BenchmarkAttentionBeam3B1/precision=float32", "captions/s-median"),
     ("attention", "beam3 b1", "captions_per_s")),
    # The decoder in bfloat16 (what precision auto decodes in beside a bfloat16
    # encoder) against PyTorch's float32 decoders: it has no bfloat16 path here.
    ("decoder bfloat16 greedy, batch 32", "captions/s", ("decoder", "BenchmarkGreedyB32/precision=bfloat16", "captions/s-median"),
     ("decoder", "greedy b32", "captions_per_s")),
    ("decoder bfloat16 greedy, batch 1", "captions/s", ("decoder", "BenchmarkGreedyB1/precision=bfloat16", "captions/s-median"),
     ("decoder", "greedy b1", "captions_per_s")),
    ("decoder bfloat16 beam 3, batch 1", "captions/s", ("decoder", "BenchmarkBeam3B1/precision=bfloat16", "captions/s-median"),
     ("decoder", "beam3 b1", "captions_per_s")),
    ("attention bfloat16 greedy, batch 32", "captions/s", ("decoder", "BenchmarkAttentionGreedyB32/precision=bfloat16", "captions/s-median"),
     ("attention", "greedy b32", "captions_per_s")),
    ("attention bfloat16 greedy, batch 1", "captions/s", ("decoder", "BenchmarkAttentionGreedyB1/precision=bfloat16", "captions/s-median"),
     ("attention", "greedy b1", "captions_per_s")),
    ("attention bfloat16 beam 3, batch 1", "captions/s", ("decoder", "BenchmarkAttentionBeam3B1/precision=bfloat16", "captions/s-median"),
     ("attention", "beam3 b1", "captions_per_s")),
    # The decoder in int8 (what precision auto decodes in where the CPU has
    # AVX512-VNNI), against the same float32 decoders.
    ("decoder int8 greedy, batch 32", "captions/s", ("decoder", "BenchmarkGreedyB32/precision=int8", "captions/s-median"),
     ("decoder", "greedy b32", "captions_per_s")),
    ("decoder int8 greedy, batch 1", "captions/s", ("decoder", "BenchmarkGreedyB1/precision=int8", "captions/s-median"),
     ("decoder", "greedy b1", "captions_per_s")),
    ("decoder int8 beam 3, batch 1", "captions/s", ("decoder", "BenchmarkBeam3B1/precision=int8", "captions/s-median"),
     ("decoder", "beam3 b1", "captions_per_s")),
    ("attention int8 greedy, batch 32", "captions/s", ("decoder", "BenchmarkAttentionGreedyB32/precision=int8", "captions/s-median"),
     ("attention", "greedy b32", "captions_per_s")),
    ("attention int8 greedy, batch 1", "captions/s", ("decoder", "BenchmarkAttentionGreedyB1/precision=int8", "captions/s-median"),
     ("attention", "greedy b1", "captions_per_s")),
    ("attention int8 beam 3, batch 1", "captions/s", ("decoder", "BenchmarkAttentionBeam3B1/precision=int8", "captions/s-median"),
     ("attention", "beam3 b1", "captions_per_s")),
]

# torch_captioner.py decoder's arguments for each decoder row group.
PEER_ARGS = {"decoder": DECODER, "attention": ATTENTION}

# Where each kind's benchmarks live, and how long each runs.
BENCH = {
    "encoder": ("./encoder", "3s"),
    "decoder": ("./decoder", "2s"),
}


def bench_patterns(names):
    """go test -bench patterns that run the named benchmarks: one for each depth
    of sub-benchmarks (a pattern of two levels skips a benchmark that has none),
    each level the names at that level (sub-benchmarks: every combination)."""
    by_depth = {}
    for n in names:
        parts = n.split("/")
        by_depth.setdefault(len(parts), []).append(parts)
    return ["/".join("^(" + "|".join(sorted({re.escape(p[i]) for p in group})) + ")$" for i in range(depth))
            for depth, group in sorted(by_depth.items())]


def cpu():
    model, flags = "unknown", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.strip() == "model name":
                model = v.strip()
            elif k.strip() == "flags":
                flags = set(v.split())
    have = [name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512_vnni", "AVX512-VNNI"),
                                    ("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags]
    return model, have or ["none of AMX, AVX512-BF16, AVX-512, AVX2"], os.cpu_count()


def load():
    return os.getloadavg()[0]


def go_bench(binary, pkg_dir, pattern, benchtime):
    out = subprocess.run([binary, "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime],
                         cwd=pkg_dir, capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        if not line.startswith("Benchmark"):
            continue
        fields = line.split()
        name = re.sub(r"-\d+$", "", fields[0])
        metrics = {fields[i + 1]: float(fields[i]) for i in range(2, len(fields) - 1, 2)}
        res[name] = metrics
    return res


def torch_run(args):
    out = subprocess.run(["/usr/bin/python3", TORCH] + args, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# PyTorch's float32 GEMM rate on 2 threads (256x1024 by 1024x1024, best of 3):
# Debian's PyTorch multiplies matrices with whatever libblas.so.3 is, and the
# reference BLAS (libblas3, 6 GFLOP/s here) made its decoder 17-30x slower than
# with OpenBLAS (130-200 GFLOP/s): no peer at its best.
TORCH_GEMM = """
import time, torch
torch.set_num_threads(2)
a, b = torch.randn(256, 1024), torch.randn(1024, 1024)
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    best = min(best, time.perf_counter() - t)
print(10 * 2 * 256 * 1024 * 1024 / best / 1e9)
"""
SLOW_BLAS = 30  # GFLOP/s under which PyTorch is taken to run the reference BLAS


def torch_gemm_gflops():
    """PyTorch's GEMM rate, or None when the probe fails (the table says so)."""
    try:
        out = subprocess.run(["/usr/bin/python3", "-c", TORCH_GEMM], capture_output=True, text=True,
                             check=True, timeout=120).stdout
        return float(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as e:
        print(f"bench: could not measure PyTorch's GEMM rate: {e}", file=sys.stderr)
        return None


def span(xs, fmt):
    if not xs:
        return "–"
    lo, hi = min(xs), max(xs)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else fmt.format(lo) + "–" + fmt.format(hi)


def mean_ratio(ours, theirs):
    """captioner's mean figure over PyTorch's, each over all its rounds."""
    if not ours or not theirs:
        return "–"
    return f"{(sum(ours) / len(ours)) / (sum(theirs) / len(theirs)):.2f}x"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the pairs, captioner and PyTorch back to back")
    ap.add_argument("--only", default="", help="only the rows whose name starts with this (encoder, decoder, attention)")
    a = ap.parse_args()
    rows = [r for r in ROWS if r[0].startswith(a.only)]
    if not rows:
        sys.exit(f"bench: no row starts with {a.only!r}; rows: " + ", ".join(r[0] for r in ROWS))
    kinds = {r[2][0] for r in rows}  # captioner's benchmark binaries to run
    # The pairs: captioner's benchmark binary and the PyTorch run its rows compare with.
    pairs = sorted({(r[2][0], r[3][0]) for r in rows})
    have_torch = subprocess.run(["/usr/bin/python3", "-c", "import torch, torchvision"],
                                capture_output=True).returncode == 0 and os.path.exists(TORCH)
    if not have_torch:
        print("bench: no PyTorch reference (make deps-bench as root, or apt-get install python3-torch "
              "python3-torchvision python3-pil python3-numpy libopenblas0-pthread; CAPTIONER_ASSETS must hold "
              "bench/torch_captioner.py): captioner alone", file=sys.stderr)
    gemm = torch_gemm_gflops() if have_torch else None
    if gemm is not None and gemm < SLOW_BLAS:
        print(f"bench: PyTorch multiplies matrices at {gemm:.0f} GFLOP/s here, the reference BLAS's speed, not its "
              "best: install OpenBLAS (apt-get install libopenblas0-pthread) for a fair peer", file=sys.stderr)
    tmp = tempfile.mkdtemp(prefix="captioner-bench-")
    binaries = {}
    for kind in kinds:
        binaries[kind] = os.path.join(tmp, kind + ".test")
        subprocess.run(["go", "test", "-c", "-o", binaries[kind], BENCH[kind][0]], check=True)
    ours = {r[0]: [] for r in rows}
    theirs = {r[0]: [] for r in rows}
    ratios = {r[0]: [] for r in rows}
    loads = [load()]
    bf16_note = ""
    for rnd in range(a.rounds):
        print(f"bench: round {rnd + 1} of {a.rounds}, load {load():.1f}", file=sys.stderr)
        got = {kind: {} for kind in kinds}
        peer = {}

        def run_ours(kind, pkind):
            pkg, benchtime = BENCH[kind]
            for pattern in bench_patterns([r[2][1] for r in rows if r[2][0] == kind and r[3][0] == pkind]):
                got[kind].update(go_bench(binaries[kind], pkg, pattern, benchtime))

        def run_theirs(pkind):
            nonlocal bf16_note
            if not have_torch:
                return
            if pkind == "encoder":
                enc = torch_run(["encoder", "--threads", "2", "--batch", "1,32", "--mode", "best"])
                peer["encoder"] = {(r["batch"], r["mode"]): r for r in enc["rows"]}
                if not enc["bf16"]:  # the bfloat16 rows compare with PyTorch's best float32
                    bf16_note = "PyTorch has no bfloat16 path here: the bfloat16 rows compare with its best float32"
                    for b in (1, 32):
                        peer["encoder"][(b, "frozen-channels_last-bfloat16")] = peer["encoder"][(b, "frozen-channels_last-float32")]
            else:
                peer[pkind] = {r["what"]: r for r in torch_run(["decoder"] + PEER_ARGS[pkind])["rows"]}

        for kind, pkind in pairs:
            steps = [lambda: run_ours(kind, pkind), lambda: run_theirs(pkind)]
            for step in steps if rnd % 2 == 0 else steps[::-1]:
                step()
        loads.append(load())
        for row, _, (kind, bench, metric), (pkind, key, field) in rows:
            v = got[kind].get(bench, {}).get(metric)
            if v is not None:
                ours[row].append(v)
            p = peer.get(pkind, {}).get(key, {}).get(field)
            if p is not None:
                theirs[row].append(p)
                if v is not None:
                    ratios[row].append(v / p)
    model, flags, ncpu = cpu()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{now}; {model}, {ncpu} CPUs ({', '.join(flags)}); 2 threads each; {a.rounds} rounds, each row group's "
          f"pair back to back, its order flipping; "
          f"load average {min(loads):.1f}–{max(loads):.1f}")
    print("PyTorch: torch_captioner.py encoder --mode best (channels_last, traced, frozen), decoder "
          "(H256, V2600, 12 tokens), decoder --arch attention (H512, attention 512, embedding 256, 49 regions "
          "of 1280, V2600, 12 tokens); captioner: go test -bench (encoder precision float32/bfloat16/int8, oneDNN chain); "
          "both sides: the rate of the median call; "
          "PyTorch has no int8 path here: the int8 rows compare with its best float32; the decoder's bfloat16 and int8 rows "
          "compare with PyTorch's float32 decoders")
    if have_torch:
        print("PyTorch's float32 GEMM here: " + ("not measured" if gemm is None else f"{gemm:.0f} GFLOP/s on 2 threads"
              + (" (the reference BLAS: not PyTorch at its best)" if gemm < SLOW_BLAS else "")))
    if bf16_note:
        print(bf16_note)
    print()
    print("| measure | unit | captioner | PyTorch | ratio, per round | ratio of the means |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row, unit, _, _ in rows:
        fmt = "{:,.0f}" if max(ours[row] + theirs[row] + [0]) >= 100 else "{:.1f}"
        print(f"| {row} | {unit} | {span(ours[row], fmt)} | {span(theirs[row], fmt)} | {span(ratios[row], '{:.2f}x')} "
              f"| {mean_ratio(ours[row], theirs[row])} |")


if __name__ == "__main__":
    main()
