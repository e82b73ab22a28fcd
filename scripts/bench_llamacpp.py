#!/usr/bin/env python3
"""llama.cpp beside `moe` on the same GGUF MoE layers (issue 12, point 6): the peer numbers for docs/, never for CI.

What it does, per shape (the `moe bench` presets) and per ggml type:
  1. writes a small qwen3moe (mixtral, qwen3 shapes) or qwen2moe (deepseek shape: a shared expert) GGUF model
     with gguf-py: LAYERS MoE blocks of the preset's shape, attention as small as llama.cpp allows (one head of
     64), a 256-token SPM vocabulary; experts F16 with random N(0, 1/fan_in) values (seeded);
  2. quantizes it with llama.cpp's own quantizer (`llama_model_quantize` through llama-cpp-python): Q4_K_M, Q8_0
     and MXFP4 (`MXFP4_MOE`);
  3. times llama.cpp (llama-cpp-python, 2 threads): a 512-token prompt (T = 512) and single-token decode steps
     (T = 1), each divided by LAYERS (the rest of the model is ≤ 2 % of it by weight bytes; the script prints
     that share);
  4. times `moe run --checkpoint FILE --layer L --tokens T --compute C` on the same file, for every MoE layer L
     (the mean of the layers' median times per forward), in both compute modes C.

MoEKit runs each file in both of its modes (--compute): int8, llama.cpp's own arithmetic (activations quantized
per block to 8 bits, integer dot products), and f32, its exact mode (weights dequantized exactly, F32
activations). The table says which, and int8's difference from the exact reference.

    python3 -m venv /tmp/llamavenv && /tmp/llamavenv/bin/pip install -r scripts/requirements-llamacpp.txt
    swift build -c release --product moe
    /tmp/llamavenv/bin/python scripts/bench_llamacpp.py --json docs/bench/llamacpp-DATE.json

llama-cpp-python compiles llama.cpp from source at install (about 10 minutes on 2 cores; CMAKE_ARGS="-DGGML_NATIVE=ON"
is its default on x86).
"""
import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The moe bench quick presets (Sources/MoECost/BlockEstimate.swift): hidden, expert width, experts, top-k, shared width.
SHAPES = {
    "mixtral": dict(hidden=1024, ffn=3584, experts=8, top_k=2, shared=0),
    "qwen3": dict(hidden=2048, ffn=768, experts=128, top_k=8, shared=0),
    "deepseek": dict(hidden=1024, ffn=512, experts=64, top_k=6, shared=512),
}
VOCAB = 256
HEAD_DIM = 64


def write_model(path, shape, layers, seed):
    """An F16 GGUF model of `layers` MoE blocks of `shape` with minimal attention, as llama.cpp's converter names it."""
    import gguf
    h, f, e, k, s = shape["hidden"], shape["ffn"], shape["experts"], shape["top_k"], shape["shared"]
    arch = "qwen2moe" if s else "qwen3moe"
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"moekit-peer-{arch}")
    w.add_block_count(layers)
    w.add_context_length(1024)
    w.add_embedding_length(h)
    w.add_feed_forward_length(f)
    # qwen3moe takes the head size from key_length: one head of 64. qwen2moe derives it from hidden / heads, so
    # it gets hidden / 64 query heads (attn_q and attn_output H x H: ~1 % of a layer's expert weights).
    heads = 1 if arch == "qwen3moe" else h // HEAD_DIM
    w.add_head_count(heads)
    w.add_head_count_kv(1)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_expert_count(e)
    w.add_expert_used_count(k)
    w.add_expert_feed_forward_length(f)
    if s:
        w.add_expert_shared_feed_forward_length(s)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_token_list([b"<unk>", b"<s>", b"</s>"] + [f"t{i}".encode() for i in range(VOCAB - 3)])
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types([2, 3, 3] + [1] * (VOCAB - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def normal(*dims, fan_in):  # numpy shape [outer, ..., inner] (gguf-py reverses it into ggml's ne order)
        return (rng.standard_normal(dims, dtype=np.float32) * np.float32(1 / np.sqrt(fan_in))).astype(np.float16)

    ones = lambda n: np.ones(n, np.float32)
    w.add_tensor("token_embd.weight", normal(VOCAB, h, fan_in=1))
    w.add_tensor("output_norm.weight", ones(h))
    w.add_tensor("output.weight", normal(VOCAB, h, fan_in=h))
    for L in range(layers):
        b = f"blk.{L}."
        w.add_tensor(b + "attn_norm.weight", ones(h))
        w.add_tensor(b + "attn_q.weight", normal(heads * HEAD_DIM, h, fan_in=h))
        w.add_tensor(b + "attn_k.weight", normal(HEAD_DIM, h, fan_in=h))
        w.add_tensor(b + "attn_v.weight", normal(HEAD_DIM, h, fan_in=h))
        w.add_tensor(b + "attn_output.weight", normal(h, heads * HEAD_DIM, fan_in=heads * HEAD_DIM))
        if arch == "qwen3moe":
            w.add_tensor(b + "attn_q_norm.weight", ones(HEAD_DIM))
            w.add_tensor(b + "attn_k_norm.weight", ones(HEAD_DIM))
        else:
            w.add_tensor(b + "attn_q.bias", np.zeros(heads * HEAD_DIM, np.float32))
            for t in ("k", "v"):
                w.add_tensor(b + f"attn_{t}.bias", np.zeros(HEAD_DIM, np.float32))
        w.add_tensor(b + "ffn_norm.weight", ones(h))
        w.add_tensor(b + "ffn_gate_inp.weight", (rng.standard_normal((e, h), dtype=np.float32) / np.sqrt(h)).astype(np.float32))
        w.add_tensor(b + "ffn_gate_exps.weight", normal(e, f, h, fan_in=h))
        w.add_tensor(b + "ffn_up_exps.weight", normal(e, f, h, fan_in=h))
        w.add_tensor(b + "ffn_down_exps.weight", normal(e, h, f, fan_in=f))
        if s:
            w.add_tensor(b + "ffn_gate_inp_shexp.weight", (rng.standard_normal((1, h), dtype=np.float32) / np.sqrt(h)).astype(np.float32))
            w.add_tensor(b + "ffn_gate_shexp.weight", normal(s, h, fan_in=h))
            w.add_tensor(b + "ffn_up_shexp.weight", normal(s, h, fan_in=h))
            w.add_tensor(b + "ffn_down_shexp.weight", normal(h, s, fan_in=s))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def quantize(src, dst, ftype):
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize {src} -> {dst} (ftype {ftype}) failed: {rc}")


def time_llamacpp(path, layers, decode_steps, repeats):
    """(T=512 ms per layer, T=1 ms per layer) from llama-cpp-python with 2 threads."""
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=1024, n_batch=512, n_ubatch=512, n_threads=2, n_threads_batch=2,
                verbose=False, seed=1)
    rng = np.random.default_rng(3)
    prompt = [int(t) for t in rng.integers(3, VOCAB, 512)]
    prefill = []
    for _ in range(repeats + 1):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        prefill.append(time.perf_counter() - t0)
    decode = []
    llm.reset()
    llm.eval(prompt[:8])
    for i in range(decode_steps + 2):
        t0 = time.perf_counter()
        llm.eval([prompt[8 + i]])
        decode.append(time.perf_counter() - t0)
    return (1e3 * statistics.median(prefill[1:]) / layers, 1e3 * statistics.median(decode[2:]) / layers)


def time_moe(moe, path, layers, tokens, repeats, compute, check_tokens=1):
    """`moe run`'s median ms per forward, averaged over the model's MoE layers (a Q4_K_M file stores some layers'
    ffn_down_exps as Q6_K, as llama.cpp's time covers all of them), and the largest relative difference from the
    exact reference."""
    times, diffs = [], []
    for layer in range(layers):
        out = subprocess.run([moe, "run", "--checkpoint", path, "--layer", str(layer), "--tokens", str(tokens), "--repeats",
                              str(repeats), "--check-tokens", str(check_tokens), "--threads", "2", "--compute", compute,
                              "--json"], capture_output=True, text=True, check=True)
        report = json.loads(out.stdout)
        times.append(report["ms"])
        diffs.append(report["max_rel_diff"])
    return statistics.mean(times), max(diffs)


def write_json(path, rows, layers, version):
    with open(path, "w") as f:
        json.dump(dict(date=time.strftime("%Y-%m-%d"), machine=platform.processor() or platform.machine(),
                       llama_cpp_python=version, layers=layers, threads=2,
                       note="speedup = llama.cpp time / moe time (> 1: moe faster); moe_compute f32 is MoEKit's exact mode, "
                            "int8 llama.cpp's arithmetic (8-bit activations, integer dot products); moe_rel_diff is "
                            "int8's max relative difference from the exact reference on 64 tokens",
                       rows=rows), f, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moe", default=os.path.join(ROOT, ".build", "release", "moe"))
    ap.add_argument("--shapes", default="mixtral,qwen3,deepseek")
    ap.add_argument("--types", default="Q4_K_M,Q8_0,MXFP4")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--decode-steps", type=int, default=64)  # 16 left llama.cpp's T = 1 noisy (±20 %)
    ap.add_argument("--compute", default="int8,f32", help="moe's compute modes to time (moe run --compute)")
    ap.add_argument("--workdir", help="keep the GGUF files here (default: a temporary folder, removed)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import llama_cpp
    ftypes = {"Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M, "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
              "MXFP4": getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_MXFP4_MOE", 38)}
    work = args.workdir or tempfile.mkdtemp(prefix="moe-llamacpp-")
    os.makedirs(work, exist_ok=True)
    rows = []
    print(f"llama-cpp-python {llama_cpp.__version__}, {platform.processor() or platform.machine()}, 2 threads, "
          f"{args.layers} MoE layers per model", flush=True)
    print(f"{'shape':<9}{'type':<8}{'compute':<8}{'llama.cpp T=1':>15}{'moe T=1':>10}{'ratio':>7}{'llama.cpp T=512':>17}"
          f"{'moe T=512':>11}{'ratio':>7}{'rel diff':>10}", flush=True)
    for name in args.shapes.split(","):
        src = os.path.join(work, f"{name}-f16.gguf")
        if not os.path.exists(src):
            write_model(src, SHAPES[name], args.layers, seed=11)
        for qtype in args.types.split(","):
            path = os.path.join(work, f"{name}-{qtype.lower()}.gguf")
            if not os.path.exists(path):
                quantize(src, path, ftypes[qtype])
            l512, l1 = time_llamacpp(path, args.layers, args.decode_steps, args.repeats)
            for compute in args.compute.split(","):
                m1, _ = time_moe(args.moe, path, args.layers, 1, max(args.decode_steps, 5), compute)
                m512, diff = time_moe(args.moe, path, args.layers, 512, args.repeats, compute, check_tokens=64)
                row = dict(shape=name, type=qtype, moe_compute=compute, llamacpp_t1_ms=l1, moe_t1_ms=m1, llamacpp_t512_ms=l512,
                           moe_t512_ms=m512, t1_speedup=l1 / m1, t512_speedup=l512 / m512, moe_rel_diff=diff)
                rows.append(row)
                if args.json:  # after every row, so a failure later keeps what was measured
                    write_json(args.json, rows, args.layers, llama_cpp.__version__)
                print(f"{name:<9}{qtype:<8}{compute:<8}{l1:>12.3f} ms{m1:>7.3f} ms{l1 / m1:>6.2f}x{l512:>14.1f} ms{m512:>8.1f} ms"
                      f"{l512 / m512:>6.2f}x{diff:>10.1e}", flush=True)
    if not args.workdir:
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
