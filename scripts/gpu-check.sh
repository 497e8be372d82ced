#!/usr/bin/env bash
# Everything the GPU check measures, in one command, so a short time on a GPU machine goes to
# measuring. Run on the GPU machine from the repository root, with the cuda binary unpacked:
#
#   here:   CUDAFORGE_THREADS=2 bash scripts/build-cuda.sh "$PWD" --features cuda --target-dir target-cuda
#           mkdir -p gpu && cp target-cuda/release/sweeplaw gpu/ && strip gpu/sweeplaw && xz -T2 -f gpu/sweeplaw
#           (gpu/ is git-ignored: copy it to the GPU machine beside the checkout)
#   there:  xz -d gpu/sweeplaw.xz && bash scripts/gpu-check.sh gpu/sweeplaw "$OUT" [PARTS]
#
# PARTS (default: all of them) picks what to run, so each command can stay under ten minutes:
# check, ops, bench, sweep, one or several at a time (e.g. `... "$OUT" check,ops`).
#
# Writes under OUT: check.txt (bench --check: gradients, f32 vs cpu, bf16 vs f32, fused kernels vs
# composite ops), ops.txt (bench --ops: each op fused and composite at the three shapes), bench-h100/
# (bench.json, bench.md: scripts/bench_torch.py, PyTorch eager and compile against sweeplaw),
# sweep/ (configs/gpu-smoke.toml trained on cuda:0 with one and with 4 runs per device, fit and
# report), and summary.txt, the table printed last.
set -uo pipefail
BIN=$(realpath "${1:?usage: gpu-check.sh SWEEPLAW_BINARY OUT_DIR [check,ops,bench,sweep]}")
OUT=$(realpath -m "${2:?usage: gpu-check.sh SWEEPLAW_BINARY OUT_DIR [check,ops,bench,sweep]}")
PARTS=",${3:-check,ops,bench,sweep},"
wants() { [[ $PARTS == *",$1,"* ]]; }
mkdir -p "$OUT"
PY=${PY:-python3}
NV=$("$PY" -c 'import nvidia; print(list(nvidia.__path__)[0])')
export LD_LIBRARY_PATH="$(find "$NV" -maxdepth 3 -type d -name lib | tr '\n' ':')${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1

step() { echo "== $1 ($(date +%T))" | tee -a "$OUT/summary.txt"; }

if wants check; then
step "device check"
"$BIN" bench --check --device cuda:0 > "$OUT/check.txt" 2>&1
echo "bench --check exit $?" >> "$OUT/summary.txt"
fi

if wants ops; then
step "per-op profile, fused kernels against composite ops"
for shape in "--d-model 256 --n-layers 4 --n-heads 4 --seq-len 256 --vocab-size 2048" \
             "--d-model 512 --n-layers 8 --n-heads 8 --seq-len 512 --vocab-size 8192" \
             "--d-model 768 --n-layers 12 --n-heads 12 --seq-len 1024 --vocab-size 50304"; do
  echo "# bench --ops $shape --batch-size 16" >> "$OUT/ops.txt"
  "$BIN" bench --ops --device cuda:0 $shape --batch-size 16 --steps 10 >> "$OUT/ops.txt" 2>&1
done
echo "# the same at the GPT-2-small shape with flash attention off (the fused softmax instead)" >> "$OUT/ops.txt"
SWEEPLAW_CUDA_KERNELS_OFF=flash_attention "$BIN" bench --ops --device cuda:0 --d-model 768 --n-layers 12 \
  --n-heads 12 --seq-len 1024 --vocab-size 50304 --batch-size 16 --steps 10 >> "$OUT/ops.txt" 2>&1
echo "bench --ops exit $?" >> "$OUT/summary.txt"
fi

if wants bench; then
step "speed against PyTorch"
"$PY" scripts/bench_torch.py --device cuda --sweeplaw "$BIN" --out "$OUT/bench-h100" \
  > "$OUT/bench.log" 2>&1
echo "bench_torch exit $?" >> "$OUT/summary.txt"
fi

if wants sweep; then
for k in 1 4; do
  step "sweep, $k run(s) per device"
  start=$(date +%s)
  "$BIN" sweep configs/gpu-smoke.toml --results "$OUT/sweep-k$k" --runs-per-device "$k" \
    > "$OUT/sweep-k$k.log" 2>&1
  echo "sweep k=$k exit $? in $(( $(date +%s) - start )) s" >> "$OUT/summary.txt"
done
"$BIN" fit "$OUT/sweep-k1/gpu-smoke" --holdout 2 > "$OUT/fit.log" 2>&1
"$BIN" report "$OUT/sweep-k1/gpu-smoke" > "$OUT/report.log" 2>&1
fi

cat "$OUT/gpu.txt" >> "$OUT/summary.txt"
for f in check.txt ops.txt bench-h100/bench.md; do [ -f "$OUT/$f" ] && cat "$OUT/$f" >> "$OUT/summary.txt"; done
cat "$OUT/summary.txt"
