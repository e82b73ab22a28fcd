#!/usr/bin/env python3
"""int8 compute's distance from exact on every GGUF golden layer (docs/PERFORMANCE.md, issue 12 point 5).

Runs `moe forward --compute f32` and `--compute int8` on each layer of Tests/Fixtures/manifest-gguf.json and prints
max|int8 - exact| / max|exact| and the exact mode's distance from transformers' expected output. Needs numpy and
safetensors (scripts/requirements-fixtures.txt) and a release build:

    swift build -c release --product moe && python3 scripts/int8_errors.py
"""
import json, subprocess, os, sys
import tempfile

import numpy as np
from safetensors.numpy import load_file
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
moe = ROOT + "/.build/release/moe"
man = json.load(open(ROOT + "/Tests/Fixtures/manifest-gguf.json"))
rows = []
for f in man["fixtures"]:
    path = f"{ROOT}/Tests/Fixtures/{f['name']}/{f['checkpoint']}"
    for layer, types in zip(f["layers"], f["ggml_types"]):
        L = layer["layer"]
        inp = f"{ROOT}/Tests/Fixtures/{f['name']}/layer{L}.safetensors"
        outs = {}
        for c in ["f32", "int8"]:
            out = f"{tempfile.gettempdir()}/int8err-{f['name']}-{L}-{c}.safetensors"
            subprocess.run([moe, "forward", "--checkpoint", path, "--layer", str(L), "--input", inp, "--output", out, "--compute", c], check=True)
            outs[c] = load_file(out)["hidden_states"].astype(np.float64)
        exp = load_file(inp)["expected_hidden_states"].astype(np.float64)
        err = np.abs(outs["int8"] - outs["f32"]).max() / np.abs(outs["f32"]).max()
        exact = np.abs(outs["f32"] - exp.reshape(outs["f32"].shape)).max() / np.abs(exp).max()
        kinds = ", ".join(f"{k.replace('ffn_','')} {v}" for k, v in types.items() if not k.endswith("inp") and "norm" not in k)
        rows.append((f["name"], L, kinds, err, exact))
        print(f"| {f['name']} | {L} | {kinds} | {err:.1e} | {exact:.1e} |", flush=True)
