#!/usr/bin/env python3
"""Plot scripts/bench_llamacpp.py's JSON: MoEKit's speed-up over llama.cpp on the same GGUF MoE layers.

One panel per token count (T = 1 decode, T = 512 prefill), one group of bars per (shape, ggml type), one bar
per MoEKit compute mode (int8: llama.cpp's arithmetic; f32: exact); dashed lines at the issue's targets
(T = 1: 1.0x, T = 512: 2.0x). Speed-up = llama.cpp time / moe time (> 1: MoEKit faster).

    python3 scripts/plot_llamacpp.py docs/bench/llamacpp-DATE.json --out docs/bench/llamacpp-DATE.svg
    # writes the .svg and a .png beside it (matplotlib==3.11.2, scripts/requirements-bench.txt)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

TARGETS = {"t1": 1.0, "t512": 2.0}
COLORS = {"int8": "#d62728", "f32": "#1f77b4"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(args.json) as fh:
        data = json.load(fh)
    rows = data["rows"]
    groups = []
    for r in rows:
        key = (r["shape"], r["type"])
        if key not in groups:
            groups.append(key)
    modes = []
    for r in rows:
        mode = r.get("moe_compute", "f32")
        if mode not in modes:
            modes.append(mode)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=False)
    width = 0.8 / max(1, len(modes))
    for ax, (field, title) in zip(axes, [("t1", "T = 1 (decode)"), ("t512", "T = 512 (prefill)")]):
        for i, mode in enumerate(modes):
            xs, ys = [], []
            for g, (shape, qtype) in enumerate(groups):
                match = [r for r in rows if (r["shape"], r["type"]) == (shape, qtype) and r.get("moe_compute", "f32") == mode]
                if match:
                    xs.append(g + (i - (len(modes) - 1) / 2) * width)
                    ys.append(match[0][f"{field}_speedup"])
            bars = ax.bar(xs, ys, width=width, color=COLORS.get(mode, "#7f7f7f"), label=f"MoEKit {mode}")
            for b, y in zip(bars, ys):
                ax.annotate(f"{y:.2f}", (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom", fontsize=7)
        ax.axhline(TARGETS[field], linestyle="--", color="black", linewidth=1, label=f"target {TARGETS[field]:.1f}x")
        ax.axhline(1.0, linestyle=":", color="gray", linewidth=1)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{s}\n{t}" for s, t in groups], fontsize=8)
        ax.set_ylabel("speed-up over llama.cpp (x)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle(f"MoEKit vs llama.cpp {data.get('llama_cpp_python', '')} on the same GGUF MoE layers, "
                 f"{data.get('threads', 2)} threads, {data.get('date', '')}", fontsize=10)
    fig.tight_layout()
    base, _ = os.path.splitext(args.out)
    fig.savefig(base + ".svg")
    fig.savefig(base + ".png", dpi=110)
    print(f"wrote {base}.svg and {base}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
