#!/usr/bin/env bash
# Runs the tests under a sanitizer, in its own build folder (.build-<sanitizer>), so the normal builds stay.
#   scripts/sanitize.sh address   # AddressSanitizer (+ LeakSanitizer, scripts/lsan.supp): the whole suite
#   scripts/sanitize.sh thread    # ThreadSanitizer: the suites that run threads (see below)
# Under ThreadSanitizer the suite runs 5-15x slower, so only the tests where a data race could live run:
# the worker pool itself, the kernels' parallel regions and their determinism, the routers, and the
# in-process communicator with expert and tensor parallelism (MPI is a separate process per rank and is
# exercised by scripts/check_mpi.sh). The other suites are single-threaded parsers and checks.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizer="${1:-address}"
scratch=".build-$sanitizer"
case "$sanitizer" in
address)
    filter=()
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
    export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}"
    ;;
thread)
    filter=(--filter 'WorkerPoolTests|DeterminismTests|OneRowKernelTests|ISATests|KernelTests|BlockKernelTests|RouterTests|ExpertParallelTests|CollectiveTests|InProcessFaultTests|MeshTests|ShardedInputTests')
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
    ;;
*)
    echo "usage: scripts/sanitize.sh address|thread" >&2
    exit 2
    ;;
esac
swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch"
swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" "${filter[@]}"
