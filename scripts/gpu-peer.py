#!/usr/bin/env python3
"""gpu-peer.py: the PyTorch peer of gpu-check.sh, on the same GPU in the same run.

What it measures, with random weights (a speed peer: torchvision's weights are not
downloadable on the GPU machine, and speed does not depend on weight values):
  - torchvision MobileNetV2 (classifier removed, 1280-d pooled features; where python3
    has PyTorch but not torchvision, the same layers built here), images/s at
    batch 1, 8, 64 and 256: eager float32 (NCHW), and channels_last under
    torch.autocast(float16), PyTorch's usual tensor-core path;
  - the decoder of --model, of its architecture and sizes (its config.json): merge on
    the pooled features, or Show-Attend-Tell attention over the 7x7 grid; greedy and
    beam-3 captions/s at batch 1 and 64, 16 words each, beam search batched over images
    the way captioner's is; training tokens/s (batch 64 x 16 tokens, AdamW).
--no-encoder leaves the encoder out (gpu-check.sh measures it with the default model's
peer only).

Prints and (--json) writes {"torch", "device", "arch", "results": [{name, value, unit}]};
a run ended by SIGTERM (gpu-check's time limit) still writes what it measured.
--quick: tiny sizes on whatever device there is (CI keeps the script from rotting).
"""
import argparse
import json
import signal
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import torchvision
except Exception:  # PyTorch alone, or a torchvision built for another torch ("operator torchvision::nms does not exist"): the same network, built below
    torchvision = None

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
    if torchvision is not None:
        m = torchvision.models.mobilenet_v2(weights=None)
        m.classifier = nn.Identity()
    else:
        m = MobileNetV2()
    return m.to(device).eval()


def conv_bn(cin, cout, k=1, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn(cin, hidden)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, act=False)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's mobilenet_v2 (width 1.0) without its classifier, for a python3
    that has PyTorch but not torchvision: the same layers, shapes and work."""

    def __init__(self):
        super().__init__()
        layers, cin = [conv_bn(3, 32, 3, 2)], 32
        for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, 1280))
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)


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

    def loss(self, feats, ids, targets):
        return F.cross_entropy(self(feats, ids).flatten(0, 1), targets.flatten())

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


class Attention(nn.Module):
    """captioner's attention decoder (decoder/attention.go), over (B, L, F) region features:
    h0, c0 = tanh(Linear(mean region)); per step, from h: alpha = softmax over regions of
    att_v(tanh(att_f(feats) + att_h(h))), gz = sigmoid(gate(h)) * sum_l alpha_l feats_l,
    h, c = LSTMCell([embed(y), gz]), logits = out(dropout(embed(y) + out_h(h) + out_z(gz)));
    training adds the doubly stochastic penalty att_penalty * mean (1 - sum_t alpha_t)^2."""

    def __init__(self, c):
        super().__init__()
        self.emb = nn.Embedding(c["vocab"], c["embed"])
        self.init_h, self.init_c = nn.Linear(c["feat_dim"], c["hidden"]), nn.Linear(c["feat_dim"], c["hidden"])
        self.att_f, self.att_h = nn.Linear(c["feat_dim"], c["att"]), nn.Linear(c["hidden"], c["att"], bias=False)
        self.att_v = nn.Linear(c["att"], 1, bias=False)
        self.gate = nn.Linear(c["hidden"], c["feat_dim"])
        self.cell = nn.LSTMCell(c["embed"] + c["feat_dim"], c["hidden"])
        self.out_h, self.out_z = nn.Linear(c["hidden"], c["embed"]), nn.Linear(c["feat_dim"], c["embed"], bias=False)
        self.out = nn.Linear(c["embed"], c["vocab"])
        self.drop = nn.Dropout(c.get("dropout", 0.5))
        self.penalty = c.get("att_penalty", 1.0)

    def start(self, feats):
        m = feats.mean(1)
        return (torch.tanh(self.init_h(m)), torch.tanh(self.init_c(m))), self.att_f(feats)

    def step(self, tok, feats, pf, state):
        h = state[0]
        alpha = F.softmax(self.att_v(torch.tanh(pf + self.att_h(h)[:, None, :]))[..., 0], -1)
        gz = torch.sigmoid(self.gate(h)) * torch.bmm(alpha[:, None, :], feats)[:, 0]
        y = self.emb(tok)
        h, c = self.cell(torch.cat([y, gz], -1), state)
        return self.out(self.drop(y + self.out_h(h) + self.out_z(gz))), (h, c), alpha

    def loss(self, feats, ids, targets):
        state, pf = self.start(feats)
        logits, alphas = [], 0
        for t in range(ids.shape[1]):
            lg, state, alpha = self.step(ids[:, t], feats, pf, state)
            logits.append(lg)
            alphas = alphas + alpha
        ce = F.cross_entropy(torch.stack(logits, 1).flatten(0, 1), targets.flatten())
        return ce + self.penalty * ((1 - alphas) ** 2).mean()

    @torch.no_grad()
    def search(self, feats, words, beam):
        """Beam search (greedy at beam 1) for every image at once: rows are image x beam."""
        b = feats.shape[0]
        state, pf = self.start(feats)
        feats, pf = feats.repeat_interleave(beam, 0), pf.repeat_interleave(beam, 0)
        state = tuple(s.repeat_interleave(beam, 0) for s in state)
        tok = torch.full((b * beam,), START, dtype=torch.long, device=feats.device)
        score = torch.zeros(b, beam, device=feats.device)
        score[:, 1:] = -1e9  # all beams start as the same hypothesis
        for _ in range(words):
            lg, state, _ = self.step(tok, feats, pf, state)
            logp = F.log_softmax(lg, -1)
            v = logp.shape[1]
            cand = (score.view(-1, 1) + logp).view(b, beam * v)
            score, idx = cand.topk(beam, -1)
            src = (idx // v + torch.arange(b, device=feats.device)[:, None] * beam).view(-1)
            tok = (idx % v).view(-1)
            state = tuple(s[src] for s in state)
        return tok


def features(cfg, batch, device):
    """Random inputs of the decoder's kind: pooled (B, F) for merge, the grid (B, L, F) for attention."""
    if cfg["arch"] == "attention":
        return torch.randn(batch, cfg["regions"], cfg["feat_dim"], device=device)
    return torch.randn(batch, cfg["feat_dim"], device=device)


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

    with open(f"{args.model}/config.json") as f:
        cfg = json.load(f)
    cfg.setdefault("arch", "merge")  # a config.json older than the field
    report["arch"] = arch = cfg["arch"]
    if arch not in ("merge", "attention"):
        sys.exit(f"gpu-peer: {args.model}/config.json: arch {arch!r} has no peer here (merge, attention)")
    if not args.no_encoder:
        measure_encoder(device, quick, secs, add)

    dec = (Attention if arch == "attention" else Merge)(cfg).to(device).eval()
    words = 4 if quick else 16
    for beam in (1, 3):
        for batch in ([1] if quick else [1, 64]):
            feats = features(cfg, batch, device)
            rate = timed(lambda: dec.search(feats, words, beam), device, secs)
            add(f"decoder/arch={arch}/beam={beam}/batch={batch}", batch * rate, "captions/s")

    B, T = (4, 4) if quick else (64, 16)
    dec.train()
    opt = torch.optim.AdamW(dec.parameters(), lr=1e-4)
    feats = features(cfg, B, device)
    ids = torch.randint(3, cfg["vocab"], (B, T), device=device)
    tgt = torch.randint(3, cfg["vocab"], (B, T), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        dec.loss(feats, ids, tgt).backward()
        torch.nn.utils.clip_grad_norm_(dec.parameters(), 5.0)
        opt.step()
    add(f"train/arch={arch}/batch={B}", B * T * timed(step, device, secs), "tokens/s")


def measure_encoder(device, quick, secs, add):
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="caption model folder (its config.json gives the architecture and sizes)")
    p.add_argument("--no-encoder", action="store_true", help="measure the decoder only")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per figure")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    args = p.parse_args()
    torch.backends.cudnn.benchmark = True
    report = {"torch": torch.__version__, "device": None, "arch": None, "results": [],
              "encoder": "torchvision" if torchvision is not None else "torch.nn copy of torchvision's (no torchvision)"}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("gpu-peer: stopped by SIGTERM (time limit)"))
    try:
        run(args, report)
    finally:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
