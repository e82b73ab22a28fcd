#!/usr/bin/env python3
"""Generate MoEKit golden test fixtures with Hugging Face `transformers`.

What it makes
-------------
For each supported MoE architecture, a tiny randomly-initialised causal-LM is built with
`transformers`, saved with `save_pretrained` (exactly as HF writes it), reloaded from that
checkpoint in float32, and the feed-forward block of chosen layers (`model.model.layers[L].mlp`,
or `.feed_forward` for Llama-4; ONLY the FFN block: no norm, no residual) is run on random
hidden states. Output layout (under Tests/Fixtures/):

    <name>/checkpoint/            config.json + model.safetensors (or shards + index.json)
    <name>/layer<L>.safetensors   hidden_states            F32 [T,H] (olmoe: [B,S,H])
                                  expected_hidden_states   F32, same shape
                                  (MoE layers only:)
                                  router_logits            F32 [T,E] (GPT-OSS: incl. router bias)
                                  topk_ids                 I32 [T,K] (torch's slot order; DeepSeek unsorted)
                                  topk_weights             F32 [T,K] weights multiplying expert outputs
                                                           (Llama-4: sigmoid(top-k logit), scales the expert INPUT)
    manifest.json

Quantized fixtures (manifest key "quantization": "mxfp4" | "fp8"; T=7 tokens): gpt-oss-mxfp4,
deepseek-v3-fp8 and qwen3-moe-fp8 store their checkpoint as the official Hub releases do (MXFP4
`*_blocks`/`*_scales` experts; F8_E4M3 weights with a `weight_scale_inv` per 128x128 tile, F32 or BF16),
the rest BF16 (DeepSeek's correction bias F32). Their goldens come from a float32 model holding exactly
the dequantized weights (see `build_quantized` and the comments at the fixtures in `fixture_specs`); an
independent NumPy decoder of the written file must agree with those weights bit for bit.

Unquantized goldens are computed from the model reloaded from the written checkpoint with
`from_pretrained(dir, dtype=torch.float32)` (so the bf16 fixtures are F32 compute on bf16-rounded
weights). Hidden states are resampled until no MoE layer has a near-tie (relative gap < 1e-3)
between the k-th and (k+1)-th selection score of any token (DeepSeek: also the group scores).
The script also checks every golden against an independent re-implementation of
shared/spec/semantics.md that reads the tensors straight from the checkpoint files.

GGUF fixtures (Fixtures/manifest-gguf.json; qwen3moe-gguf, deepseek2-gguf, mixtral-gguf, gpt-oss-gguf,
qwen2moe-gguf): <name>/model.gguf (mixtral-gguf: two shards model-0000i-of-00002.gguf) written with gguf-py's
GGUFWriter under llama.cpp's tensor names, dims and keys (docs/GGUF.md), the feed-forward weights in ggml block
types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, MXFP4; routers, biases and norms F32, as llama-quantize
leaves them), plus the same layer<L>.safetensors. Their goldens come from the float32 transformers model holding
exactly what the file stores, dequantized with gguf-py's `gguf.quants.dequantize` (see `build_gguf`).

Pinned versions (scripts/requirements-fixtures.txt): torch==2.15.0, transformers==5.23.0,
safetensors==0.8.0, gguf==0.19.0, numpy==2.4.6 (CPU suffices). Fully deterministic (fixed seeds).

How to run (from the repository root):
    pip install -r scripts/requirements-fixtures.txt && python3 scripts/make_fixtures.py
Rebuild only some fixtures, leaving the other folders and manifest entries untouched:
    python3 scripts/make_fixtures.py --only gpt-oss-mxfp4,deepseek-v3-fp8,qwen3-moe-fp8
    python3 scripts/make_fixtures.py --only qwen3moe-gguf,deepseek2-gguf,mixtral-gguf,gpt-oss-gguf,qwen2moe-gguf
"""
import json
import math
import os
import shutil
import sys
import tempfile

import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from safetensors.torch import save_file

torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)
transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures")

H = 32
VOCAB = 32
T = 14


def common(**kw):
    d = dict(vocab_size=VOCAB, hidden_size=H, num_attention_heads=2, num_key_value_heads=2,
             max_position_embeddings=64, tie_word_embeddings=False)
    d.update(kw)
    return d


# --------------------------------------------------------------------------------------------
# Randomisation
# --------------------------------------------------------------------------------------------
def randomise(model, seed, transposed_experts=False, gate_up_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.ndim == 1:
                if "norm" in name or "sinks" in name:
                    val = 1.0 + 0.1 * torch.randn(p.shape, generator=g)
                else:  # bias
                    val = 0.5 * torch.randn(p.shape, generator=g)
            elif "embed_tokens" in name:
                val = torch.randn(p.shape, generator=g)
            else:
                if p.ndim == 3 and transposed_experts:
                    fan_in = p.shape[1]  # stored [E, in, out]
                else:
                    fan_in = p.shape[-1]  # nn.Linear orientation [.., out, in]
                val = 1.5 / math.sqrt(fan_in) * torch.randn(p.shape, generator=g)
            if "gate_up_proj" in name:
                val = val * gate_up_scale
            p.copy_(val.to(p.dtype))
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(0.3 * torch.randn(b.shape, generator=g))


# --------------------------------------------------------------------------------------------
# Routing capture and tie checks
# --------------------------------------------------------------------------------------------
def ffn_block(model, arch, L):
    layer = model.model.layers[L]
    return layer.feed_forward if arch == "llama4_text" else layer.mlp


def is_moe(block, arch):
    if arch == "gpt_oss":
        return True
    if arch == "llama4_text":
        return hasattr(block, "router")
    return hasattr(block, "gate") and hasattr(block, "experts")


def router_module(block, arch):
    return block.router if arch in ("gpt_oss", "llama4_text") else block.gate


def rel_gap_ok(vals, k, tol=3e-3):
    """vals [T,E] (sorted descending computed here); gap between k-th and (k+1)-th."""
    s = torch.sort(vals, dim=-1, descending=True).values
    a, b = s[:, k - 1], s[:, k]
    finite = torch.isfinite(b)
    gap = (a - b)
    scale = torch.maximum(a.abs(), b.abs())
    ok = (~finite) | ((gap > tol * scale) & (gap > 1e-6))
    return bool(ok.all()), float(torch.where(finite, gap / scale.clamp_min(1e-12), torch.tensor(1e9)).min())


def selection_ok(arch, cfg, logits):
    """logits [T,E] raw router logits (float32)."""
    if arch in ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe"):
        return rel_gap_ok(torch.softmax(logits.float(), -1), cfg.num_experts_per_tok)
    if arch in ("gpt_oss", "llama4_text"):
        return rel_gap_ok(logits.float(), cfg.num_experts_per_tok)
    if arch == "deepseek_v3":
        raise ValueError("use deepseek_ok")
    raise ValueError(arch)


def deepseek_ok(block, cfg, logits):
    s = torch.sigmoid(logits.float())
    c = s + block.gate.e_score_correction_bias.float()
    Tn, E = c.shape
    G = cfg.n_group
    gs = c.view(Tn, G, E // G).topk(2, dim=-1)[0].sum(-1)
    ok1, m1 = rel_gap_ok(gs, cfg.topk_group)
    gidx = torch.topk(gs, cfg.topk_group, dim=-1)[1]
    gmask = torch.zeros_like(gs).scatter_(1, gidx, 1).bool()
    cm = c.masked_fill(~gmask.unsqueeze(-1).expand(Tn, G, E // G).reshape(Tn, E), float("-inf"))
    ok2, m2 = rel_gap_ok(cm, cfg.num_experts_per_tok)
    return ok1 and ok2, min(m1, m2)


def run_layer(model, arch, L, x):
    """Runs the FFN block of layer L on x ([T,H] or [B,S,H]); returns dict of golden tensors."""
    cfg = model.config
    block = ffn_block(model, arch, L)
    moe = is_moe(block, arch)
    captured = {}
    hook = None
    if moe:
        def h(mod, inp, out):
            captured["out"] = out
        hook = router_module(block, arch).register_forward_hook(h)
    x3 = x if x.dim() == 3 else x.unsqueeze(0)
    with torch.no_grad():
        y = block(x3)
    if hook is not None:
        hook.remove()
    if isinstance(y, tuple):  # GPT-OSS and Llama-4 return (hidden, router stuff)
        y = y[0]
    y = y.reshape(x.shape)
    res = {"hidden_states": x.contiguous(), "expected_hidden_states": y.float().contiguous()}
    if moe:
        out = captured["out"]
        if arch == "llama4_text":
            scores, logits = out
            K = cfg.num_experts_per_tok
            ids = torch.topk(logits, K, dim=1)[1]  # same call as Llama4Router.forward
            w = scores.gather(1, ids)
        else:
            logits, w, ids = out
        res["router_logits"] = logits.float().contiguous()
        res["topk_ids"] = ids.to(torch.int32).contiguous()
        res["topk_weights"] = w.float().contiguous()
    return res, moe


# --------------------------------------------------------------------------------------------
# Independent reference (semantics.md) straight from the checkpoint tensors
# --------------------------------------------------------------------------------------------
def load_ckpt(d):
    tensors = {}
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(d, fn), "pt") as f:
                for k in f.keys():
                    tensors[k] = f.get_tensor(k).float()
    return tensors


def swiglu(x, wg, wu, wd):
    return F.linear(F.silu(F.linear(x, wg)) * F.linear(x, wu), wd)


def reference(arch, cfg, W, L, x, moe):
    x = x.reshape(-1, x.shape[-1]).double()
    W = {k: v.double() for k, v in W.items()}
    ff = "feed_forward" if arch == "llama4_text" else ("block_sparse_moe" if arch == "mixtral" and f"model.layers.{L}.block_sparse_moe.gate.weight" in W else "mlp")
    p = f"model.layers.{L}.{ff}."
    if not moe:
        return swiglu(x, W[p + "gate_proj.weight"], W[p + "up_proj.weight"], W[p + "down_proj.weight"]), None
    K = cfg.num_experts_per_tok

    def expert(e, xin):
        if p + "experts.gate_up_proj" in W and arch not in ("gpt_oss", "llama4_text"):
            gu = W[p + "experts.gate_up_proj"][e]  # [2F, H]
            Fi = gu.shape[0] // 2
            return swiglu(xin, gu[:Fi], gu[Fi:], W[p + "experts.down_proj"][e])
        if arch == "mixtral":
            q = p + f"experts.{e}."
            return swiglu(xin, W[q + "w1.weight"], W[q + "w3.weight"], W[q + "w2.weight"])
        if arch == "llama4_text":
            gu = W[p + "experts.gate_up_proj"][e]  # [H, 2F]
            Fi = gu.shape[1] // 2
            return (F.silu(xin @ gu[:, :Fi]) * (xin @ gu[:, Fi:])) @ W[p + "experts.down_proj"][e]
        if arch == "gpt_oss":
            h = xin @ W[p + "experts.gate_up_proj"][e] + W[p + "experts.gate_up_proj_bias"][e]
            lim = cfg.swiglu_limit
            gate, up = h[:, 0::2].clamp(max=lim), h[:, 1::2].clamp(-lim, lim)
            a = (up + 1) * gate * torch.sigmoid(cfg.swiglu_alpha * gate)
            return a @ W[p + "experts.down_proj"][e] + W[p + "experts.down_proj_bias"][e]
        q = p + f"experts.{e}."
        return swiglu(xin, W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"])

    if arch == "gpt_oss":
        logits = F.linear(x, W[p + "router.weight"], W[p + "router.bias"])
    elif arch == "llama4_text":
        logits = F.linear(x, W[p + "router.weight"])
    else:
        logits = F.linear(x, W[p + "gate.weight"])
    Tn, E = logits.shape
    y = torch.zeros_like(x)
    if arch in ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe"):
        pr = torch.softmax(logits, -1)
        w, i = torch.topk(pr, K, -1)
        norm = True if arch == "mixtral" else cfg.norm_topk_prob
        if norm:
            w = w / w.sum(-1, keepdim=True)
    elif arch == "deepseek_v3":
        s = torch.sigmoid(logits)
        c = s + W[p + "gate.e_score_correction_bias"]
        G = cfg.n_group
        gs = c.view(Tn, G, E // G).topk(2, -1)[0].sum(-1)
        gi = torch.topk(gs, cfg.topk_group, -1)[1]
        gm = torch.zeros_like(gs).scatter_(1, gi, 1).bool()
        c = c.masked_fill(~gm.unsqueeze(-1).expand(Tn, G, E // G).reshape(Tn, E), float("-inf"))
        i = torch.topk(c, K, -1)[1]
        w = s.gather(1, i)
        if cfg.norm_topk_prob:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        w = w * cfg.routed_scaling_factor
    elif arch == "gpt_oss":
        v, i = torch.topk(logits, K, -1)
        w = torch.softmax(v, -1)
    elif arch == "llama4_text":
        v, i = torch.topk(logits, K, -1)
        w = torch.sigmoid(v)
    for t in range(Tn):
        for k in range(K):
            e = int(i[t, k])
            if arch == "llama4_text":
                y[t] += expert(e, (w[t, k] * x[t:t + 1]))[0]
            else:
                y[t] += w[t, k] * expert(e, x[t:t + 1])[0]
    if arch == "qwen2_moe":
        q = p + "shared_expert."
        sh = swiglu(x, W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"])
        y += torch.sigmoid(F.linear(x, W[p + "shared_expert_gate.weight"])) * sh
    elif arch == "deepseek_v3":
        q = p + "shared_experts."
        y += swiglu(x, W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"])
    elif arch == "llama4_text":
        q = p + "shared_expert."
        y += swiglu(x, W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"])
    return y, set_rows(i)


def set_rows(i):
    return [sorted(int(v) for v in row) for row in i]


# --------------------------------------------------------------------------------------------
# Fixture builder
# --------------------------------------------------------------------------------------------
def golden_layers(name, fdir, model, arch, W, layers, shape, input_seed):
    """Runs the FFN block of each layer in `layers` on random inputs (resampled until no near-tie), checks it
    against `reference` on the float tensors W (checkpoint names), writes <fdir>/layer<L>.safetensors."""
    mcfg = model.config
    entries = []
    for L in layers:
        block = ffn_block(model, arch, L)
        moe = is_moe(block, arch)
        s = input_seed * 1000 + L * 37
        for attempt in range(200):
            g = torch.Generator().manual_seed(s + attempt)
            x = torch.randn(shape, generator=g)
            res, _ = run_layer(model, arch, L, x)
            if not moe:
                break
            if arch == "deepseek_v3":
                ok, margin = deepseek_ok(block, mcfg, res["router_logits"])
            else:
                ok, margin = selection_ok(arch, mcfg, res["router_logits"])
            if ok:
                break
        else:
            raise RuntimeError(f"{name} L{L}: could not avoid ties")
        # independent check from the checkpoint tensors
        ref, ref_sets = reference(arch, mcfg, W, L, x, moe)
        err = (ref.float().reshape(x.shape) - res["expected_hidden_states"]).abs().max().item()
        scale = res["expected_hidden_states"].abs().max().item()
        assert err <= 1e-4 * max(1.0, scale), f"{name} L{L}: reference mismatch {err} (scale {scale})"
        if moe:
            assert ref_sets == set_rows(res["topk_ids"]), f"{name} L{L}: selection mismatch"
        info = f"{name} L{L} {'moe' if moe else 'dense'} attempt={attempt} ref_err={err:.2e} |y|max={scale:.2f}"
        if moe:
            info += f" min_rel_gap={margin:.3g}"
        if arch == "gpt_oss" and moe:
            p = f"model.layers.{L}.mlp.experts."
            hs = torch.einsum("th,ehf->tef", x.reshape(-1, x.shape[-1]), W[p + "gate_up_proj"]) + W[p + "gate_up_proj_bias"]
            sel = hs[torch.arange(hs.shape[0])[:, None], res["topk_ids"].long()]
            info += f" clamped_gate={int((sel[..., 0::2] > 7).sum())} clamped_up={int((sel[..., 1::2].abs() > 7).sum())}"
        print(info)
        save_file(res, os.path.join(fdir, f"layer{L}.safetensors"))
        entries.append({"layer": L, "kind": "moe" if moe else "dense"})
    return entries


def build(name, model_cls, cfg, seed, layers, save_dtype=torch.float32, shard=None,
          save_original_format=True, input_shape=None, gate_up_scale=1.0, input_seed=None, min_expert_rows=None):
    arch = cfg.model_type
    fdir = os.path.join(OUT, name)
    if os.path.exists(fdir):
        shutil.rmtree(fdir)
    ckpt = os.path.join(fdir, "checkpoint")
    os.makedirs(ckpt)
    torch.manual_seed(seed)
    model = model_cls(cfg).float().eval()
    randomise(model, seed, transposed_experts=arch in ("gpt_oss", "llama4_text"), gate_up_scale=gate_up_scale)
    kw = {}
    if shard:
        kw["max_shard_size"] = shard
    if not save_original_format:
        kw["save_original_format"] = False
    if save_dtype == torch.float32:
        model.save_pretrained(ckpt, **kw)
    else:
        # Go through from_pretrained(dtype=bf16) so HF's own keep-in-fp32 rules apply.
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            m2 = model_cls.from_pretrained(tmp, dtype=save_dtype)
            m2.save_pretrained(ckpt, **kw)
            del m2
    for fn in os.listdir(ckpt):
        if not (fn == "config.json" or fn.endswith(".safetensors") or fn.endswith(".safetensors.index.json")):
            os.remove(os.path.join(ckpt, fn))
    del model
    model = model_cls.from_pretrained(ckpt, dtype=torch.float32).eval()
    W = load_ckpt(ckpt)
    entries = golden_layers(name, fdir, model, arch, W, layers, input_shape or (T, H),
                            input_seed if input_seed is not None else seed)
    if min_expert_rows is not None:
        for L in layers:
            ids = safe_open(os.path.join(fdir, f"layer{L}.safetensors"), "pt").get_tensor("topk_ids")
            rows = torch.bincount(ids.reshape(-1).long())
            print(f"{name} L{L} rows per expert {rows.tolist()}")
            assert int(rows.max()) >= min_expert_rows, f"{name} L{L}: no expert reaches {min_expert_rows} rows"
    return {"name": name, "architecture": arch, "checkpoint_dtype": "bfloat16" if save_dtype == torch.bfloat16 else "float32",
            "sharded": os.path.exists(os.path.join(ckpt, "model.safetensors.index.json")), "layers": entries}


# --------------------------------------------------------------------------------------------
# Quantized checkpoints stored as the Hub stores them (MXFP4 GPT-OSS, block-FP8 DeepSeek-V3 / Qwen3-MoE)
# --------------------------------------------------------------------------------------------
MX_BLOCK = 32     # MXFP4: one E8M0 scale per 32 consecutive input elements of a row
FP8_BLOCK = 128   # block FP8: one scale per 128x128 tile, partial tiles at the right and bottom edges
E4M3_MAX = 448.0
# decision thresholds between neighbouring E2M1 magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6
E2M1_MIDPOINTS = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])


def mxfp4_quantize(w):
    """w [E, R, C] float32 in checkpoint orientation (R = output rows, C = inputs, C % 32 == 0).
    Returns blocks U8 [E, R, C/32, 16] (element 2j in the low nibble of byte j, 2j+1 in the high nibble)
    and scales U8 E8M0 [E, R, C/32] (scale = 2^(byte-127)): the smallest power of two with |w|/scale <= 6,
    then round-to-nearest-even onto E2M1, sign bit 3 (small negatives give the code -0)."""
    E, R, C = w.shape
    wb = w.reshape(E, R, C // MX_BLOCK, MX_BLOCK)
    amax = wb.abs().amax(-1)
    assert bool((amax > 0).all())
    e = torch.ceil(torch.log2(amax / 6.0))
    e = torch.where(amax / torch.exp2(e) > 6.0, e + 1, e)
    e = torch.where(amax / torch.exp2(e - 1) <= 6.0, e - 1, e)
    v = wb / torch.exp2(e)[..., None]                   # exact: power-of-two scaling
    mag = v.abs().clamp(max=6.0)
    idx = torch.bucketize(mag, E2M1_MIDPOINTS)          # ties go to the lower magnitude ...
    tie = (idx < 7) & (mag == E2M1_MIDPOINTS[idx.clamp(max=6)]) & (idx % 2 == 1)
    idx = idx + tie.long()                              # ... unless that one has an odd mantissa (RNE)
    code = (idx | (torch.signbit(v).long() << 3)).to(torch.uint8)
    blocks = code[..., 0::2] | (code[..., 1::2] << 4)
    sc = e.long() + 127
    assert bool(((sc >= 0) & (sc <= 254)).all())        # 0xFF (NaN) is never emitted
    return blocks.contiguous(), sc.to(torch.uint8).contiguous()


def expand_blocks(s, R, C, br, bc):
    return s.repeat_interleave(br, 0).repeat_interleave(bc, 1)[:R, :C]


def fp8_block_quantize(w, scale_dtype):
    """w [R, C] float32 -> (F8_E4M3 codes [R, C], weight_scale_inv [ceil(R/128), ceil(C/128)] in scale_dtype).
    scale = amax(tile)/448 (rounded to scale_dtype when that is bf16); code = RNE(w / scale) in e4m3."""
    R, C = w.shape
    nr, nc = -(-R // FP8_BLOCK), -(-C // FP8_BLOCK)
    pad = torch.zeros(nr * FP8_BLOCK, nc * FP8_BLOCK)
    pad[:R, :C] = w.abs()
    amax = pad.reshape(nr, FP8_BLOCK, nc, FP8_BLOCK).amax(dim=(1, 3))
    assert bool((amax > 0).all())
    scale = (amax / E4M3_MAX).to(scale_dtype)
    q = (w / expand_blocks(scale.float(), R, C, FP8_BLOCK, FP8_BLOCK)).clamp(-E4M3_MAX, E4M3_MAX)
    return q.to(torch.float8_e4m3fn).contiguous(), scale.contiguous()


def fp8_block_dequantize(code, scale_inv):
    """float(code) * float32(scale_inv[r//128, c//128]), one float32 rounding."""
    R, C = code.shape
    return code.float() * expand_blocks(scale_inv.float(), R, C, FP8_BLOCK, FP8_BLOCK)


def block_factors(shape, br, bc, g, log2_choices=None):
    """Random amplitude factor per (br x bc) tile of the last two dims, so that neighbouring tiles get clearly
    different scales (a kernel that reads the wrong tile's scale must fail)."""
    *pre, R, C = shape
    nr, nc = -(-R // br), -(-C // bc)
    if log2_choices is None:
        f = torch.exp2(2.0 * torch.rand((*pre, nr, nc), generator=g) - 1.0)  # 2^U(-1, 1)
    else:
        k = torch.randint(len(log2_choices), (*pre, nr, nc), generator=g)
        f = torch.exp2(torch.tensor(log2_choices, dtype=torch.float32)[k])
    return f.repeat_interleave(br, -2).repeat_interleave(bc, -1)[..., :R, :C]


# --- independent NumPy decoders, written from the formats' definitions (no torch, no transformers) ---------
def np_read_safetensors(path):
    """{name: (dtype, shape, ndarray)} straight from the file bytes; BF16 is widened to float32 exactly."""
    import numpy as np
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = raw[8 + n + a:8 + n + b]
        dt = v["dtype"]
        if dt == "BF16":
            arr = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F32":
            arr = np.frombuffer(buf, "<f4")
        elif dt in ("U8", "F8_E4M3"):
            arr = np.frombuffer(buf, np.uint8)
        else:
            raise ValueError(dt)
        out[k] = (dt, v["shape"], arr.reshape(v["shape"]))
    return out


def np_e4m3_values():
    import numpy as np
    t = np.zeros(256, np.float32)
    for byte in range(256):
        sign = -1.0 if byte & 0x80 else 1.0
        e, m = (byte >> 3) & 0xF, byte & 7
        if e == 15 and m == 7:
            t[byte] = np.nan
        elif e == 0:
            t[byte] = sign * (m / 8.0) * 2.0 ** -6
        else:
            t[byte] = sign * (1.0 + m / 8.0) * 2.0 ** (e - 7)
    return t


def np_dequantize_checkpoint(path):
    """Float32 tensors under the unquantized checkpoint names (GPT-OSS experts as [E, in, out], i.e. transposed
    back), decoded by NumPy only: E2M1 [0,.5,1,1.5,2,3,4,6] with sign bit 3 and E8M0 = 2^(e-127);
    FP8: e4m3 value * its tile's scale_inv (F32 or BF16), product in float32."""
    import numpy as np
    st = np_read_safetensors(path)
    e2m1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6], np.float32)
    e4m3 = np_e4m3_values()
    out = {}
    for k, (dt, shape, a) in st.items():
        if k.endswith("_scales") or k.endswith("_scale_inv"):
            continue
        if k.endswith("_blocks"):
            scales = st[k[:-len("_blocks")] + "_scales"][2]
            codes = np.stack([a & 0x0F, a >> 4], axis=-1).reshape(*a.shape[:-1], 2 * a.shape[-1])
            vals = np.where(codes & 8, -e2m1[codes & 7], e2m1[codes & 7]).astype(np.float32)
            vals = vals * np.ldexp(np.float32(1.0), scales.astype(np.int32) - 127).astype(np.float32)[..., None]
            vals = vals.reshape(*scales.shape[:-1], -1)          # [E, rows, in]
            out[k[:-len("_blocks")]] = np.ascontiguousarray(np.swapaxes(vals, 1, 2))
        elif dt == "F8_E4M3":
            s = st[k + "_scale_inv"][2].astype(np.float32)
            R, C = a.shape
            s = np.repeat(np.repeat(s, FP8_BLOCK, 0), FP8_BLOCK, 1)[:R, :C]
            out[k] = (e4m3[a] * s).astype(np.float32)
        else:
            out[k] = a.astype(np.float32)
    return out


def same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype == torch.float32 and torch.equal(a.view(torch.int32), b.view(torch.int32))


def build_quantized(name, model_cls, cfg, seed, layers, quant, quantization_config, input_shape,
                    fp8_scale_dtype=torch.float32, gate_up_scale=1.0):
    """Writes <name>/checkpoint as the Hub stores the official quantized release (see the callers), then the
    goldens of a float32 model holding exactly the dequantized weights."""
    arch = cfg.model_type
    fdir = os.path.join(OUT, name)
    if os.path.exists(fdir):
        shutil.rmtree(fdir)
    ckpt = os.path.join(fdir, "checkpoint")
    os.makedirs(ckpt)
    torch.manual_seed(seed)
    model = model_cls(cfg).float().eval()
    randomise(model, seed, transposed_experts=arch == "gpt_oss", gate_up_scale=gate_up_scale)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)  # float32 under HF's checkpoint names
        src = load_ckpt(tmp)
        with open(os.path.join(tmp, "config.json")) as f:
            cfg_dict = json.load(f)
    del model

    g = torch.Generator().manual_seed(seed * 7 + 1)
    stored = {}
    for k in sorted(src):
        v = src[k]
        if quant == "mxfp4" and k.endswith(("mlp.experts.gate_up_proj", "mlp.experts.down_proj")):
            w = v.transpose(1, 2).contiguous()  # [E, in, out] (x @ W) -> checkpoint rows = outputs
            w = w * block_factors(w.shape, 1, MX_BLOCK, g, log2_choices=[-1.0, 0.0, 1.0])
            stored[k + "_blocks"], stored[k + "_scales"] = mxfp4_quantize(w)
        elif (quant == "fp8" and k.startswith("model.layers.") and k.endswith(".weight") and v.ndim == 2
              and not k.endswith("mlp.gate.weight")):
            w = v * block_factors(v.shape, FP8_BLOCK, FP8_BLOCK, g)
            stored[k], stored[k + "_scale_inv"] = fp8_block_quantize(w, fp8_scale_dtype)
        elif k.endswith("e_score_correction_bias"):
            stored[k] = v.contiguous()  # F32 in the DeepSeek-V3 release
        else:
            stored[k] = v.to(torch.bfloat16).contiguous()
    save_file(stored, os.path.join(ckpt, "model.safetensors"), metadata={"format": "pt"})
    qcfg = dict(cfg_dict, dtype="bfloat16", quantization_config=quantization_config)
    with open(os.path.join(ckpt, "config.json"), "w") as f:
        f.write(json.dumps(qcfg, indent=2, sort_keys=True) + "\n")

    # transformers-side dequantization to float32, under the unquantized checkpoint names
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    deq = {}
    for k, v in stored.items():
        if k.endswith(("_scales", "_scale_inv")):
            continue
        if k.endswith("_blocks"):
            base = k[:-len("_blocks")]
            deq[base] = convert_moe_packed_tensors(v, stored[base + "_scales"], dtype=torch.float32)  # [E, in, out]
        elif v.dtype == torch.float8_e4m3fn:
            deq[k] = fp8_block_dequantize(v, stored[k + "_scale_inv"])
        else:
            deq[k] = v.float()
    # the independent NumPy decode of the written file must agree bit for bit
    W = {k: torch.from_numpy(a.copy()) for k, a in np_dequantize_checkpoint(os.path.join(ckpt, "model.safetensors")).items()}
    assert sorted(W) == sorted(deq) == sorted(src), f"{name}: tensor names differ"
    for k in deq:
        assert same_bits(W[k], deq[k]), f"{name}: NumPy and torch dequantization differ on {k}"
    # float32 model holding exactly these weights (no quantizer involved), checked by a save round trip
    with tempfile.TemporaryDirectory() as tmp:
        save_file({k: v.contiguous() for k, v in deq.items()}, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(cfg_dict, f)
        model = model_cls.from_pretrained(tmp, dtype=torch.float32).eval()
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        back = load_ckpt(tmp)
    assert sorted(back) == sorted(deq) and all(same_bits(back[k], deq[k]) for k in deq), f"{name}: model weights differ"
    if quant == "mxfp4":
        # transformers' own loader of the MXFP4 checkpoint (dequantize=True, what it falls back to on CPU) must
        # give the same model
        mq = model_cls.from_pretrained(ckpt, dtype=torch.float32,
                                       quantization_config=transformers.Mxfp4Config(dequantize=True)).eval()
        sq, sm = mq.state_dict(), model.state_dict()
        assert sorted(sq) == sorted(sm) and all(same_bits(sq[k].float(), sm[k]) for k in sm), f"{name}: HF MXFP4 load differs"
        del mq

    if quant == "mxfp4":
        codes = torch.cat([torch.cat([(b & 15).flatten(), (b >> 4).flatten()]) for k, b in stored.items() if k.endswith("_blocks")])
        sc = torch.cat([s.flatten() for k, s in stored.items() if k.endswith("_scales")])
        assert len(torch.unique(codes)) == 16, f"{name}: not all 16 E2M1 codes occur"
        print(f"{name}: E2M1 codes used 16/16, E8M0 bytes {int(sc.min())}..{int(sc.max())} ({len(torch.unique(sc))} distinct)")
    else:
        n_fp8 = sum(1 for v in stored.values() if v.dtype == torch.float8_e4m3fn)
        n_partial = sum(1 for v in stored.values() if v.dtype == torch.float8_e4m3fn
                        and (v.shape[0] % FP8_BLOCK and v.shape[0] > FP8_BLOCK or v.shape[1] % FP8_BLOCK and v.shape[1] > FP8_BLOCK))
        print(f"{name}: {n_fp8} F8_E4M3 weights ({n_partial} with more than one tile and a partial edge tile)")

    entries = golden_layers(name, fdir, model, arch, W, layers, input_shape, seed)
    return {"name": name, "architecture": arch, "checkpoint_dtype": "bfloat16", "sharded": False,
            "quantization": quant, "layers": entries}


# --------------------------------------------------------------------------------------------
# GGUF files as llama.cpp's converter and llama-quantize write them (ggml block types)
# --------------------------------------------------------------------------------------------
# Each GGUF fixture is <name>/model.gguf (or <name>/model-0000i-of-0000N.gguf shards) holding the feed-forward
# tensors of a tiny random model under llama.cpp's names and ggml dims (docs/GGUF.md), in the ggml types given
# per block, plus a few tensors the MoE loader does not read (token_embd, norms). The expected values come from
# the float32 transformers model of the same config holding exactly the weights the file stores: every tensor
# is read back from the written file with gguf-py's GGUFReader and dequantized with `gguf.quants.dequantize`
# (llama.cpp's own Python, which follows ggml's dequantize_row_* bit for bit), mapped back to transformers'
# parameters and copied into the model. Their manifest is Fixtures/manifest-gguf.json (same layer files).
# gguf-py has no K-quant quantizer: Q4_K, Q5_K and Q6_K blocks are made here (ggml's block layout, a simple
# min/max fit of the 6-bit/8-bit group scales, codes rounded to nearest): valid blocks, not llama-quantize's
# search; only the stored blocks matter for the goldens.
def _f16_round(x):
    import numpy as np
    return np.asarray(x, np.float32).astype(np.float16)


def _k_scale_min_bytes(ls, lm):
    """[n, 8] 6-bit scales and mins -> the 12 bytes of ggml's get_scale_min_k4 layout."""
    import numpy as np
    ls, lm = ls.astype(np.uint8), lm.astype(np.uint8)
    out = np.zeros((ls.shape[0], 12), np.uint8)
    for j in range(4):
        out[:, j] = (ls[:, j] & 63) | ((ls[:, j + 4] >> 4) << 6)
        out[:, j + 4] = (lm[:, j] & 63) | ((lm[:, j + 4] >> 4) << 6)
        out[:, j + 8] = (ls[:, j + 4] & 0xF) | ((lm[:, j + 4] & 0xF) << 4)
    return out


def quantize_k(x, qtype):
    """x float32 [..., C] (C % 256 == 0) -> ggml Q4_K / Q5_K / Q6_K blocks, uint8 [..., C/256 * block bytes]."""
    import numpy as np
    from gguf import GGMLQuantizationType as Q
    shape = x.shape
    b = np.asarray(x, np.float32).reshape(-1, 256)
    n = b.shape[0]
    if qtype in (Q.Q4_K, Q.Q5_K):
        top = 15 if qtype == Q.Q4_K else 31
        g = b.reshape(n, 8, 32)
        lo = np.minimum(g.min(-1), 0)
        hi = g.max(-1)
        scale, mn = (hi - lo) / top, -lo
        ms, mm = scale.max(-1, keepdims=True), mn.max(-1, keepdims=True)
        ls = np.clip(np.rint(np.where(ms > 0, scale * 63 / np.where(ms > 0, ms, 1), 0)), 0, 63)
        lm = np.clip(np.rint(np.where(mm > 0, mn * 63 / np.where(mm > 0, mm, 1), 0)), 0, 63)
        d, dmin = _f16_round(ms[:, 0] / 63), _f16_round(mm[:, 0] / 63)
        dd = d.astype(np.float32)[:, None] * ls.astype(np.float32)
        dm = dmin.astype(np.float32)[:, None] * lm.astype(np.float32)
        q = np.where(dd[..., None] != 0, np.rint((g + dm[..., None]) / np.where(dd != 0, dd, 1)[..., None]), 0)
        q = np.clip(q, 0, top).astype(np.uint8)                       # [n, 8, 32]
        head = np.concatenate([d.view(np.uint8).reshape(n, 2), dmin.view(np.uint8).reshape(n, 2),
                               _k_scale_min_bytes(ls, lm)], axis=1)
        low = q & 0xF
        qs = (low[:, 0::2] | (low[:, 1::2] << 4)).reshape(n, 128)   # chunk j: groups 2j (low), 2j+1 (high)
        if qtype == Q.Q4_K:
            out = np.concatenate([head, qs], axis=1)
        else:
            qh = np.zeros((n, 32), np.uint8)
            for grp in range(8):
                qh |= ((q[:, grp] >> 4) & 1) << grp
            out = np.concatenate([head, qh, qs], axis=1)
    elif qtype == Q.Q6_K:
        g = b.reshape(n, 16, 16)
        idx = np.abs(g).argmax(-1)
        signed = np.take_along_axis(g, idx[..., None], -1)[..., 0]
        scale = signed / -32
        big = np.take_along_axis(scale, np.abs(scale).argmax(-1)[:, None], -1)  # the scale of largest magnitude
        inv = np.where(big != 0, -128 / np.where(big != 0, big, 1), 0)
        d = _f16_round(np.where(inv != 0, 1 / np.where(inv != 0, inv, 1), 0)[:, 0])
        sc = np.clip(np.rint(inv * scale), -128, 127).astype(np.int8)
        dd = d.astype(np.float32)[:, None] * sc.astype(np.float32)
        q = np.where(dd[..., None] != 0, np.rint(g / np.where(dd != 0, dd, 1)[..., None]), 0)
        q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(n, 256)
        ql, qh = np.zeros((n, 128), np.uint8), np.zeros((n, 64), np.uint8)
        for h in range(2):
            c = 128 * h
            q1, q2, q3, q4 = (q[:, c + 32 * i:c + 32 * i + 32] for i in range(4))
            ql[:, 64 * h:64 * h + 32] = (q1 & 0xF) | ((q3 & 0xF) << 4)
            ql[:, 64 * h + 32:64 * h + 64] = (q2 & 0xF) | ((q4 & 0xF) << 4)
            qh[:, 32 * h:32 * h + 32] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
        out = np.concatenate([ql, qh, sc.view(np.uint8), d.view(np.uint8).reshape(n, 2)], axis=1)
    else:
        raise ValueError(qtype)
    return np.ascontiguousarray(out.reshape(*shape[:-1], -1))


def ggml_store(values, qtype):
    """float32 numpy [..., in] -> what GGUFWriter.add_tensor takes for that ggml type (raw blocks as uint8)."""
    import numpy as np
    import gguf
    Q = gguf.GGMLQuantizationType
    v = np.ascontiguousarray(values, np.float32)
    if qtype == Q.F32:
        return v
    if qtype == Q.F16:
        return v.astype(np.float16)
    if qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        return quantize_k(v, qtype)
    return gguf.quants.quantize(v, qtype)


def gguf_tensor_map(arch, cfg, L, dense):
    """[(gguf name, transformers parameter name, to_gguf, from_gguf)] of the feed-forward part of layer L, in the
    order llama.cpp's converter writes them; to_gguf/from_gguf convert a float32 tensor between transformers'
    in-memory layout and the numpy array of ggml dims reversed (an expert stack [E, out, in])."""
    p, b = f"model.layers.{L}.mlp.", f"blk.{L}."
    same = (lambda t: t, lambda a: a)
    if dense:
        return [(b + f"ffn_{x}.weight", p + f"{x}_proj.weight", *same) for x in ("gate", "up", "down")]
    if arch == "gpt_oss":
        # transformers: gate_up_proj [E, H, 2F] (x @ W, gate in even columns, up in odd), down_proj [E, F, H];
        # llama.cpp's converter splits gate and up and stores every expert matrix [out, in].
        e = p + "experts."
        return [
            (b + "ffn_gate_inp.weight", p + "router.weight", *same),
            (b + "ffn_gate_inp.bias", p + "router.bias", *same),
            (b + "ffn_gate_exps.weight", e + "gate_up_proj", lambda t: t[:, :, 0::2].transpose(1, 2), ("interleave", 0)),
            (b + "ffn_up_exps.weight", e + "gate_up_proj", lambda t: t[:, :, 1::2].transpose(1, 2), ("interleave", 1)),
            (b + "ffn_down_exps.weight", e + "down_proj", lambda t: t.transpose(1, 2), lambda a: a.transpose(1, 2)),
            (b + "ffn_gate_exps.bias", e + "gate_up_proj_bias", lambda t: t[:, 0::2], ("interleave-bias", 0)),
            (b + "ffn_up_exps.bias", e + "gate_up_proj_bias", lambda t: t[:, 1::2], ("interleave-bias", 1)),
            (b + "ffn_down_exps.bias", e + "down_proj_bias", *same),
        ]
    F = cfg.moe_intermediate_size if hasattr(cfg, "moe_intermediate_size") else cfg.intermediate_size
    e = p + "experts."
    out = [
        (b + "ffn_gate_inp.weight", p + "gate.weight", *same),
        (b + "ffn_gate_exps.weight", e + "gate_up_proj", lambda t: t[:, :F], ("chunk", 0)),
        (b + "ffn_up_exps.weight", e + "gate_up_proj", lambda t: t[:, F:], ("chunk", 1)),
        (b + "ffn_down_exps.weight", e + "down_proj", *same),
    ]
    if arch == "deepseek_v3":
        out.insert(1, (b + "exp_probs_b.bias", p + "gate.e_score_correction_bias", *same))
        out += [(b + f"ffn_{x}_shexp.weight", p + f"shared_experts.{x}_proj.weight", *same) for x in ("gate", "up", "down")]
    if arch == "qwen2_moe":
        out.insert(1, (b + "ffn_gate_inp_shexp.weight", p + "shared_expert_gate.weight", *same))  # [1, H]: ggml [H, 1]
        out += [(b + f"ffn_{x}_shexp.weight", p + f"shared_expert.{x}_proj.weight", *same) for x in ("gate", "up", "down")]
    return out


def build_gguf(name, model_cls, cfg, seed, gguf_arch, keys, types, layers, input_shape, gate_up_scale=1.0,
               split_max_tensors=0, file_type=None):
    """Writes <name>/model.gguf (split in shards of at most `split_max_tensors` tensors when > 0) as llama.cpp
    writes the model, then the goldens of the float32 transformers model holding exactly the dequantized tensors.
    `keys(writer)` adds the architecture's metadata; `types[L]` maps a gguf tensor-name suffix ("ffn_gate_exps")
    to the ggml type of layer L's tensor (1-D tensors and routers stay F32, as llama-quantize leaves them)."""
    import numpy as np
    import gguf
    Q = gguf.GGMLQuantizationType
    arch = cfg.model_type
    fdir = os.path.join(OUT, name)
    if os.path.exists(fdir):
        shutil.rmtree(fdir)
    os.makedirs(fdir)
    torch.manual_seed(seed)
    model = model_cls(cfg).float().eval()
    randomise(model, seed, transposed_experts=arch == "gpt_oss", gate_up_scale=gate_up_scale)
    state = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    sparse = [is_moe(ffn_block(model, arch, L), arch) for L in range(cfg.num_hidden_layers)]

    w = gguf.GGUFWriter(os.path.join(fdir, "model.gguf"), gguf_arch, split_max_tensors=split_max_tensors)
    w.add_name(f"moekit-{name}")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    keys(w)
    if file_type is not None:
        w.add_file_type(file_type)
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    # tensors the MoE loader does not read, as the converter names them
    w.add_tensor("token_embd.weight", state["model.embed_tokens.weight"].numpy().astype(np.float16))
    w.add_tensor("output_norm.weight", state["model.norm.weight"].numpy())
    written = {}
    for L in range(cfg.num_hidden_layers):
        w.add_tensor(f"blk.{L}.attn_norm.weight", state[f"model.layers.{L}.input_layernorm.weight"].numpy())
        w.add_tensor(f"blk.{L}.ffn_norm.weight", state[f"model.layers.{L}.post_attention_layernorm.weight"].numpy())
        for gname, hname, to_gguf, _ in gguf_tensor_map(arch, cfg, L, dense=not sparse[L]):
            v = to_gguf(state[hname]).contiguous().numpy()
            role = gname.split(".")[2]
            qtype = types[L].get(role, Q.F32) if gname.endswith(".weight") and v.ndim >= 2 and v.shape[0] > 1 else Q.F32
            data = ggml_store(v, qtype)
            w.add_tensor(gname, data, raw_dtype=qtype if qtype not in (Q.F32, Q.F16) else None)
            written[gname] = qtype
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    files = sorted(f for f in os.listdir(fdir) if f.endswith(".gguf"))

    # read back what the files hold, dequantize with gguf-py, map onto the transformers parameters
    stored = {}
    for fn in files:
        for t in gguf.GGUFReader(os.path.join(fdir, fn)).tensors:
            assert t.name not in stored, f"{name}: {t.name} in two shards"
            stored[t.name] = (t.tensor_type, np.array(gguf.quants.dequantize(t.data, t.tensor_type), np.float32))
    assert all(stored[k][0] == q for k, q in written.items()), f"{name}: stored types differ from the written ones"
    new = dict(state)
    for L in range(cfg.num_hidden_layers):
        for gname, hname, to_gguf, from_gguf in gguf_tensor_map(arch, cfg, L, dense=not sparse[L]):
            a = torch.from_numpy(stored[gname][1].copy()).reshape(to_gguf(state[hname]).shape)
            if callable(from_gguf):
                new[hname] = from_gguf(a).contiguous()
                continue
            how, part = from_gguf
            t = new[hname].clone()
            if how == "chunk":       # [E, 2F, H]: gate rows then up rows
                F = a.shape[1]
                t[:, part * F:(part + 1) * F] = a
            elif how == "interleave":  # [E, H, 2F]: gate even columns, up odd
                t[:, :, part::2] = a.transpose(1, 2)
            else:                      # [E, 2F] bias, interleaved
                t[:, part::2] = a
            new[hname] = t
    drift = max(float((new[k] - state[k]).abs().max() / state[k].abs().max().clamp_min(1e-30)) for k in state)
    assert drift < 0.25, f"{name}: quantization moved a tensor by {drift:.3f} of its range (quantizer broken?)"
    model.load_state_dict(new, strict=True)
    W = {k: v.float() for k, v in model.state_dict().items()}
    for k in new:
        assert same_bits(W[k], new[k].float()), f"{name}: model tensor {k} differs from the dequantized file"
    counts = {}
    for q in written.values():
        counts[q.name] = counts.get(q.name, 0) + 1
    print(f"{name}: {', '.join(files)} ({sum(os.path.getsize(os.path.join(fdir, f)) for f in files)} bytes), "
          f"types {counts}, max quantization drift {drift:.3f}")

    entries = golden_layers(name, fdir, model, arch, W, layers, input_shape, seed)
    types_by_layer = [{k.split(".")[2]: q.name for k, q in written.items() if k.startswith(f"blk.{L}.") and k.endswith(".weight")}
                      for L in range(cfg.num_hidden_layers)]
    return {"name": name, "architecture": arch, "gguf_architecture": gguf_arch, "checkpoint": files[0], "files": files,
            "ggml_types": types_by_layer, "layers": entries}


def gguf_fixture_specs():
    """[(name, thunk)] of the GGUF fixtures (manifest-gguf.json), as fixture_specs."""
    import gguf
    Q = gguf.GGMLQuantizationType
    tf = transformers
    specs = []

    def add(name, *args, **kw):
        specs.append((name, lambda: build_gguf(name, *args, **kw)))

    # qwen3moe as a Q4_K_M-style mix: H=256 so the K-quants' 256-blocks fit the expert inputs (gate/up read H),
    # F=32 (down reads F: a 32-block type). Block 0: gate/up Q4_K, down Q8_0; block 1: gate/up Q5_K, down Q5_0.
    q3 = tf.Qwen3MoeConfig(**common(hidden_size=256, intermediate_size=96, moe_intermediate_size=32, num_hidden_layers=2,
                                    num_experts=4, num_experts_per_tok=2, norm_topk_prob=True, head_dim=16))

    def q3_keys(w):
        w.add_feed_forward_length(96)
        w.add_expert_feed_forward_length(32)
        w.add_expert_count(4)
        w.add_expert_used_count(2)
    add("qwen3moe-gguf", tf.Qwen3MoeForCausalLM, q3, 901, "qwen3moe", q3_keys,
        [{"ffn_gate_exps": Q.Q4_K, "ffn_up_exps": Q.Q4_K, "ffn_down_exps": Q.Q8_0},
         {"ffn_gate_exps": Q.Q5_K, "ffn_up_exps": Q.Q5_K, "ffn_down_exps": Q.Q5_0}], [0, 1], (7, 256),
        file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M)

    # deepseek2 (DeepSeek-V3 routing): block 0 dense (Fd=64: gate/up Q6_K, down Q8_0), block 1 MoE with E=4 in 2
    # groups (1 kept), K=2, sigmoid scores, exp_probs_b, norm, scale 2.5; routed gate/up Q4_K, down Q4_0; one
    # shared expert (gate/up Q6_K, down Q8_0). H=256.
    ds = tf.DeepseekV3Config(**common(hidden_size=256, intermediate_size=64, moe_intermediate_size=32, num_hidden_layers=2,
                                      n_routed_experts=4, num_experts_per_tok=2, n_group=2, topk_group=1,
                                      n_shared_experts=1, first_k_dense_replace=1, norm_topk_prob=True,
                                      routed_scaling_factor=2.5, q_lora_rank=16, kv_lora_rank=16, qk_rope_head_dim=8,
                                      qk_nope_head_dim=8, v_head_dim=8, head_dim=8))

    def ds_keys(w):
        w.add_feed_forward_length(64)
        w.add_leading_dense_block_count(1)
        w.add_expert_feed_forward_length(32)
        w.add_expert_count(4)
        w.add_expert_used_count(2)
        w.add_expert_shared_count(1)
        w.add_expert_group_count(2)
        w.add_expert_group_used_count(1)
        w.add_expert_weights_scale(2.5)
        w.add_expert_weights_norm(True)
        w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    add("deepseek2-gguf", tf.DeepseekV3ForCausalLM, ds, 902, "deepseek2", ds_keys,
        [{"ffn_gate": Q.Q6_K, "ffn_up": Q.Q6_K, "ffn_down": Q.Q8_0},
         {"ffn_gate_exps": Q.Q4_K, "ffn_up_exps": Q.Q4_K, "ffn_down_exps": Q.Q4_0,
          "ffn_gate_shexp": Q.Q6_K, "ffn_up_shexp": Q.Q6_K, "ffn_down_shexp": Q.Q8_0}], [0, 1], (7, 256),
        file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M)

    # Mixtral as llama.cpp converts it (general.architecture llama with expert_count), split in two shards by the
    # writer: block 0 all Q4_0, block 1 gate/up Q4_1, down Q5_1. H=64, E=4, K=2, F=64.
    mix = tf.MixtralConfig(**common(hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_local_experts=4,
                                    num_experts_per_tok=2))

    def mix_keys(w):
        w.add_feed_forward_length(64)
        w.add_expert_count(4)
        w.add_expert_used_count(2)
    add("mixtral-gguf", tf.MixtralForCausalLM, mix, 903, "llama", mix_keys,
        [{"ffn_gate_exps": Q.Q4_0, "ffn_up_exps": Q.Q4_0, "ffn_down_exps": Q.Q4_0},
         {"ffn_gate_exps": Q.Q4_1, "ffn_up_exps": Q.Q4_1, "ffn_down_exps": Q.Q5_1}], [0, 1], (7, 64),
        split_max_tensors=8, file_type=gguf.LlamaFileType.MOSTLY_Q4_0)

    # gpt-oss as llama.cpp converts the MXFP4 release: experts ggml MXFP4 (gate and up as separate tensors),
    # router, router bias and expert biases F32. H=64, F=96, E=4, K=2; gate/up amplified so the clamp at 7 acts.
    go = tf.GptOssConfig(**common(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_local_experts=4,
                                  num_experts_per_tok=2, head_dim=16, swiglu_limit=7.0, sliding_window=8,
                                  layer_types=["sliding_attention", "full_attention"]))

    def go_keys(w):
        w.add_feed_forward_length(96)
        w.add_expert_feed_forward_length(96)
        w.add_expert_count(4)
        w.add_expert_used_count(2)
        w.add_sliding_window(8)
    mx = {"ffn_gate_exps": Q.MXFP4, "ffn_up_exps": Q.MXFP4, "ffn_down_exps": Q.MXFP4}
    add("gpt-oss-gguf", tf.GptOssForCausalLM, go, 904, "gpt-oss", go_keys, [mx, mx], [0, 1], (7, 64),
        gate_up_scale=2.0, file_type=gguf.LlamaFileType.MOSTLY_MXFP4_MOE)

    # qwen2moe: shared expert with its sigmoid gate ffn_gate_inp_shexp ([1, H] in transformers: ggml [H, 1], F32);
    # routed and shared experts Q8_0. H=64, E=4, K=2, F=32, Fs=64, both blocks MoE.
    q2 = tf.Qwen2MoeConfig(**common(hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                                    shared_expert_intermediate_size=64, num_hidden_layers=2, num_experts=4,
                                    num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[]))

    def q2_keys(w):
        w.add_feed_forward_length(96)
        w.add_expert_feed_forward_length(32)
        w.add_expert_shared_feed_forward_length(64)
        w.add_expert_count(4)
        w.add_expert_used_count(2)
    q8 = {k: Q.Q8_0 for k in ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps", "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp")}
    add("qwen2moe-gguf", tf.Qwen2MoeForCausalLM, q2, 905, "qwen2moe", q2_keys, [q8, q8], [0, 1], (7, 64),
        file_type=gguf.LlamaFileType.MOSTLY_Q8_0)
    return specs


def fixture_specs():
    """[(name, thunk)] in manifest order; each thunk builds one fixture and returns its manifest entry."""
    tf = transformers
    specs = []

    def add(name, *args, builder=None, **kw):
        specs.append((name, lambda: (builder or build)(name, *args, **kw)))

    mix = lambda: tf.MixtralConfig(**common(intermediate_size=16, num_hidden_layers=2, num_local_experts=8,
                                             num_experts_per_tok=2))
    add("mixtral-f32", tf.MixtralForCausalLM, mix(), 101, [0, 1])
    add("mixtral-bf16", tf.MixtralForCausalLM, mix(), 102, [0, 1], save_dtype=torch.bfloat16)
    # mixtral-large: big enough that parity covers the fast kernels' blocking, not just one tile: H=320 is ten
    # 32-wide output panels of the down projection and more than one 256-deep K-block of the intermediate one;
    # F=96 is three panels of gate and of up; T=400 tokens over E=4, K=2 puts ~200 rows on an expert, past the
    # 192-row block (the script asserts some expert gets more). Small attention (head_dim 8) keeps it ~1.3 MB.
    mix_large = tf.MixtralConfig(**common(hidden_size=320, intermediate_size=96, num_hidden_layers=1,
                                          num_local_experts=4, num_experts_per_tok=2, head_dim=8))
    add("mixtral-large", tf.MixtralForCausalLM, mix_large, 103, [0], save_dtype=torch.bfloat16,
        input_shape=(400, 320), min_expert_rows=193)

    q2 = tf.Qwen2MoeConfig(**common(intermediate_size=48, moe_intermediate_size=16, shared_expert_intermediate_size=24,
                                    num_hidden_layers=3, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False,
                                    decoder_sparse_step=1, mlp_only_layers=[1]))
    add("qwen2-moe", tf.Qwen2MoeForCausalLM, q2, 201, [0, 1])

    # expert width F=24 where experts are stored fused, so that 2F != H and the 3-D shapes are unambiguous
    q3 = lambda f: tf.Qwen3MoeConfig(**common(intermediate_size=48, moe_intermediate_size=f, num_hidden_layers=2,
                                            num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, head_dim=16))
    add("qwen3-moe", tf.Qwen3MoeForCausalLM, q3(16), 301, [0, 1], shard="40KB")
    add("qwen3-moe-fused", tf.Qwen3MoeForCausalLM, q3(24), 302, [0, 1], save_original_format=False)

    ds = lambda: tf.DeepseekV3Config(**common(intermediate_size=48, moe_intermediate_size=16, num_hidden_layers=3,
                                              n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2,
                                              n_shared_experts=1, first_k_dense_replace=1, norm_topk_prob=True,
                                              routed_scaling_factor=2.5, q_lora_rank=16, kv_lora_rank=16,
                                              qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=8, head_dim=8))
    add("deepseek-v3-f32", tf.DeepseekV3ForCausalLM, ds(), 401, [0, 1, 2])
    add("deepseek-v3-bf16", tf.DeepseekV3ForCausalLM, ds(), 402, [0, 1, 2], save_dtype=torch.bfloat16)

    go = tf.GptOssConfig(**common(intermediate_size=24, num_hidden_layers=2, num_local_experts=4, num_experts_per_tok=2,
                                  head_dim=16, swiglu_limit=7.0, sliding_window=8,
                                  layer_types=["sliding_attention", "full_attention"]))
    add("gpt-oss", tf.GptOssForCausalLM, go, 501, [0, 1], gate_up_scale=3.0)

    ol = tf.OlmoeConfig(**common(intermediate_size=16, num_hidden_layers=2, num_experts=8, num_experts_per_tok=2,
                                 norm_topk_prob=False, pad_token_id=1, eos_token_id=2))
    add("olmoe", tf.OlmoeForCausalLM, ol, 601, [0, 1], input_shape=(2, 7, H))

    l4 = lambda n_layers, k: tf.Llama4TextConfig(**common(intermediate_size=24, intermediate_size_mlp=40,
                                                          num_hidden_layers=n_layers, num_local_experts=4,
                                                          num_experts_per_tok=k, interleave_moe_layer_step=2,
                                                          head_dim=16, attention_chunk_size=8,
                                                          pad_token_id=0, bos_token_id=1, eos_token_id=2))
    add("llama4", tf.Llama4ForCausalLM, l4(4, 1), 701, [0, 1])
    add("llama4-top2", tf.Llama4ForCausalLM, l4(2, 2), 702, [1])

    # ---- quantized checkpoints, stored byte-for-byte in the layout of the official Hub releases --------------
    # Expected values always come from a float32 transformers model holding exactly the dequantized weights
    # (the tensors that are not quantized are BF16 in the checkpoint and widened to f32), run in float32.

    # gpt-oss-mxfp4 imitates openai/gpt-oss-20b: routed experts as MXFP4 (`*_blocks` U8 [E, rows, in/32, 16],
    # `*_scales` U8 E8M0 [E, rows, in/32], rows = outputs, gate_up rows interleaved gate/up), expert biases, router,
    # attention, sinks, norms, embeddings in BF16. Expected: the blocks are dequantized with transformers' own
    # `convert_moe_packed_tensors(..., dtype=float32)` (-> [E, in, out], the in-memory `x @ W` layout) and loaded
    # into the float32 GptOss model; the script also checks that `from_pretrained` of the MXFP4 checkpoint
    # (transformers' quantizer, which dequantizes on CPU) yields the identical float32 model.
    # H=64, F=96 (H != F, so a transposed down_proj cannot pass), E=4, K=2, both layers MoE.
    go_mx = tf.GptOssConfig(**common(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_local_experts=4,
                                     num_experts_per_tok=2, head_dim=16, swiglu_limit=7.0, sliding_window=8,
                                     layer_types=["sliding_attention", "full_attention"]))
    add("gpt-oss-mxfp4", tf.GptOssForCausalLM, go_mx, 801, [0, 1], builder=build_quantized, quant="mxfp4",
        quantization_config={"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                        "model.embed_tokens", "lm_head"], "quant_method": "mxfp4"},
        input_shape=(7, 64), gate_up_scale=2.0)

    # deepseek-v3-fp8 imitates deepseek-ai/DeepSeek-V3: every 2-D linear weight of the decoder layers (routed and
    # shared experts, the dense layer's MLP, the MLA projections) F8_E4M3 + `weight_scale_inv` F32
    # [ceil(out/128), ceil(in/128)]; router `mlp.gate.weight`, norms, embeddings, lm_head BF16;
    # `e_score_correction_bias` F32. Expected: W[r, c] = float(code) * scale_inv[r//128, c//128] in float32, loaded
    # into a DeepseekV3 model built WITHOUT the FP8 quantizer (transformers' CPU Fp8Dequantize derives the tile
    # size from the scale grid, rows // grid_rows: with partial edge tiles it silently uses e.g. 80-wide tiles for
    # 160 columns). H=160 and the dense layer's I=136 give
    # partial tiles in both directions (down_proj [160, *]: rows 128+32; dense gate/up [136, 160]: rows 128+8,
    # columns 128+32). E=8 in 4 groups, topk_group=2, K=3, F=16, one shared expert, layer 0 dense, layers 1-2 MoE.
    ds_fp8 = tf.DeepseekV3Config(**common(hidden_size=160, intermediate_size=136, moe_intermediate_size=16,
                                          num_hidden_layers=3, n_routed_experts=8, num_experts_per_tok=3, n_group=4,
                                          topk_group=2, n_shared_experts=1, first_k_dense_replace=1,
                                          norm_topk_prob=True, routed_scaling_factor=2.5, q_lora_rank=16,
                                          kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=8,
                                          head_dim=8))
    add("deepseek-v3-fp8", tf.DeepseekV3ForCausalLM, ds_fp8, 802, [0, 1, 2], builder=build_quantized, quant="fp8",
        quantization_config={"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                             "weight_block_size": [128, 128]},
        input_shape=(7, 160), fp8_scale_dtype=torch.float32)

    # qwen3-moe-fp8 imitates Qwen/Qwen3-30B-A3B-FP8: per-expert `mlp.experts.{e}.{gate,up,down}_proj.weight` and the
    # attention projections F8_E4M3 with `weight_scale_inv` stored as BF16 [ceil(out/128), ceil(in/128)]; router
    # `mlp.gate.weight`, norms, embeddings, lm_head BF16. Expected: W = float(code) * float32(bf16 scale) in float32,
    # loaded into a Qwen3Moe model built without the quantizer. H=192 (tiles 128+64), F=24, E=4, K=2, both layers MoE.
    q3_fp8 = tf.Qwen3MoeConfig(**common(hidden_size=192, intermediate_size=48, moe_intermediate_size=24,
                                        num_hidden_layers=2, num_experts=4, num_experts_per_tok=2, norm_topk_prob=True,
                                        head_dim=16))
    add("qwen3-moe-fp8", tf.Qwen3MoeForCausalLM, q3_fp8, 803, [0, 1], builder=build_quantized, quant="fp8",
        quantization_config={"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                             "weight_block_size": [128, 128]},
        input_shape=(7, 192), fp8_scale_dtype=torch.bfloat16)
    return specs


GGUF_MANIFEST = "manifest-gguf.json"


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated fixture names: rebuild just these, leave every other fixture "
                                   "folder alone and keep the other manifest entries as they are")
    args = ap.parse_args(argv)
    specs = fixture_specs()
    gguf_specs = gguf_fixture_specs()
    names = [n for n, _ in specs]
    versions = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                "safetensors": __import__("safetensors").__version__}
    import numpy as np
    gguf_versions = dict(versions, gguf=_gguf_version(), numpy=np.__version__)
    # (manifest file, its fixtures, the versions it records): the safetensors fixtures in manifest.json, the GGUF
    # ones in manifest-gguf.json
    manifests = [("manifest.json", specs, versions), (GGUF_MANIFEST, gguf_specs, gguf_versions)]
    if args.only:
        only = [n.strip() for n in args.only.split(",") if n.strip()]
        known = names + [n for n, _ in gguf_specs]
        unknown = sorted(set(only) - set(known))
        if unknown:
            ap.error(f"unknown fixture(s) {unknown}; known: {known}")
        for mfile, mspecs, mversions in manifests:
            mnames = [n for n, _ in mspecs]
            if not any(n in only for n in mnames):
                continue
            mpath = os.path.join(OUT, mfile)
            old = {"fixtures": []}
            if os.path.exists(mpath):
                with open(mpath) as f:
                    old = json.load(f)
                for k, v in mversions.items():
                    if old.get(k) != v:
                        sys.exit(f"{mfile} was made with {k} {old.get(k)}, this is {v}: regenerate everything")
            by_name = {e["name"]: e for e in old["fixtures"]}
            for n, thunk in mspecs:
                if n in only:
                    by_name[n] = thunk()
            fixtures = [by_name[n] for n in mnames if n in by_name]
            fixtures += [e for e in old["fixtures"] if e["name"] not in mnames]
            write_manifest(mpath, mversions, fixtures)
    else:
        if os.path.exists(OUT):
            for d in os.listdir(OUT):
                pth = os.path.join(OUT, d)
                # gguf/ holds scripts/make_gguf_fixtures.py's files, not this script's
                if os.path.isdir(pth) and d != "gguf":
                    shutil.rmtree(pth)
        os.makedirs(OUT, exist_ok=True)
        for mfile, mspecs, mversions in manifests:
            write_manifest(os.path.join(OUT, mfile), mversions, [thunk() for _, thunk in mspecs])


def _gguf_version():
    from importlib.metadata import version
    return version("gguf")


def write_manifest(mpath, versions, fixtures):
    manifest = dict(versions, fixtures=fixtures)
    with open(mpath, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print("wrote", mpath)


if __name__ == "__main__":
    main()
