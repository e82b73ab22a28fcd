#!/usr/bin/env python3
"""Generate MoEKit golden test fixtures with Hugging Face `transformers`.

What it makes
-------------
For each supported MoE architecture, a tiny randomly-initialised causal-LM is built with
`transformers`, saved with `save_pretrained` (exactly as HF writes it), reloaded from that
checkpoint in float32, and the feed-forward block of chosen layers (`model.model.layers[L].mlp`,
or `.feed_forward` for Llama-4; ONLY the FFN block: no norm, no residual) is run on random
hidden states. Output layout (under Tests/MoEKitTests/Fixtures/):

    <name>/checkpoint/            config.json + model.safetensors (or shards + index.json)
    <name>/layer<L>.safetensors   hidden_states            F32 [T,H] (olmoe: [B,S,H])
                                  expected_hidden_states   F32, same shape
                                  (MoE layers only:)
                                  router_logits            F32 [T,E] (GPT-OSS: incl. router bias)
                                  topk_ids                 I32 [T,K] (torch's slot order; DeepSeek unsorted)
                                  topk_weights             F32 [T,K] weights multiplying expert outputs
                                                           (Llama-4: sigmoid(top-k logit), scales the expert INPUT)
    manifest.json

Goldens are always computed from the model reloaded from the written checkpoint with
`from_pretrained(dir, dtype=torch.float32)` (so the bf16 fixtures are F32 compute on bf16-rounded
weights). Hidden states are resampled until no MoE layer has a near-tie (relative gap < 1e-3)
between the k-th and (k+1)-th selection score of any token (DeepSeek: also the group scores).
The script also checks every golden against an independent re-implementation of
shared/spec/semantics.md that reads the tensors straight from the checkpoint files.

Pinned versions (scripts/requirements-fixtures.txt): torch==2.15.0, transformers==5.23.0,
safetensors==0.8.0 (CPU suffices). Fully deterministic (fixed seeds).

How to run (from the repository root):
    pip install -r scripts/requirements-fixtures.txt && python3 scripts/make_fixtures.py
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
OUT = os.path.join(ROOT, "Tests", "MoEKitTests", "Fixtures")

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
def build(name, model_cls, cfg, seed, layers, save_dtype=torch.float32, shard=None,
          save_original_format=True, input_shape=None, gate_up_scale=1.0, input_seed=None):
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
    mcfg = model.config
    entries = []
    shape = input_shape or (T, H)
    for L in layers:
        block = ffn_block(model, arch, L)
        moe = is_moe(block, arch)
        s = (input_seed if input_seed is not None else seed) * 1000 + L * 37
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
            hs = torch.einsum("th,ehf->tef", x.reshape(-1, H), W[p + "gate_up_proj"]) + W[p + "gate_up_proj_bias"]
            sel = hs[torch.arange(hs.shape[0])[:, None], res["topk_ids"].long()]
            info += f" clamped_gate={int((sel[..., 0::2] > 7).sum())} clamped_up={int((sel[..., 1::2].abs() > 7).sum())}"
        print(info)
        save_file(res, os.path.join(fdir, f"layer{L}.safetensors"))
        entries.append({"layer": L, "kind": "moe" if moe else "dense"})
    return {"name": name, "architecture": arch, "checkpoint_dtype": "bfloat16" if save_dtype == torch.bfloat16 else "float32",
            "sharded": os.path.exists(os.path.join(ckpt, "model.safetensors.index.json")), "layers": entries}


def main():
    if os.path.exists(OUT):
        for d in os.listdir(OUT):
            pth = os.path.join(OUT, d)
            if os.path.isdir(pth):
                shutil.rmtree(pth)
    os.makedirs(OUT, exist_ok=True)
    tf = transformers
    fixtures = []

    mix = lambda: tf.MixtralConfig(**common(intermediate_size=16, num_hidden_layers=2, num_local_experts=8,
                                             num_experts_per_tok=2))
    fixtures.append(build("mixtral-f32", tf.MixtralForCausalLM, mix(), 101, [0, 1]))
    fixtures.append(build("mixtral-bf16", tf.MixtralForCausalLM, mix(), 102, [0, 1], save_dtype=torch.bfloat16))

    q2 = tf.Qwen2MoeConfig(**common(intermediate_size=48, moe_intermediate_size=16, shared_expert_intermediate_size=24,
                                    num_hidden_layers=3, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False,
                                    decoder_sparse_step=1, mlp_only_layers=[1]))
    fixtures.append(build("qwen2-moe", tf.Qwen2MoeForCausalLM, q2, 201, [0, 1]))

    # expert width F=24 where experts are stored fused, so that 2F != H and the 3-D shapes are unambiguous
    q3 = lambda f: tf.Qwen3MoeConfig(**common(intermediate_size=48, moe_intermediate_size=f, num_hidden_layers=2,
                                            num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, head_dim=16))
    fixtures.append(build("qwen3-moe", tf.Qwen3MoeForCausalLM, q3(16), 301, [0, 1], shard="40KB"))
    fixtures.append(build("qwen3-moe-fused", tf.Qwen3MoeForCausalLM, q3(24), 302, [0, 1], save_original_format=False))

    ds = lambda: tf.DeepseekV3Config(**common(intermediate_size=48, moe_intermediate_size=16, num_hidden_layers=3,
                                              n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2,
                                              n_shared_experts=1, first_k_dense_replace=1, norm_topk_prob=True,
                                              routed_scaling_factor=2.5, q_lora_rank=16, kv_lora_rank=16,
                                              qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=8, head_dim=8))
    fixtures.append(build("deepseek-v3-f32", tf.DeepseekV3ForCausalLM, ds(), 401, [0, 1, 2]))
    fixtures.append(build("deepseek-v3-bf16", tf.DeepseekV3ForCausalLM, ds(), 402, [0, 1, 2], save_dtype=torch.bfloat16))

    go = tf.GptOssConfig(**common(intermediate_size=24, num_hidden_layers=2, num_local_experts=4, num_experts_per_tok=2,
                                  head_dim=16, swiglu_limit=7.0, sliding_window=8,
                                  layer_types=["sliding_attention", "full_attention"]))
    fixtures.append(build("gpt-oss", tf.GptOssForCausalLM, go, 501, [0, 1], gate_up_scale=3.0))

    ol = tf.OlmoeConfig(**common(intermediate_size=16, num_hidden_layers=2, num_experts=8, num_experts_per_tok=2,
                                 norm_topk_prob=False, pad_token_id=1, eos_token_id=2))
    fixtures.append(build("olmoe", tf.OlmoeForCausalLM, ol, 601, [0, 1], input_shape=(2, 7, H)))

    l4 = lambda n_layers, k: tf.Llama4TextConfig(**common(intermediate_size=24, intermediate_size_mlp=40,
                                                          num_hidden_layers=n_layers, num_local_experts=4,
                                                          num_experts_per_tok=k, interleave_moe_layer_step=2,
                                                          head_dim=16, attention_chunk_size=8,
                                                          pad_token_id=0, bos_token_id=1, eos_token_id=2))
    fixtures.append(build("llama4", tf.Llama4ForCausalLM, l4(4, 1), 701, [0, 1]))
    fixtures.append(build("llama4-top2", tf.Llama4ForCausalLM, l4(2, 2), 702, [1]))

    manifest = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                "safetensors": __import__("safetensors").__version__, "fixtures": fixtures}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print("wrote", os.path.join(OUT, "manifest.json"))


if __name__ == "__main__":
    main()
