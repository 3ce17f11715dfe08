#!/usr/bin/env python3
"""gpu-peer.py: the PyTorch peer of gpu-check.sh, on the same GPU in the same run.

What it measures, with random weights (a speed peer: torchvision's weights are not
downloadable on the GPU machine, and speed does not depend on weight values):
  - torchvision MobileNetV2 (classifier removed, 1280-d pooled features), images/s at
    batch 1, 8, 64 and 256: eager float32 (NCHW), and channels_last under
    torch.autocast(float16), PyTorch's usual tensor-core path;
  - the merge decoder at the shipped model's sizes (config.json of --model): greedy and
    beam-3 captions/s at batch 1 and 64, 16 words each, beam search batched over images
    the way captioner's is; training tokens/s (batch 64 x 16 tokens, AdamW).
--arch attention is the hook for the attention decoder: it fails with a clear message
until that peer is written alongside the Go one.

Prints and (--json) writes {"torch", "device", "results": [{name, value, unit}]}.
--quick: tiny sizes on whatever device there is (CI keeps the script from rotting).
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

START, END = 1, 2


def timed(fn, device, min_seconds, min_runs=3):
    """Runs/second of fn after a warm-up, synchronised on the GPU."""
    fn()
    sync(device)
    runs, t0 = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - t0 < min_seconds:
        fn()
        runs += 1
        if runs % 4 == 0:
            sync(device)
    sync(device)
    return runs / (time.perf_counter() - t0)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def encoder(device):
    m = torchvision.models.mobilenet_v2(weights=None)
    m.classifier = nn.Identity()
    return m.to(device).eval()


class Merge(nn.Module):
    """captioner's merge decoder: relu(W_img feats) + LSTM(embeddings) -> relu(W_mid) -> vocab."""

    def __init__(self, c):
        super().__init__()
        self.img = nn.Linear(c["feat_dim"], c["hidden"])
        self.emb = nn.Embedding(c["vocab"], c["embed"])
        self.lstm = nn.LSTM(c["embed"], c["hidden"], batch_first=True)
        self.mid = nn.Linear(c["hidden"], c["mid"])
        self.out = nn.Linear(c["mid"], c["vocab"])

    def head(self, img, h):
        return self.out(F.relu(self.mid(img + h)))

    def forward(self, feats, ids):
        img = F.relu(self.img(feats))[:, None, :]
        h, _ = self.lstm(self.emb(ids))
        return self.head(img, h)

    @torch.no_grad()
    def search(self, feats, words, beam):
        """Beam search (greedy at beam 1) for every image at once: rows are image x beam."""
        b = feats.shape[0]
        img = F.relu(self.img(feats)).repeat_interleave(beam, 0)
        tok = torch.full((b * beam,), START, dtype=torch.long, device=feats.device)
        score = torch.zeros(b, beam, device=feats.device)
        score[:, 1:] = -1e9  # all beams start as the same hypothesis
        state = None
        for _ in range(words):
            h, state = self.lstm(self.emb(tok)[:, None, :], state)
            logp = F.log_softmax(self.head(img, h[:, 0]), -1)
            v = logp.shape[1]
            cand = (score.view(-1, 1) + logp).view(b, beam * v)
            score, idx = cand.topk(beam, -1)
            src = (idx // v + torch.arange(b, device=feats.device)[:, None] * beam).view(-1)
            tok = (idx % v).view(-1)
            state = tuple(s[:, src] for s in state)
        return tok


def run(args, report):
    """Measures into report["results"], so a failure part-way keeps what was measured."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report["device"] = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    quick = args.quick
    secs = 0.2 if quick else args.seconds
    res = report["results"]

    def add(name, value, unit):
        res.append({"name": name, "value": value, "unit": unit})
        print(f"{name}: {value:,.1f} {unit}", flush=True)

    enc = encoder(device)
    with torch.no_grad():
        for batch in ([1] if quick else [1, 8, 64, 256]):
            x = torch.randn(batch, 3, 224, 224, device=device)
            add(f"encoder/eager_float32/batch={batch}", batch * timed(lambda: enc(x), device, secs), "img/s")
        if device.type == "cuda":
            cl = enc.to(memory_format=torch.channels_last)
            for batch in [1, 8, 64, 256]:
                x = torch.randn(batch, 3, 224, 224, device=device).to(memory_format=torch.channels_last)

                def f():
                    with torch.autocast("cuda", dtype=torch.float16):
                        cl(x)
                add(f"encoder/channels_last_autocast_fp16/batch={batch}", batch * timed(f, device, secs), "img/s")
    del enc

    if args.arch != "merge":
        sys.exit(f"gpu-peer: --arch {args.arch}: no PyTorch peer for it yet (merge only); add it next to Merge")
    with open(f"{args.model}/config.json") as f:
        cfg = json.load(f)
    dec = Merge(cfg).to(device).eval()
    words = 4 if quick else 16
    for beam in (1, 3):
        for batch in ([1] if quick else [1, 64]):
            feats = torch.randn(batch, cfg["feat_dim"], device=device)
            rate = timed(lambda: dec.search(feats, words, beam), device, secs)
            add(f"decoder/arch={args.arch}/beam={beam}/batch={batch}", batch * rate, "captions/s")

    B, T = (4, 4) if quick else (64, 16)
    dec.train()
    opt = torch.optim.AdamW(dec.parameters(), lr=1e-4)
    feats = torch.randn(B, cfg["feat_dim"], device=device)
    ids = torch.randint(3, cfg["vocab"], (B, T), device=device)
    tgt = torch.randint(3, cfg["vocab"], (B, T), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(dec(feats, ids).reshape(-1, cfg["vocab"]), tgt.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dec.parameters(), 5.0)
        opt.step()
    add(f"train/arch={args.arch}/batch={B}", B * T * timed(step, device, secs), "tokens/s")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="merge", help="decoder architecture: merge (attention: hook, not yet)")
    p.add_argument("--model", required=True, help="caption model folder (its config.json gives the sizes)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per figure")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    args = p.parse_args()
    torch.backends.cudnn.benchmark = True
    report = {"torch": torch.__version__, "device": None, "results": []}
    try:
        run(args, report)
    finally:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
