#!/usr/bin/env bash
# Fuzzes MoEKit's readers of untrusted input with libFuzzer (+ AddressSanitizer), each target for SECONDS
# (default 60), seeded from the test fixtures:
#   scripts/fuzz.sh [SECONDS] [TARGET…]        targets: safetensors gguf config route (default: all)
# Built in .build-fuzz (`-sanitize=fuzzer,address -DFUZZING`); corpora grow in .build-fuzz/corpus/TARGET.
# A crash leaves crash-* in the current folder and fails the script: replay it with a plain build,
# `swift run moe-fuzz TARGET crash-…`, minimise it (`.build-fuzz/debug/moe-fuzz -minimize_crash=1 …`), fix the
# reader, and keep the input as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors gguf config route)
scratch=.build-fuzz
# --sanitize=fuzzer instruments the fuzz target only; -sanitize-coverage and -fsanitize=fuzzer-no-link instrument
# every target (MoEKit, its C kernels) for coverage.
swift build --product moe-fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp -Xcc -fsanitize=fuzzer-no-link -Xswiftc -DFUZZING --scratch-path "$scratch"
fixtures=Tests/Fixtures
for target in "${targets[@]}"; do
    corpus="$scratch/corpus/$target"
    mkdir -p "$corpus"
    case "$target" in
    safetensors) find "$fixtures" -name '*.safetensors' -size -256k -exec cp {} "$corpus/" \; ;;
    gguf) find "$fixtures" -name '*.gguf' -size -256k -exec cp {} "$corpus/" \; ;;
    config) for f in "$fixtures"/*/checkpoint/config.json; do cp "$f" "$corpus/$(basename "$(dirname "$(dirname "$f")")").json"; done ;;
    route) printf '\x08\x01\x02\x00\x01\x02\x03\x04\x05\x06\x07\x80\x40\x20\x10\x08\x04\x02\x01' > "$corpus/seed" ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
    esac
    echo "fuzz: $target for $seconds s"
    MOE_FUZZ_TARGET="$target" ASAN_OPTIONS="detect_leaks=0" "$scratch/debug/moe-fuzz" "$corpus" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 | tail -8
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz: $target found a crash" >&2; exit 1; }
done
