#!/usr/bin/env bash
# Run a candle-cuda binary (built by scripts/build-cuda.sh) on a GPU machine that has no Rust toolchain
# but has PyTorch and its CUDA-13 pip wheels in its python3.
# Usage: scripts/run-on-gpu.sh ./probe [args...]
set -euo pipefail
PY=${PY:-python3}   # the python3 that has PyTorch and its CUDA 13 wheels
# `nvidia` is a namespace package: nvidia.__file__ is None, use __path__.
NV=$("$PY" -c 'import nvidia; print(list(nvidia.__path__)[0])')
# cu13 wheels: everything in nvidia/cu13/lib; cu12-style wheels: nvidia/<pkg>/lib. Take all.
LIBS=$(find "$NV" -maxdepth 3 -type d -name lib | tr '\n' ':')
export LD_LIBRARY_PATH="${LIBS}${LD_LIBRARY_PATH:-}"
# libcuda.so.1 comes from the driver (/usr/lib/x86_64-linux-gnu), not from pip.
IFS=: read -ra DIRS <<< "$LIBS"
for l in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do
  found=; for d in "${DIRS[@]}"; do [ -e "$d/$l" ] && found=$d; done
  [ -n "$found" ] || echo "WARNING: $l not found under $NV (is this torch built for CUDA 13?)" >&2
done
ldd "$1" | grep -E 'cuda|cublas|curand|not found' >&2 || true
exec "$@"
