#!/usr/bin/env bash
# Everything the GPU check measures, in one command of under 8 minutes, so a short time on a GPU
# machine goes to measuring. Run on the GPU machine from the repository root, with the cuda
# binary unpacked:
#
#   here:   CUDAFORGE_THREADS=2 bash scripts/build-cuda.sh "$PWD" --features cuda --target-dir target-cuda
#           mkdir -p gpu && cp target-cuda/release/sweeplaw gpu/ && strip gpu/sweeplaw && xz -T2 -f gpu/sweeplaw
#           (gpu/ is git-ignored: copy it to the GPU machine beside the checkout)
#   there:  xz -d gpu/sweeplaw.xz && bash scripts/gpu-check.sh gpu/sweeplaw "$OUT" [PARTS]
#
# The parts run in priority order, each under its own time cap, and write their files as they go,
# so a part that hangs or runs out of time loses nothing written before it:
#   check  (90 s)  bench --check: gradients on the GPU, f32 against the CPU, bf16 against f32, every
#                  fused kernel against its composite op                        -> check.txt
#   bench (180 s)  scripts/bench_torch.py: sweeplaw (fused, composite) against PyTorch eager and
#                  torch.compile at the reference, mid and GPT-2-small shapes, with the bf16 matmul
#                  peak measured in the same command                           -> bench-h200/bench.{json,md}
#   ops    (70 s)  bench --ops at the GPT-2-small shape, flash attention on and off -> ops.txt
#   sweep (130 s)  configs/gpu-smoke.toml with 1 and with 4 runs per device, then fit and report
#                                                                               -> sweep-k1/, sweep-k4/
# PARTS (default: all, in that order) reruns only some, e.g. `... "$OUT" ops,sweep`.
# summary.txt (the table printed last) says, per part, its exit status or that it hit its cap.
#
# A dry run of the logic on a machine without a GPU: GPU_CHECK_DEVICE=cpu runs the same parts on
# the CPU with the CPU binary (GPU_CHECK_CAP_SCALE=0.1 shrinks every cap, to test the caps).
set -uo pipefail
USAGE="usage: gpu-check.sh SWEEPLAW_BINARY OUT_DIR [check,bench,ops,sweep]"
BIN=$(realpath "${1:?$USAGE}")
OUT=$(realpath -m "${2:?$USAGE}")
PARTS=",${3:-check,bench,ops,sweep},"
DEVICE=${GPU_CHECK_DEVICE:-cuda:0}
SCALE=${GPU_CHECK_CAP_SCALE:-1}
PY=${PY:-python3}
wants() { [[ $PARTS == *",$1,"* ]]; }
cap() { awk -v s="$1" -v k="$SCALE" 'BEGIN { c = int(s * k); print (c < 1 ? 1 : c) }'; }
mkdir -p "$OUT"
: > "$OUT/summary.txt"

if [[ $DEVICE == cuda* ]]; then
    NV=$("$PY" -c 'import nvidia; print(list(nvidia.__path__)[0])')
    export LD_LIBRARY_PATH="$(find "$NV" -maxdepth 3 -type d -name lib | tr '\n' ':')${LD_LIBRARY_PATH:-}"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
    TORCH_DEVICE=cuda
else
    echo "dry run on $DEVICE ($(nproc) cores)" > "$OUT/gpu.txt"
    TORCH_DEVICE=cpu
fi

# run PART CAP_SECONDS LOG COMMAND...: runs the command under its cap, appending to LOG as it
# goes, and records in summary.txt how it ended.
run() {
    local part=$1 seconds; seconds=$(cap "$2"); local log=$3; shift 3
    local start; start=$(date +%s)
    echo "== $part (cap ${seconds} s, $(date +%T))" | tee -a "$OUT/summary.txt"
    timeout --kill-after=10 "$seconds" "$@" >> "$log" 2>&1
    local status=$?
    local took=$(( $(date +%s) - start ))
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "$part: hit its ${seconds} s cap after ${took} s (output so far in $(basename "$log"))" >> "$OUT/summary.txt"
    else
        echo "$part: exit $status in ${took} s" >> "$OUT/summary.txt"
    fi
}

GPT2="--d-model 768 --n-layers 12 --n-heads 12 --seq-len 1024 --vocab-size 50304 --batch-size 16"

if wants check; then
    run check 90 "$OUT/check.txt" "$BIN" bench --check --device "$DEVICE"
fi

if wants bench; then
    run bench 180 "$OUT/bench.log" "$PY" scripts/bench_torch.py --device "$TORCH_DEVICE" \
        --sweeplaw "$BIN" --out "$OUT/bench-h200"
fi

if wants ops; then
    echo "# bench --ops $GPT2 (flash attention on)" >> "$OUT/ops.txt"
    run ops-flash 35 "$OUT/ops.txt" "$BIN" bench --ops --device "$DEVICE" $GPT2 --steps 10
    echo "# the same with flash attention off (the fused softmax between cuBLAS matmuls)" >> "$OUT/ops.txt"
    SWEEPLAW_CUDA_KERNELS_OFF=flash_attention \
        run ops-no-flash 35 "$OUT/ops.txt" "$BIN" bench --ops --device "$DEVICE" $GPT2 --steps 10
fi

if wants sweep; then
    # configs/gpu-smoke.toml on $DEVICE (the same file on cuda:0; a dry run trains on the CPU),
    # kept beside the results it made.
    sed "s|^device = .*|device = \"$DEVICE\"|" configs/gpu-smoke.toml > "$OUT/gpu-smoke.toml"
    run sweep-k1 70 "$OUT/sweep-k1.log" "$BIN" sweep "$OUT/gpu-smoke.toml" \
        --results "$OUT/sweep-k1" --runs-per-device 1 --quiet
    run sweep-k4 50 "$OUT/sweep-k4.log" "$BIN" sweep "$OUT/gpu-smoke.toml" \
        --results "$OUT/sweep-k4" --runs-per-device 4 --quiet
    run fit 5 "$OUT/fit.log" "$BIN" fit "$OUT/sweep-k1/gpu-smoke" --holdout 2
    run report 5 "$OUT/report.log" "$BIN" report "$OUT/sweep-k1/gpu-smoke"
fi

{
    echo
    echo "device: $(cat "$OUT/gpu.txt")"
    for f in check.txt bench-h200/bench.md ops.txt; do
        [ -f "$OUT/$f" ] && { echo; echo "--- $f"; cat "$OUT/$f"; }
    done
} >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
