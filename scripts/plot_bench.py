#!/usr/bin/env python3
"""Plot MoEKit's `moe bench --json` output (and optionally the peers' from bench_peers.py).

GFLOP/s of useful expert FLOPs against tokens (log x), one panel per preset, one line per
(implementation, dtype), with dashed horizontal lines at MoEKit's measured F32 GEMM peak and at twice
it (the BF16 roof).

    python3 scripts/plot_bench.py moekit.json --peers peers.json --out docs/bench.svg
    # writes docs/bench.svg and docs/bench.png (either suffix given writes both)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

DTYPE_STYLE = {"f32": dict(linestyle="-", marker="o"), "bf16": dict(linestyle=":", marker="s")}
PRESET_ORDER = ["mixtral", "qwen3", "deepseek"]
IMPL_COLORS = {
    "MoEKit": "#d62728",
    "transformers-eager": "#1f77b4",
    "transformers-grouped_mm": "#2ca02c",
    "transformers-batched_mm": "#9467bd",
}
EXTRA_COLORS = ["#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


def norm_dtype(d) -> str:
    d = str(d).lower()
    return {"float32": "f32", "fp32": "f32", "bfloat16": "bf16"}.get(d, d)


def load_cases(path: str, default_impl: str) -> tuple[dict, list[dict]]:
    with open(path) as fh:
        data = json.load(fh)
    cases = []
    for c in data.get("cases", []):
        if c.get("gflops") is None and c.get("ms") is None:
            continue
        preset = c.get("preset") or str(c.get("name", "?")).split(" ")[0]
        gflops = c.get("gflops")
        if gflops is None:
            continue
        dtype = norm_dtype(c.get("dtype", "?"))
        if dtype == "bf16" and c.get("compute") == "f32":
            dtype = "bf16 weights, f32 compute"  # MoEKit's exact mode for BF16 checkpoints
        cases.append({"preset": preset, "dtype": dtype, "tokens": int(c["tokens"]),
                      "gflops": float(gflops), "impl": c.get("implementation") or default_impl})
    return data.get("machine", {}), cases


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("moekit", help="MoEKit bench JSON (moe bench --json FILE)")
    ap.add_argument("--peers", action="append", default=[], metavar="JSON",
                    help="bench_peers.py --json output (may be repeated)")
    ap.add_argument("--out", default="docs/bench.svg", help="output path; .svg and .png are both written")
    ap.add_argument("--yscale", choices=["log", "linear"], default="log",
                    help="GFLOP/s axis scale (default log, so decode (T=1) stays readable)")
    ap.add_argument("--title", default=None)
    ap.add_argument("--dpi", type=int, default=150)
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    matplotlib.rcParams["svg.hashsalt"] = "moekit-bench"  # deterministic SVG ids

    machine, cases = load_cases(args.moekit, "MoEKit")
    peer_machines = []
    for p in args.peers:
        m, pc = load_cases(p, "peer")
        peer_machines.append(m)
        cases += pc
    if not cases:
        print("no cases to plot", file=sys.stderr)
        return 1

    presets = [p for p in PRESET_ORDER if any(c["preset"] == p for c in cases)]
    presets += sorted({c["preset"] for c in cases} - set(presets))
    impls = []
    for c in cases:
        if c["impl"] not in impls:
            impls.append(c["impl"])
    colors = dict(IMPL_COLORS)
    extra = iter(EXTRA_COLORS)
    for i in impls:
        if i not in colors:
            colors[i] = next(extra, "#333333")

    peak = machine.get("gemm_gflops")
    n = len(presets)
    ncols = min(n, 3)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.3 * nrows), squeeze=False, sharey=True)
    all_tokens = sorted({c["tokens"] for c in cases})
    handles = {}
    for ax, preset in zip(axes.flat, presets):
        pcs = [c for c in cases if c["preset"] == preset]
        for impl in impls:
            for dt in ("f32", "bf16") + tuple(sorted({c["dtype"] for c in pcs} - {"f32", "bf16"})):
                pts = sorted((c["tokens"], c["gflops"]) for c in pcs if c["impl"] == impl and c["dtype"] == dt)
                if not pts:
                    continue
                style = DTYPE_STYLE.get(dt, dict(linestyle="-.", marker="^"))
                label = f"{impl.removeprefix('transformers-')} {dt}" if impl != "MoEKit" else f"MoEKit {dt}"
                if impl.startswith("transformers-"):
                    label = "transformers " + label
                (h,) = ax.plot([t for t, _ in pts], [g for _, g in pts], color=colors[impl], linewidth=1.8,
                               markersize=5, label=label, **style)
                handles.setdefault(label, h)
        if peak:
            h1 = ax.axhline(peak, color="#555555", linestyle="--", linewidth=1.0)
            h2 = ax.axhline(2 * peak, color="#000000", linestyle="--", linewidth=1.0)
            tr = ax.get_yaxis_transform()
            ax.text(0.01, peak, " F32 GEMM peak", transform=tr, va="bottom", ha="left", fontsize=7, color="#555555")
            ax.text(0.01, 2 * peak, " 2x (BF16 roof)", transform=tr, va="bottom", ha="left", fontsize=7)
            handles.setdefault(f"F32 GEMM peak ({peak:.0f} GFLOP/s)", h1)
            handles.setdefault(f"2x GEMM peak, BF16 roof ({2 * peak:.0f})", h2)
        ax.set_xscale("log")
        ax.set_yscale(args.yscale)
        tk = sorted({c["tokens"] for c in pcs}) or all_tokens
        ax.xaxis.set_major_locator(FixedLocator(tk))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(t) for t in tk])
        ax.set_xlim(min(tk) / 1.4, max(tk) * 1.4)
        ax.set_title(preset)
        ax.set_xlabel("tokens T")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("useful GFLOP/s")

    sub = []
    if machine:
        bits = [f"{k} {machine[k]}" for k in ("isa", "threads", "date", "moekit_version") if machine.get(k)]
        if machine.get("mem_gbs"):
            bits.append(f"mem {machine['mem_gbs']} GB/s")
        if bits:
            sub.append("MoEKit: " + ", ".join(str(b) for b in bits))
    for m in peer_machines:
        if m.get("torch"):
            sub.append(f"peers: torch {m.get('torch')}, transformers {m.get('transformers')}, "
                       f"{m.get('threads')} threads, {m.get('date', '')}")
    title = args.title or "MoE layer throughput (useful expert FLOPs)"
    fig.suptitle(title + ("\n" + " | ".join(sub) if sub else ""), fontsize=10)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center",
               ncol=min(4, len(handles)), fontsize=8, frameon=False)
    n_leg_rows = (len(handles) + 3) // 4
    fig.tight_layout(rect=(0, 0.035 * n_leg_rows + 0.02, 1, 1))

    base, ext = os.path.splitext(args.out)
    if ext.lower() not in (".svg", ".png"):
        base = args.out
    d = os.path.dirname(os.path.abspath(base))
    os.makedirs(d, exist_ok=True)
    fig.savefig(base + ".svg", metadata={"Date": None})
    fig.savefig(base + ".png", dpi=args.dpi)
    print(f"wrote {base}.svg and {base}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
