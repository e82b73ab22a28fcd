#!/usr/bin/env python3
"""Hostile-input sweep of the `moe` command: every run must end cleanly.

What it runs (against the release binary, on copies of the golden fixtures):
  config   every numeric value of config.json (nested ones and list elements too) set to 0, -1, +-2^40, 1.5,
           null, a string, a list, an object, true and 1e308, over one fixture per architecture and the quantized
           ones; each variant through `moe inspect` and `moe forward` (and `moe estimate --config`);
  input    hostile `hidden_states` files: wrong dtype, rank, width, empty batch, NaN, Inf, missing or extra
           tensors, truncated data, a lying header length, an empty file;
  flags    out-of-range and malformed flags of every subcommand;
  file     random mutations of a checkpoint's model.safetensors (seeded): header bytes flipped, header length
           rewritten, the file truncated, dtypes / shapes / data_offsets of a tensor replaced by hostile values,
           data bytes overwritten (NaN and huge FP8/MXFP4 scales included).

A run passes when it exits 0, or exits non-zero with exactly one line on stderr. It fails as
  crash    killed by a signal (a Swift trap, SIGSEGV, the OOM killer) or an exit status above 127;
  hang     still running after --timeout seconds;
  dump     a non-zero exit with more (or less) than one line on stderr.
The summary prints runs and failures per category and every failure's command line; --json writes them all.
Exit status: 0 when nothing failed.

    swift build -c release --product moe && python3 scripts/hostile_sweep.py [--mutations 1500] [--jobs 2]

Standard library only; deterministic for a given --seed.
"""
import argparse
import concurrent.futures
import copy
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")

# One fixture per architecture, and the quantized ones: (fixture, MoE layer to forward).
CONFIG_FIXTURES = [("mixtral-f32", 1), ("qwen2-moe", 0), ("qwen3-moe", 1), ("qwen3-moe-fused", 1),
                   ("deepseek-v3-f32", 1), ("gpt-oss", 1), ("olmoe", 1), ("llama4", 1),
                   ("gpt-oss-mxfp4", 1), ("deepseek-v3-fp8", 1), ("qwen3-moe-fp8", 1)]
MUTATION_FIXTURES = [("mixtral-f32", 1), ("deepseek-v3-fp8", 1), ("gpt-oss-mxfp4", 1), ("qwen3-moe-fp8", 1)]
HOSTILE_VALUES = [0, -1, 2 ** 40, -(2 ** 40), 1.5, None, "x", [1], {"a": 1}, True, 1e308]


# ------------------------------------------------------------------------------------------------------------
# running one command
# ------------------------------------------------------------------------------------------------------------
def run_one(job):
    category, label, argv, timeout = job
    try:
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return category, label, argv, "hang", "", None
    err = p.stderr.decode("utf-8", "replace")
    lines = [l for l in err.splitlines() if l.strip()]
    if p.returncode < 0 or p.returncode > 127:
        verdict = "crash"
    elif p.returncode == 0:
        verdict = "ok"
    elif len(lines) == 1:
        verdict = "ok"
    else:
        verdict = "dump"
    return category, label, argv, verdict, err[-2000:] if verdict != "ok" else lines[0] if lines else "", p.returncode


# ------------------------------------------------------------------------------------------------------------
# safetensors
# ------------------------------------------------------------------------------------------------------------
def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_safetensors(path, header, payload, header_len=None):
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob) if header_len is None else header_len % 2 ** 64))
        f.write(blob)
        f.write(payload)


def f32_tensors(tensors):
    """{name: (shape, [floats])} -> (header, payload) with F32 data."""
    header, payload = {}, b""
    for name, (shape, values) in tensors.items():
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(payload), len(payload) + len(raw)]}
        payload += raw
    return header, payload


# ------------------------------------------------------------------------------------------------------------
# the sweep's parts
# ------------------------------------------------------------------------------------------------------------
def numeric_paths(obj, prefix=()):
    """Paths of every int/float (not bool) value of a JSON object, list elements included."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from numeric_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from numeric_paths(v, prefix + (i,))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix


def set_path(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def link_checkpoint(src, dst, config=None):
    """dst: a folder whose config.json is `config` (or a copy) and whose other files link to src's."""
    os.makedirs(dst)
    for fn in os.listdir(src):
        if fn == "config.json" and config is not None:
            with open(os.path.join(dst, fn), "w") as f:
                f.write(json.dumps(config, allow_nan=True))
        else:
            os.symlink(os.path.join(src, fn), os.path.join(dst, fn))


def config_jobs(moe, work, timeout):
    jobs = []
    for fixture, layer in CONFIG_FIXTURES:
        src = os.path.join(FIXTURES, fixture, "checkpoint")
        with open(os.path.join(src, "config.json")) as f:
            config = json.load(f)
        inp = os.path.join(FIXTURES, fixture, f"layer{layer}.safetensors")
        for path in numeric_paths(config):
            for value in HOSTILE_VALUES:
                c = copy.deepcopy(config)
                set_path(c, path, value)
                d = os.path.join(work, "config", f"{fixture}-{len(jobs)}")
                link_checkpoint(src, d, c)
                key = ".".join(str(p) for p in path)
                label = f"{fixture} {key}={json.dumps(value)}"
                out = os.path.join(d, "out.safetensors")
                jobs.append(("config", label + " inspect", [moe, "inspect", "--checkpoint", d], timeout))
                jobs.append(("config", label + " forward", [moe, "forward", "--checkpoint", d, "--layer", str(layer),
                                                            "--input", inp, "--output", out, "--threads", "2"], timeout))
                jobs.append(("config", label + " estimate", [moe, "estimate", "--config", os.path.join(d, "config.json"),
                                                             "--json"], timeout))
    return jobs


def input_jobs(moe, work, timeout):
    jobs = []
    d = os.path.join(work, "input")
    os.makedirs(d)
    rng = random.Random(7)
    # Safetensors checkpoints in the exact mode, and GGUF files in int8 compute (its activation quantizer meets the
    # hostile values: subnormal blocks whose scale underflows, infinities).
    for fixture, layer, model, extra in [("mixtral-f32", 1, "checkpoint", []), ("deepseek-v3-fp8", 1, "checkpoint", []),
                                         ("gpt-oss-mxfp4", 1, "checkpoint", []),
                                         ("qwen3moe-gguf", 0, "model.gguf", ["--compute", "int8"]),
                                         ("gpt-oss-gguf", 1, "model.gguf", ["--compute", "int8"])]:
        ckpt = os.path.join(FIXTURES, fixture, model)
        H = read_safetensors(os.path.join(FIXTURES, fixture, f"layer{layer}.safetensors"))[0]["hidden_states"]["shape"][-1]
        vals = lambda n: [rng.uniform(-2, 2) for _ in range(n)]
        cases = {
            "rank1": {"hidden_states": ([H], vals(H))},
            "rank4": {"hidden_states": ([1, 1, 2, H], vals(2 * H))},
            "width+1": {"hidden_states": ([3, H + 1], vals(3 * (H + 1)))},
            "width-1": {"hidden_states": ([3, H - 1], vals(3 * (H - 1)))},
            "empty-batch": {"hidden_states": ([0, H], [])},
            "zero-width": {"hidden_states": ([3, 0], [])},
            "nan": {"hidden_states": ([3, H], [math.nan] + vals(3 * H - 1))},
            "inf": {"hidden_states": ([3, H], vals(3 * H - 1) + [math.inf])},
            "huge": {"hidden_states": ([3, H], [3e38] * (3 * H))},
            "subnormal": {"hidden_states": ([3, H], [(i % 7 - 3) * 1e-41 for i in range(3 * H)])},
            "missing": {"x": ([3, H], vals(3 * H))},
            "extra": {"hidden_states": ([3, H], vals(3 * H)), "other": ([2], vals(2))},
        }
        files = {}
        for name, tensors in cases.items():
            header, payload = f32_tensors(tensors)
            files[name] = (header, payload, None)
        good_header, good_payload = f32_tensors({"hidden_states": ([3, H], vals(3 * H))})
        for dtype in ["F16", "BF16", "I32", "F64", "U8", "BOOL", "F8_E4M3", "Q4"]:
            h = copy.deepcopy(good_header)
            h["hidden_states"]["dtype"] = dtype
            files["dtype-" + dtype] = (h, good_payload, None)
        files["truncated"] = (good_header, good_payload[: len(good_payload) // 2], None)
        files["header-len-huge"] = (good_header, good_payload, 2 ** 63)
        files["header-len-past-end"] = (good_header, good_payload, 10 ** 6)
        files["header-len-zero"] = (good_header, good_payload, 0)
        h = copy.deepcopy(good_header)
        h["hidden_states"]["shape"] = [2 ** 40, H]
        files["shape-lies"] = (h, good_payload, None)
        h = copy.deepcopy(good_header)
        h["hidden_states"]["data_offsets"] = [0, 2 ** 62]
        files["offsets-lie"] = (h, good_payload, None)
        for name, (header, payload, hl) in files.items():
            path = os.path.join(d, f"{fixture}-{name}.safetensors")
            write_safetensors(path, header, payload, hl)
            jobs.append(("input", f"{fixture} {name}", [moe, "forward", "--checkpoint", ckpt, "--layer", str(layer),
                                                        "--input", path, "--output", path + ".out"] + extra, timeout))
        empty = os.path.join(d, f"{fixture}-empty-file.safetensors")
        open(empty, "wb").close()
        jobs.append(("input", f"{fixture} empty-file", [moe, "forward", "--checkpoint", ckpt, "--layer", str(layer),
                                                       "--input", empty, "--output", empty + ".out"], timeout))
        jobs.append(("input", f"{fixture} no-such-input", [moe, "forward", "--checkpoint", ckpt, "--layer", str(layer),
                                                          "--input", os.path.join(d, "nope"), "--output", empty], timeout))
        jobs.append(("input", f"{fixture} output-unwritable", [moe, "forward", "--checkpoint", ckpt, "--layer",
                                                              str(layer), "--input",
                                                              os.path.join(FIXTURES, fixture, f"layer{layer}.safetensors"),
                                                              "--output", "/proc/nope/out.safetensors"], timeout))
    return jobs


def flag_jobs(moe, work, timeout):
    ckpt = os.path.join(FIXTURES, "mixtral-f32", "checkpoint")
    inp = os.path.join(FIXTURES, "mixtral-f32", "layer1.safetensors")
    out = os.path.join(work, "flags-out.safetensors")
    bad_ints = ["0", "-1", "-9223372036854775808", "9223372036854775807", "99999999999999999999", "1.5", "abc", "",
                "0x10", "1e3", "NaN"]
    base = {
        "run": [moe, "run", "--tokens", "8", "--repeats", "1", "--check-tokens", "4"],
        "forward": [moe, "forward", "--checkpoint", ckpt, "--layer", "1", "--input", inp, "--output", out],
        "bench": [moe, "bench", "--suite", "smoke", "--repeats", "1"],
        "route": [moe, "route", "--input", inp, "--num-experts", "8", "--output", out],
        "estimate": [moe, "estimate", "--preset", "mixtral"],
    }
    per_command = {
        "run": ["--threads", "--devices", "--tokens", "--seed", "--repeats", "--check-tokens", "--layer", "--mesh"],
        "forward": ["--threads", "--devices", "--layer", "--timeout", "--mesh"],
        "bench": ["--threads", "--repeats", "--devices"],
        "route": ["--num-experts", "--devices"],
        "estimate": ["--tokens", "--devices", "--experts", "--top-k", "--skew"],
    }
    jobs = []
    for command, flags in per_command.items():
        for flag in flags:
            values = bad_ints + (["3y2", "0x2", "2x", "x2", "1000000x1000000", "2x2x2"] if flag == "--mesh" else [])
            for v in values:
                jobs.append(("flags", f"{command} {flag} {v!r}", base[command] + [flag, v], timeout))
    for command, extra in [("forward", ["--kernel", "slow"]), ("bench", ["--suite", "nope"]),
                           ("estimate", ["--ffn-scaling", "wide"]), ("estimate", ["--hardware", "/nope.json"]),
                           ("run", ["--preset", "nope"]), ("run", ["--config", "/nope.json"]),
                           ("run", ["--checkpoint", "/nope"]), ("estimate", ["--preset", "nope"]),
                           ("estimate", ["--dtype", "f7"]), ("estimate", ["--compute", "int3"]),
                           ("run", ["--unknown-flag"]), ("forward", ["--layer"])]:
        jobs.append(("flags", f"{command} {' '.join(extra)}", base[command] + extra, timeout))
    jobs.append(("flags", "no subcommand argument", [moe, "nope"], timeout))
    return jobs


def mutate(rng, header, payload):
    """One random hostile change; returns (what, header, payload, header_len or None)."""
    names = [n for n in header if n != "__metadata__"]
    name = rng.choice(names)
    kind = rng.choice(["header-byte", "header-len", "truncate", "dtype", "shape", "offsets", "data", "drop", "data"])
    h = copy.deepcopy(header)
    if kind == "header-byte":
        blob = bytearray(json.dumps(h, separators=(",", ":")).encode())
        for _ in range(rng.randint(1, 4)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        return f"header bytes", blob, payload, None
    if kind == "header-len":
        n = rng.choice([0, 1, 7, 2 ** 31, 2 ** 63, 2 ** 64 - 1, len(json.dumps(h)) + rng.randint(-40, 40)])
        return f"header length {n}", h, payload, n
    if kind == "truncate":
        cut = rng.randrange(len(payload) + 1)
        return f"payload cut at {cut}", h, payload[:cut], None
    if kind == "dtype":
        v = rng.choice(["F64", "I64", "U8", "F8_E5M2", "F8_E4M3", "BF16", "F16", "BOOL", "XX", 7, None])
        h[name]["dtype"] = v
        return f"{name} dtype {v!r}", h, payload, None
    if kind == "shape":
        shape = list(h[name]["shape"])
        choice = rng.choice(["neg", "huge", "zero", "drop", "add", "swap", "float", "str"])
        if choice == "neg" and shape:
            shape[rng.randrange(len(shape))] = -1
        elif choice == "huge" and shape:
            shape[rng.randrange(len(shape))] = rng.choice([2 ** 31, 2 ** 40, 2 ** 62, 2 ** 64])
        elif choice == "zero" and shape:
            shape[rng.randrange(len(shape))] = 0
        elif choice == "drop" and shape:
            shape.pop()
        elif choice == "add":
            shape.append(rng.choice([1, 2, 3]))
        elif choice == "swap":
            shape.reverse()
        elif choice == "float" and shape:
            shape[0] = 1.5
        else:
            shape = "x"
        h[name]["shape"] = shape
        return f"{name} shape {shape!r}", h, payload, None
    if kind == "offsets":
        a, b = h[name]["data_offsets"]
        v = rng.choice([[b, a], [a, a], [-8, b], [a, 2 ** 63], [a, b + 1], [a + 1, b], [0, len(payload) + 4],
                        [a, "x"], [a], None])
        h[name]["data_offsets"] = v
        return f"{name} offsets {v!r}", h, payload, None
    if kind == "drop":
        del h[name]
        return f"{name} removed", h, payload, None
    a, b = header[name]["data_offsets"]
    p = bytearray(payload)
    # single bytes (E8M0 0xFF, E4M3 0x7F NaN), BF16/F16-aligned NaN and F32-aligned NaN and infinity
    fill = rng.choice([b"\xff", b"\x7f", b"\x00", b"\x80", b"\xc0\x7f", b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f"])
    for _ in range(rng.randint(1, 16)):
        if b - a >= len(fill):
            i = a + rng.randrange((b - a) // len(fill)) * len(fill)
            p[i:i + len(fill)] = fill
    return f"{name} data {fill.hex()}", h, bytes(p[:len(payload)]), None


def mutation_jobs(moe, work, timeout, count, seed):
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        fixture, layer = MUTATION_FIXTURES[i % len(MUTATION_FIXTURES)]
        src = os.path.join(FIXTURES, fixture, "checkpoint")
        files = sorted(fn for fn in os.listdir(src) if fn.endswith(".safetensors"))
        target = rng.choice(files)
        header, payload = read_safetensors(os.path.join(src, target))
        what, h, p, hl = mutate(rng, header, payload)
        d = os.path.join(work, "file", f"{fixture}-{i}")
        os.makedirs(d)
        for fn in os.listdir(src):
            if fn != target:
                os.symlink(os.path.join(src, fn), os.path.join(d, fn))
        path = os.path.join(d, target)
        if isinstance(h, (bytes, bytearray)):
            with open(path, "wb") as f:
                blob = bytes(h) + b" " * (-len(h) % 8)
                f.write(struct.pack("<Q", len(blob)))
                f.write(blob)
                f.write(p)
        else:
            write_safetensors(path, h, p, hl)
        inp = os.path.join(FIXTURES, fixture, f"layer{layer}.safetensors")
        label = f"{fixture} {target}: {what}"
        jobs.append(("file", label + " inspect", [moe, "inspect", "--checkpoint", d], timeout))
        jobs.append(("file", label + " forward", [moe, "forward", "--checkpoint", d, "--layer", str(layer), "--input",
                                                  inp, "--output", os.path.join(d, "out.safetensors")], timeout))
    return jobs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moe", default=os.path.join(ROOT, ".build", "release", "moe"))
    ap.add_argument("--mutations", type=int, default=1500, help="random checkpoint mutations (2 runs each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--only", help="comma-separated categories: config,input,flags,file")
    ap.add_argument("--json", help="write every run's verdict here")
    args = ap.parse_args(argv)
    if not os.access(args.moe, os.X_OK):
        sys.exit(f"hostile_sweep: no moe binary at {args.moe} (swift build -c release --product moe)")
    only = set(args.only.split(",")) if args.only else {"config", "input", "flags", "file"}
    work = tempfile.mkdtemp(prefix="moe-sweep-")
    try:
        jobs = []
        if "config" in only:
            jobs += config_jobs(args.moe, work, args.timeout)
        if "input" in only:
            jobs += input_jobs(args.moe, work, args.timeout)
        if "flags" in only:
            jobs += flag_jobs(args.moe, work, args.timeout)
        if "file" in only:
            jobs += mutation_jobs(args.moe, work, args.timeout, args.mutations, args.seed)
        results = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for i, r in enumerate(pool.map(run_one, jobs)):
                results.append(r)
                if (i + 1) % 500 == 0:
                    print(f"  {i + 1}/{len(jobs)} runs", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'category':<10}{'runs':>7}{'refused':>9}{'crash':>7}{'hang':>6}{'dump':>6}")
    for cat in ["config", "input", "flags", "file"]:
        rs = [r for r in results if r[0] == cat]
        if not rs:
            continue
        count = lambda v: sum(1 for r in rs if r[3] == v)
        refused = sum(1 for r in rs if r[3] == "ok" and r[5] != 0)
        print(f"{cat:<10}{len(rs):>7}{refused:>9}{count('crash'):>7}{count('hang'):>6}{count('dump'):>6}")
    failures = [r for r in results if r[3] != "ok"]
    print(f"{len(results)} runs, {len(failures)} failures")
    for cat, label, argv, verdict, err, _ in failures:
        print(f"\n{verdict.upper()}: {cat}: {label}\n  {' '.join(argv)}\n  " + err.strip().replace("\n", "\n  "))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"category": c, "case": l, "argv": a, "verdict": v, "status": rc, "stderr": e}
                   for c, l, a, v, e, rc in results],
                      f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
