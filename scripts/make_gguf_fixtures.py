#!/usr/bin/env python3
"""Writes the tiny GGUF files in Tests/Fixtures/gguf/ with llama.cpp's own writer
(gguf-py, the PyPI `gguf` package; versions pinned in scripts/requirements-gguf.txt), so that the
tests read files a real GGUFWriter made, not only the ones the Swift test writer makes.

    pip install -r scripts/requirements-gguf.txt
    python3 scripts/make_gguf_fixtures.py

Deterministic: values come from a formula, not a random generator, and the writer adds nothing
time-dependent. The tests recompute the formula, so no expected-value file is needed:

    value(e, r, c) = ((7·e + 3·r + c) mod 17 − 8) / 8        (expert e, output row r, input column c)

Files (≈ 90 KB together):
  qwen3moe-q8_0.gguf      qwen3moe, 1 block, H=64, E=4, K=2, F=32: router F32, experts Q8_0,
                          token_embd F16 (a tensor the MoE reader does not use), general.alignment = 64
  deepseek2-00001-of-00002.gguf, deepseek2-00002-of-00002.gguf
                          deepseek2, 2 blocks (block 0 dense, F=48), H=32, E=4, K=2, F=16, one shared
                          expert, sigmoid gating, 2 groups / 1 kept, norm, scale 2.5, exp_probs_b; all F32;
                          split by the writer (split_max_tensors=6)
"""
from pathlib import Path

import numpy as np
import gguf

OUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "gguf"


def pattern(experts: int, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    e, r, c = np.meshgrid(np.arange(experts), np.arange(rows), np.arange(cols), indexing="ij")
    return ((((7 * e + 3 * r + c + seed) % 17) - 8) / 8).astype(np.float32)


def qwen3moe() -> None:
    h, e, k, f = 64, 4, 2, 32
    w = gguf.GGUFWriter(OUT / "qwen3moe-q8_0.gguf", "qwen3moe")
    w.add_custom_alignment(64)
    w.add_name("moekit-qwen3moe-tiny")
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_embedding_length(h)
    w.add_feed_forward_length(96)
    w.add_expert_feed_forward_length(f)
    w.add_expert_count(e)
    w.add_expert_used_count(k)
    w.add_head_count(4)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_tensor("token_embd.weight", pattern(1, 16, h)[0].astype(np.float16))
    w.add_tensor("blk.0.ffn_gate_inp.weight", pattern(1, e, h, seed=5)[0])  # numpy [E, H] = ggml [H, E]
    for name, (rows, cols), seed in (("gate", (f, h), 0), ("up", (f, h), 1), ("down", (h, f), 2)):
        values = pattern(e, rows, cols, seed)  # numpy [E, out, in] = ggml [in, out, E]
        q = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(f"blk.0.ffn_{name}_exps.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def deepseek2() -> None:
    h, e, k, f, dense = 32, 4, 2, 16, 48
    w = gguf.GGUFWriter(OUT / "deepseek2.gguf", "deepseek2", split_max_tensors=6)
    w.add_name("moekit-deepseek2-tiny")
    w.add_block_count(2)
    w.add_context_length(128)
    w.add_embedding_length(h)
    w.add_feed_forward_length(dense)
    w.add_leading_dense_block_count(1)
    w.add_expert_feed_forward_length(f)
    w.add_expert_count(e)
    w.add_expert_used_count(k)
    w.add_expert_shared_count(1)
    w.add_expert_group_count(2)
    w.add_expert_group_used_count(1)
    w.add_expert_weights_scale(2.5)
    w.add_expert_weights_norm(True)
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    w.add_tensor("blk.0.ffn_gate.weight", pattern(1, dense, h, 3)[0])
    w.add_tensor("blk.0.ffn_up.weight", pattern(1, dense, h, 4)[0])
    w.add_tensor("blk.0.ffn_down.weight", pattern(1, h, dense, 5)[0])
    w.add_tensor("blk.1.ffn_gate_inp.weight", pattern(1, e, h, 6)[0])
    w.add_tensor("blk.1.exp_probs_b.bias", np.arange(e, dtype=np.float32) / 10)
    w.add_tensor("blk.1.ffn_gate_exps.weight", pattern(e, f, h, 0))
    w.add_tensor("blk.1.ffn_up_exps.weight", pattern(e, f, h, 1))
    w.add_tensor("blk.1.ffn_down_exps.weight", pattern(e, h, f, 2))
    w.add_tensor("blk.1.ffn_gate_shexp.weight", pattern(1, f, h, 7)[0])
    w.add_tensor("blk.1.ffn_up_shexp.weight", pattern(1, f, h, 8)[0])
    w.add_tensor("blk.1.ffn_down_shexp.weight", pattern(1, h, f, 9)[0])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    qwen3moe()
    deepseek2()
    for p in sorted(OUT.glob("*.gguf")):
        print(p.name, p.stat().st_size)
