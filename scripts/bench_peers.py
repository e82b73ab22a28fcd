#!/usr/bin/env python3
"""Peer benchmark for MoEKit: the transformers MoE blocks on the same shapes as `moe bench`.

Builds each preset's MoE block from `transformers` (MixtralSparseMoeBlock, Qwen3MoeSparseMoeBlock,
DeepseekV3MoE) with random weights, and times its forward under `torch.inference_mode()` for each
experts implementation (`eager`, `grouped_mm`), dtype (f32, bf16 = weights and activations in
bfloat16) and token count T. Inputs are cycled between repeats so routing changes; the reported time
is the median of the repeats. Useful GFLOP/s = 2*T*K*3*H*F (+ 2*T*3*H*F_shared) / time, the same
formula as MoEKit. weight_gbs = bytes of the distinct routed experts the inputs hit (+ the shared
expert) / time.

The experts implementation is switched through `config._experts_implementation` (transformers 5.x,
`transformers/integrations/moe.py`): the `@use_experts_implementation` experts classes read
`self.config._experts_implementation` on every call, so one block serves every implementation.
A standalone block built from a bare config has it unset (None -> eager plus a warning), so it is
always set explicitly here, and the dispatch is checked once per preset/dtype.

Examples:
    python3 scripts/bench_peers.py --json /tmp/peers.json                 # quick suite
    python3 scripts/bench_peers.py --presets mixtral --tokens 1 16 --repeats 2
    python3 scripts/bench_peers.py --moekit moekit.json --json peers.json # run, then compare
    python3 scripts/bench_peers.py --load peers.json --moekit moekit.json # compare only
    python3 scripts/bench_peers.py --moekit moekit.json --moekit-cases    # measure MoEKit's cases

Never needs the network (HF_HUB_OFFLINE is forced on). Progress goes to stderr, tables to stdout.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time

# The quick suite of `moe bench` (see docs / shared/spec/CLI.md).
PRESETS = {
    "mixtral": dict(kind="mixtral", hidden=1024, intermediate=3584, experts=8, top_k=2, shared_intermediate=0),
    "qwen3": dict(kind="qwen3", hidden=2048, intermediate=768, experts=128, top_k=8, shared_intermediate=0),
    "deepseek": dict(kind="deepseek", hidden=1024, intermediate=512, experts=64, top_k=6, shared_intermediate=512,
                     n_group=8, topk_group=4, routed_scaling_factor=2.5),
}
KINDS = ("mixtral", "qwen3", "deepseek")
DEFAULT_TOKENS = [1, 16, 128, 512]
DTYPES = ("f32", "bf16")
IMPL_PREFIX = "transformers-"
CONTENDED = 0.25  # other processes' cores busy above which a case is flagged


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_snapshot():
    """(machine busy jiffies, this process's jiffies) from /proc, or None off Linux."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
        busy = sum(f) - f[3] - (f[4] if len(f) > 4 else 0)  # minus idle and iowait
        with open("/proc/self/stat") as fh:
            st = fh.read().rsplit(")", 1)[1].split()
        return busy, int(st[11]) + int(st[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return None


def wait_for_quiet(limit_s: float, threshold: float = 0.25) -> None:
    """Wait (up to limit_s) until other processes keep fewer than `threshold` cores busy."""
    if limit_s <= 0:
        return
    t_end = time.perf_counter() + limit_s
    announced = False
    while True:
        s0, t0 = cpu_snapshot(), time.perf_counter()
        time.sleep(0.5)
        busy = other_cores(s0, cpu_snapshot(), time.perf_counter() - t0)
        if busy is None or busy < threshold or time.perf_counter() > t_end:
            if announced:
                log(f"  ... {'quiet' if busy is None or busy < threshold else 'still busy, going on'}")
            return
        if not announced:
            log(f"  waiting for the machine to go quiet (other processes busy {busy:.2f} cores) ...")
            announced = True


def other_cores(snap0, snap1, seconds: float) -> float | None:
    """Average number of cores other processes kept busy between two snapshots: a contention flag
    (with as many threads as cores, one busy neighbour can slow an OpenMP kernel several-fold)."""
    if snap0 is None or snap1 is None or seconds < 0.25:  # /proc counts in 10 ms ticks: too coarse below
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    other = (snap1[0] - snap0[0]) - (snap1[1] - snap0[1])
    return max(0.0, other / hz / seconds)


# ----------------------------------------------------------------------------------------------
# presets
# ----------------------------------------------------------------------------------------------

def parse_preset_spec(spec: str) -> tuple[str, dict]:
    """NAME=KIND:H:F:E:K[:F_SHARED] -> (name, preset dict)."""
    try:
        name, rest = spec.split("=", 1)
        parts = rest.split(":")
        kind = parts[0]
        h, f, e, k = (int(p) for p in parts[1:5])
        fs = int(parts[5]) if len(parts) > 5 else (f if kind == "deepseek" else 0)
    except (ValueError, IndexError):
        raise SystemExit(f"bad --preset-spec {spec!r}; expected NAME=KIND:H:F:E:K[:F_SHARED]")
    if kind not in KINDS:
        raise SystemExit(f"bad --preset-spec {spec!r}: kind must be one of {KINDS}")
    return name, complete_preset(dict(kind=kind, hidden=h, intermediate=f, experts=e, top_k=k,
                                      shared_intermediate=fs))


def complete_preset(p: dict) -> dict:
    p = dict(p)
    if p["kind"] == "deepseek":
        e = p["experts"]
        if "n_group" not in p:
            p["n_group"] = 8 if e % 8 == 0 and e // 8 >= 2 else 1
        if "topk_group" not in p:
            p["topk_group"] = 4 if p["n_group"] == 8 else 1
        p.setdefault("routed_scaling_factor", 2.5)
    return p


def kind_from_name(name: str) -> str | None:
    low = name.lower()
    for k in KINDS:
        if low.startswith(k) or k in low:
            return k
    return None


def normalize_dtype(d: str) -> str:
    d = str(d).lower()
    return {"float32": "f32", "fp32": "f32", "bfloat16": "bf16"}.get(d, d)


def case_key(c: dict) -> tuple[str, str, int]:
    preset = c.get("preset") or c.get("name", "?").split(" ")[0]
    return preset, normalize_dtype(c.get("dtype", "?")), int(c.get("tokens", 0))


def useful_flops(p: dict, tokens: int) -> float:
    h, f, k, fs = p["hidden"], p["intermediate"], p["top_k"], p.get("shared_intermediate", 0)
    return 2.0 * tokens * k * 3 * h * f + 2.0 * tokens * 3 * h * fs


# ----------------------------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------------------------

def build_block(torch, p: dict, init_std: float, seed: int):
    """Returns (block, config) in float32 with random weights."""
    kind = p["kind"]
    h, f, e, k = p["hidden"], p["intermediate"], p["experts"], p["top_k"]
    if kind == "mixtral":
        from transformers import MixtralConfig
        from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock as Block
        cfg = MixtralConfig(hidden_size=h, intermediate_size=f, num_local_experts=e, num_experts_per_tok=k,
                            hidden_act="silu", router_jitter_noise=0.0)
    elif kind == "qwen3":
        from transformers import Qwen3MoeConfig
        from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeSparseMoeBlock as Block
        cfg = Qwen3MoeConfig(hidden_size=h, moe_intermediate_size=f, num_experts=e, num_experts_per_tok=k,
                             norm_topk_prob=True, hidden_act="silu")
    elif kind == "deepseek":
        from transformers import DeepseekV3Config
        from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3MoE as Block
        fs = p.get("shared_intermediate", 0)
        if fs and fs % f != 0:
            raise ValueError(f"deepseek shared width {fs} must be a multiple of the expert width {f}")
        cfg = DeepseekV3Config(hidden_size=h, moe_intermediate_size=f, n_routed_experts=e, num_experts_per_tok=k,
                               n_group=p["n_group"], topk_group=p["topk_group"],
                               n_shared_experts=max(1, fs // f) if fs else 1,
                               routed_scaling_factor=p["routed_scaling_factor"], norm_topk_prob=True,
                               hidden_act="silu")
        if not fs:
            raise ValueError("DeepseekV3MoE always has a shared expert; give shared_intermediate > 0")
    else:
        raise ValueError(kind)
    cfg._experts_implementation = "eager"
    block = Block(cfg)
    g = torch.Generator().manual_seed(seed)
    router_std = 1.0 / math.sqrt(h)  # logits ~ N(0, 1) for unit inputs: routing varies with the input
    with torch.no_grad():
        for name, prm in block.named_parameters():
            std = router_std if name.startswith("gate.") else init_std
            prm.copy_(torch.randn(prm.shape, generator=g) * std)
        for name, buf in block.named_buffers():
            if buf.is_floating_point():
                buf.zero_()
    block.eval()
    return block, cfg


def grouped_mm_native(torch, dtype, device) -> bool | None:
    """Whether transformers' grouped_mm path uses torch's grouped_mm kernel (True) or its per-expert
    torch.mm fallback (False) for this dtype/device."""
    try:
        from transformers.integrations import moe as moe_mod
        x = torch.zeros(4, 8, dtype=dtype, device=device)
        w = torch.zeros(2, 8, 8, dtype=dtype, device=device)
        offs = torch.tensor([2, 4], dtype=torch.int32, device=device)
        return bool(moe_mod._can_use_grouped_mm(x, w, offs))
    except Exception:
        return None


def check_dispatch(torch, block, cfg, p, dtype, device, impls) -> dict:
    """Runs one small input through every implementation: checks that the switch reaches the
    intended code path (grouped_mm calls counted) and that the outputs agree with eager."""
    from transformers.integrations import moe as moe_mod
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(1, 16, p["hidden"], generator=g).to(device=device, dtype=dtype)
    out = {}
    calls = {"grouped": 0, "batched": 0}
    orig_g, orig_b = moe_mod._grouped_mm, moe_mod._batched_linear

    def count_g(*a, **kw):
        calls["grouped"] += 1
        return orig_g(*a, **kw)

    def count_b(*a, **kw):
        calls["batched"] += 1
        return orig_b(*a, **kw)

    ref = None
    moe_mod._grouped_mm, moe_mod._batched_linear = count_g, count_b
    try:
        with torch.inference_mode():
            for impl in impls:
                calls["grouped"] = calls["batched"] = 0
                cfg._experts_implementation = impl
                y = block(x).float()
                if impl == "eager":
                    ref = y
                info = {"grouped_mm_calls": calls["grouped"], "batched_mm_calls": calls["batched"]}
                if ref is not None and impl != "eager":
                    info["max_rel_diff_vs_eager"] = float((y - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
                ok = {"eager": calls["grouped"] == 0 and calls["batched"] == 0,
                      "grouped_mm": calls["grouped"] > 0,
                      "batched_mm": calls["batched"] > 0}.get(impl, True)
                info["dispatch_ok"] = ok
                out[impl] = info
    finally:
        moe_mod._grouped_mm, moe_mod._batched_linear = orig_g, orig_b
        cfg._experts_implementation = "eager"
    return out


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------

def time_case(torch, block, cfg, p, impl, dtype, tokens, args, device, est_single_s):
    """Returns (result dict) or (None, reason)."""
    h = p["hidden"]
    n_calls = args.warmup + args.repeats
    # est_single_s is a linear extrapolation from the previous T (an over-estimate: the layer is
    # sublinear in T while weight-bound), so only skip untried when one call alone would blow the budget
    if est_single_s is not None and est_single_s > args.max_seconds / 2:
        return None, f"one call estimated at {est_single_s:.1f} s > --max-seconds/2"

    n_inputs = max(4, min(n_calls, 16))
    g = torch.Generator().manual_seed(1000 + tokens)
    inputs = [torch.randn(1, tokens, h, generator=g).to(device=device, dtype=dtype) for _ in range(n_inputs)]

    # distinct routed experts each input hits (for weight GB/s)
    uniq = []
    with torch.inference_mode():
        for x in inputs:
            idx = block.gate(x.reshape(-1, h))[2]
            uniq.append(int(torch.unique(idx).numel()))
    elt = 2 if dtype == torch.bfloat16 else 4
    expert_bytes = 3 * h * p["intermediate"] * elt
    shared_bytes = 3 * h * p.get("shared_intermediate", 0) * elt
    mean_weight_bytes = statistics.mean(uniq) * expert_bytes + shared_bytes

    cfg._experts_implementation = impl
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    wait_for_quiet(args.quiet_wait)
    times = []
    t_case = time.perf_counter()
    snap0 = cpu_snapshot()
    warmup, repeats = max(1, args.warmup), args.repeats
    try:
        with torch.inference_mode():
            i = 0
            while i < warmup + repeats:
                x = inputs[i % n_inputs]
                sync()
                t0 = time.perf_counter()
                block(x)
                sync()
                dt = time.perf_counter() - t0
                if i == 0 and dt * (warmup + repeats) > args.max_seconds:
                    # shrink the case to the budget: at least one timed call after this warm-up
                    fit = int((args.max_seconds - dt) / dt)
                    if fit < 1:
                        return None, f"first call took {dt:.2f} s; no timed repeat fits --max-seconds {args.max_seconds:g}"
                    repeats = min(repeats, fit)
                    warmup = 1 + min(warmup - 1, fit - repeats)
                if i >= warmup:
                    times.append(dt)
                i += 1
    except Exception as exc:  # keep the suite going; report what failed
        return None, f"error: {type(exc).__name__}: {exc}"
    finally:
        cfg._experts_implementation = "eager"
    ms = statistics.median(times) * 1e3
    s = ms / 1e3
    busy = other_cores(snap0, cpu_snapshot(), time.perf_counter() - t_case)
    return {
        "ms": round(ms, 4),
        "ms_min": round(min(times) * 1e3, 4),
        "ms_max": round(max(times) * 1e3, 4),
        "gflops": round(useful_flops(p, tokens) / s / 1e9, 3),
        "weight_gbs": round(mean_weight_bytes / s / 1e9, 3),
        "experts_hit": round(statistics.mean(uniq), 2),
        "repeats": len(times),
        "case_seconds": round(time.perf_counter() - t_case, 3),
        "other_cores_busy": None if busy is None else round(busy, 2),
    }, None


# ----------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------

def fmt_ms(v) -> str:
    if v is None:
        return "—"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def print_table(rows: list[list[str]], header: list[str], out=sys.stdout) -> None:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i > 0 else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    print(line(header), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(line(r), file=out)


def preset_order(names) -> list[str]:
    known = [n for n in PRESETS if n in names]
    return known + sorted(n for n in names if n not in PRESETS)


def sort_key(key, order):
    preset, dtype, t = key
    return (order.index(preset) if preset in order else len(order), DTYPES.index(dtype) if dtype in DTYPES else 9, t)


def print_results(cases: list[dict]) -> None:
    order = preset_order({c["preset"] for c in cases})
    rows = []
    for c in sorted(cases, key=lambda c: (sort_key(case_key(c), order), c["implementation"])):
        busy = c.get("other_cores_busy")
        rows.append([c["preset"], c["dtype"], str(c["tokens"]), c["implementation"].removeprefix(IMPL_PREFIX),
                     fmt_ms(c["ms"]), f"{c['gflops']:.1f}", f"{c['weight_gbs']:.1f}",
                     "—" if busy is None else f"{busy:.2f}" + (" !" if busy > CONTENDED else "")])
    print_table(rows, ["preset", "dtype", "T", "impl", "ms", "GFLOP/s", "weight GB/s", "other cores busy"])
    if any((c.get("other_cores_busy") or 0) > CONTENDED for c in cases):
        print(f"! = other processes used > {CONTENDED} cores during the case: its time is probably inflated")


def compare(moekit: dict, peers: dict) -> None:
    # PyTorch's BF16 rounds activations too, so MoEKit's BF16 row is its `compute: bf16` case; its
    # BF16-weights/F32-compute case (exact for BF16 checkpoints) is left out of this comparison.
    mk = {case_key(c): c for c in moekit.get("cases", [])
          if not (c.get("dtype") == "bf16" and c.get("compute", "bf16") == "f32")}
    peer_impls: list[str] = []
    pk: dict[tuple, dict[str, dict]] = {}
    for c in peers.get("cases", []):
        impl = c.get("implementation", "peer")
        if impl not in peer_impls:
            peer_impls.append(impl)
        pk.setdefault(case_key(c), {})[impl] = c
    keys = set(mk) | set(pk)
    order = preset_order({k[0] for k in keys})
    short = [i.removeprefix(IMPL_PREFIX) for i in peer_impls]
    header = ["preset", "dtype", "T", "MoEKit ms"] + [f"{s} ms" for s in short] + [f"x vs {s}" for s in short]
    rows = []
    for key in sorted(keys, key=lambda k: sort_key(k, order)):
        m = mk.get(key, {}).get("ms")
        row = [key[0], key[1], str(key[2]), fmt_ms(m)]
        speed = []
        for impl in peer_impls:
            pm = pk.get(key, {}).get(impl, {}).get("ms")
            row.append(fmt_ms(pm))
            speed.append(f"{pm / m:.2f}x" if (pm and m) else "—")
        rows.append(row + speed)
    mm = moekit.get("machine", {})
    print()
    print(f"MoEKit vs peers (x = peer ms / MoEKit ms; > 1 means MoEKit is faster). "
          f"MoEKit machine: F32 GEMM peak {fmt_num(mm.get('gemm_gflops'))} GFLOP/s (MoEKit {fmt_num(mm.get('moekit_gemm_gflops'))}, "
          f"OpenBLAS {fmt_num(mm.get('openblas_gemm_gflops'))}), mem {fmt_num(mm.get('mem_gbs'))} GB/s, "
          f"threads {mm.get('threads', '?')}; peers threads {peers.get('machine', {}).get('threads', '?')}")
    print_table(rows, header)


def fmt_num(x):
    return "—" if x is None else f"{x:.1f}"


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=None, help=f"presets to run (default: {' '.join(PRESETS)})")
    ap.add_argument("--preset-spec", action="append", default=[], metavar="NAME=KIND:H:F:E:K[:F_SHARED]",
                    help="define an extra preset (KIND: mixtral|qwen3|deepseek), e.g. big=mixtral:4096:14336:8:2")
    ap.add_argument("--tokens", nargs="+", type=int, default=None, help="token counts (default: 1 16 128 512)")
    ap.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    ap.add_argument("--impls", nargs="+", choices=["eager", "grouped_mm", "batched_mm"],
                    default=["eager", "grouped_mm"], help="transformers experts implementations")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per case (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up calls per case")
    ap.add_argument("--max-seconds", type=float, default=30.0, help="skip a case whose estimated time exceeds this")
    ap.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                    help="before each case wait up to this long for other processes to go idle (shared machines)")
    ap.add_argument("--init-std", type=float, default=0.02, help="std of the random expert weights")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="torch device (default cpu)")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON (rewritten after every case)")
    ap.add_argument("--moekit", metavar="FILE", help="MoEKit `moe bench --json` output to compare against")
    ap.add_argument("--moekit-cases", action="store_true",
                    help="measure the presets/shapes/dtypes/tokens found in --moekit instead of the quick suite")
    ap.add_argument("--load", metavar="PEERS_JSON", help="do not measure: load an earlier --json output")
    ap.add_argument("--no-check", action="store_true", help="skip the dispatch/agreement check")
    args = ap.parse_args(argv)

    moekit = None
    if args.moekit:
        with open(args.moekit) as fh:
            moekit = json.load(fh)

    if args.load:
        with open(args.load) as fh:
            peers = json.load(fh)
        print_results(peers.get("cases", []))
        if moekit is not None:
            compare(moekit, peers)
        return 0

    # thread settings must precede torch's first parallel region
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    device = torch.device(args.device)

    presets = {n: complete_preset(p) for n, p in PRESETS.items()}
    for spec in args.preset_spec:
        name, p = parse_preset_spec(spec)
        presets[name] = p

    # the plan: list of (preset name, preset, dtype, tokens)
    plan: list[tuple[str, dict, str, int]] = []
    if args.moekit_cases:
        if moekit is None:
            raise SystemExit("--moekit-cases needs --moekit FILE")
        for c in moekit.get("cases", []):
            name, dt, t = case_key(c)
            if name in presets and not all(k in c for k in ("hidden", "intermediate", "experts", "top_k")):
                p = presets[name]
            else:
                kind = kind_from_name(name)
                if kind is None or not all(k in c for k in ("hidden", "intermediate", "experts", "top_k")):
                    log(f"skip MoEKit case {c.get('name')!r}: unknown router kind or shape")
                    continue
                p = complete_preset(dict(kind=kind, hidden=c["hidden"], intermediate=c["intermediate"],
                                         experts=c["experts"], top_k=c["top_k"],
                                         shared_intermediate=c.get("shared_intermediate", 0)))
                if name in presets and {k: presets[name][k] for k in p if k in presets[name]} != p:
                    log(f"note: MoEKit preset {name!r} has shape {p}, using it")
            if dt not in args.dtypes:
                continue
            plan.append((name, p, dt, t))
    else:
        names = args.presets or list(PRESETS) + [s.split("=", 1)[0] for s in args.preset_spec]
        for n in names:
            if n not in presets:
                raise SystemExit(f"unknown preset {n!r}; known: {', '.join(presets)} (or use --preset-spec)")
        tokens = args.tokens or DEFAULT_TOKENS
        for n in names:
            for dt in DTYPES:
                if dt in args.dtypes:
                    for t in sorted(set(tokens)):
                        plan.append((n, presets[n], dt, t))

    torch_dtype = {"f32": torch.float32, "bf16": torch.bfloat16}
    machine = {
        "implementation": "transformers",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "cpu": cpu_model(),
        "date": _dt.date.today().isoformat(),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "init_std": args.init_std,
        "experts_switch": "config._experts_implementation",
        "grouped_mm_native": {dt: grouped_mm_native(torch, torch_dtype[dt], device) for dt in args.dtypes},
    }
    result = {"machine": machine, "cases": [], "skipped": [], "checks": {}}
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    machine["loadavg_1min_start"] = load0
    if load0 is not None and load0 > 0.5:
        log(f"WARNING: 1-min load average is {load0:.2f} before the run; with {args.threads} threads on a "
            f"{os.cpu_count()}-core machine any other busy process inflates the times (up to 10x seen)")

    def save():
        if args.json:
            d = os.path.dirname(os.path.abspath(args.json))
            os.makedirs(d, exist_ok=True)
            tmp = args.json + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(result, fh, indent=1)
            os.replace(tmp, args.json)

    n_total = len(plan) * len(args.impls)
    log(f"bench_peers: torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{torch.get_num_threads()} threads, {n_total} cases, grouped_mm native: {machine['grouped_mm_native']}")
    t_suite = time.perf_counter()
    done = 0
    # group by (preset, shape) so a block is built once and converted f32 -> bf16 in place
    groups: dict[str, list] = {}
    for name, p, dt, t in plan:
        groups.setdefault(json.dumps([name, p], sort_keys=True), []).append((name, p, dt, t))
    for gkey, items in groups.items():
        name, p = items[0][0], items[0][1]
        t0 = time.perf_counter()
        try:
            block, cfg = build_block(torch, p, args.init_std, args.seed)
        except Exception as exc:
            log(f"cannot build {name}: {type(exc).__name__}: {exc}")
            for _, _, dt, t in items:
                for impl in args.impls:
                    result["skipped"].append({"name": f"{name} {dt} T={t}", "preset": name, "dtype": dt,
                                              "tokens": t, "implementation": IMPL_PREFIX + impl,
                                              "reason": f"build failed: {exc}"})
            continue
        block.to(device)
        log(f"built {name} ({p['experts']} experts, H={p['hidden']}, F={p['intermediate']}, top-{p['top_k']}"
            f"{', shared ' + str(p['shared_intermediate']) if p.get('shared_intermediate') else ''}) "
            f"in {time.perf_counter() - t0:.1f} s")
        for dt in DTYPES:
            dt_items = [it for it in items if it[2] == dt]
            if not dt_items:
                continue
            block.to(torch_dtype[dt])
            if not args.no_check:
                chk = check_dispatch(torch, block, cfg, p, torch_dtype[dt], device, args.impls)
                result["checks"][f"{name} {dt}"] = chk
                for impl, info in chk.items():
                    if not info["dispatch_ok"]:
                        log(f"WARNING: {name} {dt}: implementation {impl!r} did not dispatch as expected: {info}")
                log(f"check {name} {dt}: " + ", ".join(
                    f"{i}: {'ok' if v['dispatch_ok'] else 'NOT DISPATCHED'}"
                    + (f" rel.diff {v['max_rel_diff_vs_eager']:.1e}" if "max_rel_diff_vs_eager" in v else "")
                    for i, v in chk.items()))
            for impl in args.impls:
                prev = None  # (tokens, seconds per call) of the last measured T, to predict the next
                for _, _, _, t in sorted(dt_items, key=lambda it: it[3]):
                    done += 1
                    est = prev[1] * t / prev[0] if prev else None
                    res, why = time_case(torch, block, cfg, p, impl, torch_dtype[dt], t, args, device, est)
                    base = {"name": f"{name} {dt} T={t}", "preset": name, "tokens": t, "dtype": dt,
                            "implementation": IMPL_PREFIX + impl}
                    if res is None:
                        result["skipped"].append(dict(base, reason=why))
                        log(f"[{done}/{n_total}] {base['name']} {impl}: skipped ({why})")
                    else:
                        case = dict(base, hidden=p["hidden"], intermediate=p["intermediate"], experts=p["experts"],
                                    top_k=p["top_k"], shared_intermediate=p.get("shared_intermediate", 0), **res)
                        result["cases"].append(case)
                        prev = (t, res["ms"] / 1e3)
                        ob = res["other_cores_busy"]
                        log(f"[{done}/{n_total}] {base['name']} {impl}: {res['ms']:.3f} ms, "
                            f"{res['gflops']:.1f} GFLOP/s, {res['weight_gbs']:.1f} GB/s "
                            f"({res['case_seconds']:.1f} s"
                            + (f", other processes busy {ob:.2f} cores" if ob is not None and ob > CONTENDED else "")
                            + ")")
                    save()
        del block
    result["machine"]["suite_seconds"] = round(time.perf_counter() - t_suite, 1)
    if hasattr(os, "getloadavg"):
        result["machine"]["loadavg_1min_end"] = os.getloadavg()[0]
    save()
    log(f"done in {result['machine']['suite_seconds']:.1f} s" + (f"; wrote {args.json}" if args.json else ""))

    print_results(result["cases"])
    if result["skipped"]:
        print(f"\nskipped {len(result['skipped'])} case(s):")
        for s in result["skipped"]:
            print(f"  {s['name']} {s['implementation']}: {s['reason']}")
    if moekit is not None:
        compare(moekit, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
