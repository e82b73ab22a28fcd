#!/usr/bin/env python3
"""Counts the parameters `transformers` instantiates for each cost-model fixture config.

Builds every `Tests/CostFixtures/*.json` (except expected_params.json) on the meta
device -- no memory is allocated -- with `AutoModelForCausalLM.from_config`, and prints
`sum(p.numel() for p in model.parameters())` (buffers such as DeepSeek-V3's
`e_score_correction_bias` are not parameters and are not counted). `quantization_config` is
dropped first so that the model instantiates in its unquantized form (GPT-OSS's MXFP4 experts
are then full-size parameters, which is what the count wants). DeepSeek-V3's multi-token
prediction layer (layer 61) is never instantiated by transformers.

Usage: python scripts/count_params.py [--write]   (--write updates expected_params.json totals)
Checked with torch 2.15.0 and transformers 5.23.0.
"""
import json
import pathlib
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "CostFixtures"


def count(path: pathlib.Path) -> int:
    raw = json.loads(path.read_text())
    raw.pop("quantization_config", None)
    model_type = raw.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **raw)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    totals = {}
    for path in sorted(FIXTURES.glob("*.json")):
        if path.name == "expected_params.json":
            continue
        totals[path.stem] = count(path)
        print(f"{path.stem:20s} {totals[path.stem]:>16,d}", flush=True)
    if "--write" in sys.argv:
        expected_path = FIXTURES / "expected_params.json"
        expected = json.loads(expected_path.read_text()) if expected_path.exists() else {}
        for name, total in totals.items():
            expected.setdefault(name, {})["total_params"] = total
        expected_path.write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
