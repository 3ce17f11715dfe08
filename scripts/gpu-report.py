#!/usr/bin/env python3
"""gpu-report.py WORK OUT MODE ARCH: gather what gpu-check.sh's steps left in WORK
(steps.jsonl, each step's .out, parity.json, serve.json, peer.json) into
OUT/results.json and OUT/results.md. Run after every step, so a partial run still
reports what it measured. Standard library only."""

import json
import os
import re
import sys
import time

BENCH = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$")


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def benchmarks(text):
    """Go benchmark lines -> [{name, runs, metrics: {unit: value}}]."""
    out = []
    for line in text.splitlines():
        m = BENCH.match(line.strip())
        if not m:
            continue
        fields = m.group(3).split()
        metrics = {fields[i + 1]: float(fields[i]) for i in range(0, len(fields) - 1, 2)}
        out.append({"name": m.group(1), "runs": int(m.group(2)), "metrics": metrics})
    return out


def read(work, name):
    try:
        with open(os.path.join(work, name + ".out"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def main():
    work, out, mode, arch = sys.argv[1:5]
    steps = [json.loads(l) for l in open(os.path.join(work, "steps.jsonl")) if l.strip()]
    device = re.search(r"device: (cuda \(.*\))", read(work, "suite"))
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "mode": mode,
        "arch": arch,
        "device": device.group(1) if device else None,
        "nvidia_smi": read(work, "device").strip(),
        "steps": steps,
        "suite": {
            "passed": len(re.findall(r"^    --- PASS", read(work, "suite"), re.M)),
            "failed": re.findall(r"^    --- FAIL: (\S+)", read(work, "suite"), re.M),
        },
        "parity": load(os.path.join(work, "parity.json")),
        "encoder": benchmarks(read(work, "bench-encoder")),
        "decoder": benchmarks(read(work, "bench-decoder")),
        "train": benchmarks(read(work, "bench-train")),
        "serve": load(os.path.join(work, "serve.json")),
        "peer": load(os.path.join(work, "peer.json")),
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(markdown(res))


def metric(b, unit):
    v = b["metrics"].get(unit)
    return f"{v:,.1f}" if v is not None else ""


def markdown(r):
    L = [f"# gpu-check {r['date']} ({r['mode']}, decoder {r['arch']})", "", f"Device: {r['device'] or 'unknown'}", ""]
    if r["nvidia_smi"]:
        L += ["```", r["nvidia_smi"], "```", ""]
    L += ["| step | status | seconds |", "| --- | --- | --- |"]
    L += [f"| {s['step']} | {s['status']} (rc {s['rc']}) | {s['seconds']} |" for s in r["steps"]]
    s = r["suite"]
    L += ["", f"Kernel suite on the device: {s['passed']} subtests passed, failed: {', '.join(s['failed']) or 'none'}", ""]
    p = r["parity"]
    if p:
        same = sum(x["same_captions"] for x in p["photos"])
        worst = max((x["feature_rel_l2"] for x in p["photos"]), default=0)
        L += [f"Parity with the CPU ({p['cpu']}): same captions on {same}/{len(p['photos'])} photos, "
              f"worst feature difference {worst:.2g} (relative L2; tolerance {p['feature_tolerance']})", "",
              "| photo | rel L2 | beam-3 caption (GPU) | same |", "| --- | --- | --- | --- |"]
        L += [f"| {x['photo']} | {x['feature_rel_l2']:.2g} | {x['beam3_gpu']} | {'yes' if x['same_captions'] else 'NO'} |" for x in p["photos"]]
        L.append("")
    for title, key, unit in (("Encoder (MobileNetV2)", "encoder", "img/s"), ("Decoder", "decoder", "captions/s"),
                             ("Training", "train", "tokens/s")):
        if r[key]:
            L += [f"| {title} | {unit} |", "| --- | --- |"]
            L += [f"| {b['name']} | {metric(b, unit)} |" for b in r[key]]
            L.append("")
    sv = r["serve"]
    if sv:
        L += ["| serve: clients | requests/s | p50 ms | p99 ms | errors | batch sizes |", "| --- | --- | --- | --- | --- | --- |"]
        for lv in sv.get("levels", []):
            batches = " ".join(f"{k}:{v}" for k, v in (lv.get("batch_sizes") or {}).items() if v)
            L.append(f"| {lv['clients']} | {lv['requests_per_second']:,.1f} | {lv['p50_ms']:.1f} | {lv['p99_ms']:.1f} | {lv['errors']} | {batches} |")
        L.append("")
    pe = r["peer"]
    if pe:
        L += [f"PyTorch peer ({pe.get('torch', '?')}, {pe.get('device', '?')}):", "", "| peer | value | unit |", "| --- | --- | --- |"]
        L += [f"| {x['name']} | {x['value']:,.1f} | {x['unit']} |" for x in pe.get("results", [])]
        L.append("")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
