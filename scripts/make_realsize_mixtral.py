#!/usr/bin/env python3
"""Write one Mixtral-8x7B-shaped MoE layer as a checkpoint folder (issue 10, point 5): the real layer's
tensors and sizes, random BF16 weights, no torch needed (numpy only; safetensors written by hand).

    python3 scripts/make_realsize_mixtral.py /tmp/mixtral-8x7b-layer0

writes, in DIR:
  config.json          model_type mixtral, 1 layer, hidden 4096, intermediate 14336, 8 experts, top-2
  model.safetensors    model.layers.0.block_sparse_moe.gate.weight [8, 4096] BF16 and, per expert e,
                       model.layers.0.block_sparse_moe.experts.{e}.w1/w3.weight [14336, 4096] and
                       .w2.weight [4096, 14336] BF16 (about 2.82 GB)
  hidden_states.safetensors   hidden_states [64, 4096] F32 (std 1), the input of `moe forward`

Then, for example:
    cat DIR/model.safetensors > /dev/null; time cat DIR/model.safetensors > /dev/null
    /usr/bin/time -v .build/release/moe forward --checkpoint DIR --layer 0 \
        --input DIR/hidden_states.safetensors --output /tmp/out.safetensors --print-peak-memory
Keep DIR outside the repository.
"""
import argparse
import json
import os
import struct

import numpy as np

HIDDEN, INTERMEDIATE, EXPERTS, TOP_K = 4096, 14336, 8, 2


def bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (round to nearest even), as uint16."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.directory, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    prefix = "model.layers.0.block_sparse_moe."

    # (name, shape, std): the router, then each expert's w1 (gate), w2 (down), w3 (up).
    tensors = [(prefix + "gate.weight", [EXPERTS, HIDDEN], 4 / HIDDEN ** 0.5)]
    for e in range(EXPERTS):
        tensors.append((f"{prefix}experts.{e}.w1.weight", [INTERMEDIATE, HIDDEN], 1 / HIDDEN ** 0.5))
        tensors.append((f"{prefix}experts.{e}.w2.weight", [HIDDEN, INTERMEDIATE], 1 / INTERMEDIATE ** 0.5))
        tensors.append((f"{prefix}experts.{e}.w3.weight", [INTERMEDIATE, HIDDEN], 1 / HIDDEN ** 0.5))

    header = {"__metadata__": {"format": "pt", "producer": "scripts/make_realsize_mixtral.py"}}
    offset = 0
    for name, shape, _ in tensors:
        size = 2 * shape[0] * shape[1]
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path = os.path.join(args.directory, "model.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape, std in tensors:
            # Uniform on ±√3·std, written a block of rows at a time (no float32 copy of the whole tensor).
            rows = shape[0]
            for start in range(0, rows, 1024):
                block = rng.uniform(-(3 ** 0.5) * std, (3 ** 0.5) * std, size=(min(1024, rows - start), shape[1])).astype(np.float32)
                f.write(bf16_bits(block).tobytes())
            print(f"{name} {shape}", flush=True)

    config = {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "num_hidden_layers": 1,
        "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE, "num_local_experts": EXPERTS,
        "num_experts_per_tok": TOP_K, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
        "hidden_act": "silu", "dtype": "bfloat16", "tie_word_embeddings": False,
    }
    with open(os.path.join(args.directory, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    hidden = rng.standard_normal((args.tokens, HIDDEN)).astype(np.float32)
    text = json.dumps({"hidden_states": {"dtype": "F32", "shape": [args.tokens, HIDDEN],
                                         "data_offsets": [0, hidden.nbytes]}}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(args.directory, "hidden_states.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(hidden.tobytes())
    print(f"wrote {path} ({os.path.getsize(path) / 1e9:.3f} GB) and hidden_states.safetensors [{args.tokens}, {HIDDEN}]")


if __name__ == "__main__":
    main()
