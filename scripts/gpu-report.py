#!/usr/bin/env python3
"""gpu-report.py WORK OUT MODE: gather what gpu-check.sh's steps left in WORK
(models.tsv, steps.jsonl, each step's .out, parity.json, serve.json,
serve-all.json, peer-MODEL.json) into OUT/results.json and OUT/results.md, with
rows per model and architecture. Run after every step, so a partial run still
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


def per_model(models, work, step):
    """The benchmarks of each model's STEP-MODEL step, each marked with its model and arch."""
    return [dict(b, model=m["name"], arch=m["arch"]) for m in models for b in benchmarks(read(work, f"{step}-{m['name']}"))]


def peers(models, work):
    out = []
    for m in models:
        p = load(os.path.join(work, f"peer-{m['name']}.json"))
        if p:
            out.append(dict(p, model=m["name"], arch=m["arch"]))
    return out


def main():
    work, out, mode = sys.argv[1:4]
    steps = [json.loads(l) for l in open(os.path.join(work, "steps.jsonl")) if l.strip()]
    models = [dict(zip(("name", "arch", "folder"), l.rstrip("\n").split("\t")), default=i == 0)
              for i, l in enumerate(open(os.path.join(work, "models.tsv"))) if l.strip()]
    device = re.search(r"device: (cuda \(.*\))", read(work, "suite"))
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "mode": mode,
        "models": models,
        "device": device.group(1) if device else None,
        "nvidia_smi": read(work, "device").strip(),
        "steps": steps,
        "suite": {
            "passed": len(re.findall(r"^    --- PASS", read(work, "suite"), re.M)),
            "failed": re.findall(r"^    --- FAIL: (\S+)", read(work, "suite"), re.M),
        },
        "parity": load(os.path.join(work, "parity.json")),
        "parity_tf32": load(os.path.join(work, "parity-tf32.json")),
        "encoder": benchmarks(read(work, "bench-encoder")),
        "decoder": per_model(models, work, "bench-decoder"),
        "train": per_model(models, work, "bench-train"),
        "serve": load(os.path.join(work, "serve.json")),
        "serve_all": load(os.path.join(work, "serve-all.json")),
        "serve_gpu_util": utilization(os.path.join(work, "serve-util.txt")),
        "serve_all_gpu_util": utilization(os.path.join(work, "serve-all-util.txt")),
        "peer": peers(models, work),
        "encoder_profile": load(os.path.join(work, "profile-encoder.json")),
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(markdown(res))


def metric(b, unit):
    v = b["metrics"].get(unit)
    return f"{v:,.1f}" if v is not None else ""


def status(s):
    if s["status"] == "skipped":
        return f"skipped ({s['why']})"
    return f"{s['status']} (rc {s['rc']})"


def utilization(path):
    """The GPU utilization samples ("unix_seconds percent" lines) of a serve step, or []."""
    out = []
    try:
        for line in open(path):
            t, _, u = line.strip().partition(" ")
            try:
                out.append((float(t), float(u)))
            except ValueError:
                pass  # a sample nvidia-smi did not answer
    except OSError:
        pass
    return out


def gpu_busy(samples, lv):
    """The mean GPU utilization over a loadgen level, from its start_unix and seconds, or ''."""
    start = lv.get("start_unix")
    inside = [u for t, u in samples if start and start <= t <= start + lv.get("seconds", 0)]
    return f"{sum(inside) / len(inside):.0f}%" if inside else ""


def serve_table(title, sv, samples=()):
    L = [title, "", "| model | clients | requests/s | p50 ms | p99 ms | errors | batch sizes | ms per image: prepare / encode / decode | server CPU ms per request | GPU busy |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for lv in sv.get("levels", []):
        batches = " ".join(f"{k}:{v}" for k, v in (lv.get("batch_sizes") or {}).items() if v)
        st = lv.get("stages") or {}
        stages = " / ".join(f"{st.get(k, 0):.2f}" for k in ("preprocess_ms_per_image", "encode_ms_per_image", "decode_ms_per_image")) if st else ""
        cpu = f"{lv['cpu_ms_per_request']:.1f}" if lv.get("cpu_ms_per_request") else ""
        L.append(f"| {lv.get('target', '')} | {lv['clients']} | {lv['requests_per_second']:,.1f} | {lv['p50_ms']:.1f} | {lv['p99_ms']:.1f} | "
                 f"{lv['errors']} | {batches} | {stages} | {cpu} | {gpu_busy(samples, lv)} |")
    return L + [""]


def same_cell(x):
    """yes, or what differs: the beam caption, else the greedy one, each device's with its score."""
    if x["same_captions"]:
        return "yes"
    kind = "beam3" if x["beam3_cpu"] != x["beam3_gpu"] else "greedy"
    return (f"NO: {kind} GPU \"{x[kind + '_gpu']}\" ({x.get(kind + '_score_gpu', float('nan')):.4f}), "
            f"CPU \"{x[kind + '_cpu']}\" ({x.get(kind + '_score_cpu', float('nan')):.4f})")


def parity_table(title, p):
    if not p:
        return []
    same = sum(x["same_captions"] for x in p["photos"])
    worst = max((x["feature_rel_l2"] for x in p["photos"]), default=0)
    L = [f"{title} ({p['cpu']}): same captions on {same}/{len(p['photos'])} (model, photo) pairs, "
         f"worst feature difference {worst:.2g} (relative L2; tolerance {p['feature_tolerance']})", "",
         "| model | photo | rel L2 | beam-3 caption (GPU) | its score, GPU / CPU | same |", "| --- | --- | --- | --- | --- | --- |"]
    L += [f"| {x['model']} | {x['photo']} | {x['feature_rel_l2']:.2g} | {x['beam3_gpu']} | "
          f"{x.get('beam3_score_gpu', float('nan')):.4f} / {x.get('beam3_score_cpu', float('nan')):.4f} | {same_cell(x)} |"
          for x in p["photos"]]
    return L + [""]


def markdown(r):
    models = ", ".join(f"{m['name']} ({m['arch']}{', default' if m['default'] else ''})" for m in r["models"])
    L = [f"# gpu-check {r['date']} ({r['mode']})", "", f"Device: {r['device'] or 'unknown'}", "", f"Models: {models}", ""]
    if r["nvidia_smi"]:
        L += ["```", r["nvidia_smi"], "```", ""]
    L += ["| step | status | seconds |", "| --- | --- | --- |"]
    L += [f"| {s['step']} | {status(s)} | {s['seconds']} |" for s in r["steps"]]
    s = r["suite"]
    L += ["", f"Kernel suite on the device: {s['passed']} subtests passed, failed: {', '.join(s['failed']) or 'none'}", ""]
    L += parity_table("Parity with the CPU", r["parity"])
    L += parity_table("Parity with the CPU, the GPU's GEMMs in TF32 by cuda.tf32, measured and not judged", r["parity_tf32"])
    if r["encoder"]:
        L += ["| Encoder (MobileNetV2) | img/s |", "| --- | --- |"]
        L += [f"| {b['name']} | {metric(b, 'img/s')} |" for b in r["encoder"]]
        L.append("")
    for title, key, unit in (("Decoder", "decoder", "captions/s"), ("Training", "train", "tokens/s")):
        if r[key]:
            L += [f"| {title}: model | arch | benchmark | {unit} |", "| --- | --- | --- | --- |"]
            L += [f"| {b['model']} | {b['arch']} | {b['name']} | {metric(b, unit)} |" for b in r[key]]
            L.append("")
    if r["serve"]:
        L += serve_table("serve, the default model alone (GPU busy: nvidia-smi's utilization, the level's mean):", r["serve"], r["serve_gpu_util"])
    if r["serve_all"]:
        L += serve_table("serve, every model at once (--models; each request names its model):", r["serve_all"], r["serve_all_gpu_util"])
    pr = r["encoder_profile"]
    if pr:
        L += [f"Encoder time by kernel at batch {pr['batch']}, each call timed alone ({pr['timed_ms']:.2f} ms a pass so; "
              f"{pr['pass_ms']:.2f} ms unsynchronised):", "",
              "| kernel and shape (KxK stride, HxWxC->OC) | calls a pass | ms a pass | share |", "| --- | --- | --- | --- |"]
        L += [f"| {o['op']} | {o['calls']} | {o['ms']:.3f} | {100 * o['ms'] / pr['timed_ms']:.1f}% |" for o in pr["ops"]]
        L.append("")
    for pe in r["peer"]:
        L += [f"PyTorch peer of {pe['model']} ({pe['arch']}; {pe.get('torch', '?')}, {pe.get('device', '?')}):", "",
              "| peer | value | unit |", "| --- | --- | --- |"]
        L += [f"| {x['name']} | {x['value']:,.1f} | {x['unit']} |" for x in pe.get("results", [])]
        L.append("")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
