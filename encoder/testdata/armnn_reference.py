#!/usr/bin/python3
"""Reference ImageNet predictions from Arm NN, an independent TFLite runtime.

Runs a quantized MobileNetV2 .tflite file with Arm NN's TfLite parser on its
CpuRef (reference) backend, i.e. the integer network exactly as the file defines
it, on input tensors that captioner's own preprocessing produced, and writes the
top-k labels and probabilities as JSON. Debian: apt-get install python3-pyarmnn
libarmnn-cpuref-backend22 python3-numpy; use /usr/bin/python3.

Usage (the Go test runs this for you: go test ./encoder -run TestArmNN -update):
  armnn_reference.py --model M.tflite --labels imagenet_labels.txt --out ref.json \\
      NAME=input.u8 [NAME=input.u8 ...]

Each input file is the raw (224, 224, 3) uint8 RGB tensor, NHWC, the pixel values
of the resized image before scaling to [-1, 1] (which is what the uint8 model's
input quantization expects).
"""
import argparse
import hashlib
import json
import sys
import time

import numpy as np
import pyarmnn as ann


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("inputs", nargs="+", metavar="NAME=FILE")
    a = ap.parse_args()

    labels = open(a.labels, encoding="utf-8").read().splitlines()
    parser = ann.ITfLiteParser()
    network = parser.CreateNetworkFromBinaryFile(a.model)
    in_name = parser.GetSubgraphInputTensorNames(0)[0]
    out_name = parser.GetSubgraphOutputTensorNames(0)[0]
    in_info = parser.GetNetworkInputBindingInfo(0, in_name)
    out_info = parser.GetNetworkOutputBindingInfo(0, out_name)
    runtime = ann.IRuntime(ann.CreationOptions())
    opt, _ = ann.Optimize(network, [ann.BackendId("CpuRef")], runtime.GetDeviceSpec(), ann.OptimizerOptions())
    net_id, _ = runtime.LoadNetwork(opt)
    out_q = out_info[1].GetQuantizationScale(), out_info[1].GetQuantizationOffset()

    results = []
    for spec in a.inputs:
        name, path = spec.split("=", 1)
        raw = open(path, "rb").read()
        if len(raw) != 224 * 224 * 3:
            sys.exit(f"{path}: {len(raw)} bytes, want 224*224*3 uint8")
        x = np.frombuffer(raw, dtype=np.uint8).reshape(1, 224, 224, 3)
        t0 = time.time()
        outs = ann.make_output_tensors([out_info])
        runtime.EnqueueWorkload(net_id, ann.make_input_tensors([in_info], [x]), outs)
        q = ann.workload_tensors_to_ndarray(outs)[0].reshape(-1).astype(np.int64)
        probs = (q - out_q[1]) * out_q[0]
        top = np.argsort(-probs, kind="stable")[: a.top]
        results.append({
            "image": name,
            "input_sha256": hashlib.sha256(raw).hexdigest(),
            "seconds": round(time.time() - t0, 2),
            "labels": [{"label": labels[i], "index": int(i), "prob": float(probs[i])} for i in top],
        })
    doc = {
        "runtime": f"Arm NN {ann.ARMNN_VERSION} TfLiteParser, CpuRef backend (integer network)",
        "model": a.model.rsplit("/", 1)[-1],
        "model_sha256": hashlib.sha256(open(a.model, "rb").read()).hexdigest(),
        "results": results,
    }
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
