#!/usr/bin/env bash
# Expert parallelism across processes: for every MoE layer of the golden fixtures, `mpirun -np D moe
# forward --mpi` must write the same bytes as one device, for D = 2 and 4 where D divides E; and a rank
# that withholds its messages must stop the whole job with a clear error once the time limit passes.
# Needs a `swift build -c release --traits MPI` build and Open MPI. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
moe=.build/release/moe
fixtures=Tests/Fixtures
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
passed=0 failed=0

check() {  # name, command...
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name"; fi
}

same_as_one_device() {  # fixture layer ranks [mesh]
    local dir=$fixtures/$1 layer=$2 ranks=$3 mesh=${4:+--mesh $4}
    "$moe" forward --checkpoint "$dir/checkpoint" --layer "$layer" --input "$dir/layer$layer.safetensors" \
        --output "$scratch/one.safetensors" --threads 1 || return 1
    mpirun --oversubscribe -np "$ranks" "$moe" forward --checkpoint "$dir/checkpoint" --layer "$layer" \
        --input "$dir/layer$layer.safetensors" --output "$scratch/mpi.safetensors" --mpi $mesh --threads 1 --timeout 60 < /dev/null || return 1
    cmp -s "$scratch/one.safetensors" "$scratch/mpi.safetensors"
}

while read -r fixture layer experts; do
    for ranks in 2 4; do
        if [ $((experts % ranks)) -eq 0 ]; then
            check "$fixture layer $layer, $ranks ranks" same_as_one_device "$fixture" "$layer" "$ranks"
        fi
    done
    check "$fixture layer $layer, 4 ranks as a 2x2 mesh" same_as_one_device "$fixture" "$layer" 4 2x2
done < <(python3 - "$fixtures" <<'PY'
import json, sys
root = sys.argv[1]
for f in json.load(open(f"{root}/manifest.json"))["fixtures"]:
    cfg = json.load(open(f"{root}/{f['name']}/checkpoint/config.json"))
    cfg = cfg.get("text_config", cfg)
    e = cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts")
    for l in f["layers"]:
        if l["kind"] == "moe":
            print(f["name"], l["layer"], e)
PY
)

hung_rank_stops_everyone() {  # a rank withholds its messages: the others time out and stop the job
    local dir=$fixtures/mixtral-f32 start end
    start=$(date +%s)
    if mpirun --oversubscribe -np 4 "$moe" forward --checkpoint "$dir/checkpoint" --layer 0 \
        --input "$dir/layer0.safetensors" --output "$scratch/dead.safetensors" --mpi --timeout 5 \
        --simulate-hung-rank 2 < /dev/null > "$scratch/dead.log" 2>&1; then
        echo "a hung rank went unnoticed"; return 1
    fi
    end=$(date +%s)
    [ $((end - start)) -lt 30 ] || { echo "took $((end - start)) s"; return 1; }
    [ ! -e "$scratch/dead.safetensors" ] || { echo "an output was written"; return 1; }
    grep -q "moe: error: rank .* got no answer from the other ranks within 5" "$scratch/dead.log" || { cat "$scratch/dead.log"; return 1; }
}
check "a rank that withholds its messages stops the job" hung_rank_stops_everyone

mismatched_ranks_refused() {  # rank 1 runs another checkpoint: detected at start-up
    local a=$fixtures/mixtral-f32 b=$fixtures/mixtral-bf16
    if mpirun --oversubscribe -np 1 "$moe" forward --checkpoint "$a/checkpoint" --layer 0 --input "$a/layer0.safetensors" \
        --output "$scratch/mix.safetensors" --mpi --timeout 20 : \
        -np 1 "$moe" forward --checkpoint "$b/checkpoint" --layer 0 --input "$a/layer0.safetensors" \
        --output "$scratch/mix.safetensors" --mpi --timeout 20 < /dev/null > "$scratch/mix.log" 2>&1; then
        echo "mismatched ranks went unnoticed"; return 1
    fi
    grep -q "moe: error: .*ranks disagree: rank 0 runs" "$scratch/mix.log" || { cat "$scratch/mix.log"; return 1; }
}
check "ranks running different checkpoints are refused" mismatched_ranks_refused

run_job_bit_identical() {  # the main job over 4 ranks reports an output identical to one device
    mpirun --oversubscribe -np 4 "$moe" run --mpi --tokens 64 --repeats 1 --threads 1 --json < /dev/null > "$scratch/run.json" || return 1
    grep -q '"bit_identical_to_one_device":true' "$scratch/run.json" || { cat "$scratch/run.json"; return 1; }
}
check "moe run --mpi over 4 ranks matches one device" run_job_bit_identical

echo "mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
