#!/usr/bin/env bash
# Build a Rust program that uses candle-core/candle-nn 0.11.x with features=["cuda"]
# on a CPU-only x86_64 Debian machine that has no NVIDIA toolkit/driver and reaches
# only the Rust and Python package registries. The CUDA 13.0 toolkit (nvcc, headers, libs to link against)
# comes from NVIDIA's PyPI wheels; libcuda.so (driver) is replaced by a generated stub.
#
# A build helper for the CUDA binary (cargo metadata resolves with --features cuda,
# since cudarc is an optional dependency that is absent from the default resolve).
# Usage: scripts/build-cuda.sh PROJECT_DIR [CARGO_BUILD_ARGS...]   (default args: --features cuda --target-dir target-cuda)
#   env: WORK (default ~/.cache/cuda13-build)  CUDA_COMPUTE_CAP (default 90 = H100)
#        CUDAFORGE_THREADS (default: nproc) - parallel nvcc jobs in candle-kernels' build.rs
# Output: PROJECT_DIR/target/release/<bin>; needs at run time (GPU box):
#   libcuda.so.1 (driver), libcudart.so.13, libcublas.so.13 (+libcublasLt.so.13), libcurand.so.10
set -euo pipefail

WORK=${WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/cuda13-build}
PROJ=$(realpath "${1:?usage: build_cuda.sh PROJECT_DIR [cargo build args]}")
shift
ARGS=("$@"); [ ${#ARGS[@]} -gt 0 ] || ARGS=(--features cuda --target-dir target-cuda)
mkdir -p "$WORK"
SITE=$WORK/site          # pip --target dir for the wheels
CUDA=$WORK/cuda          # assembled CUDA_ROOT (bin/ include/ nvvm/ lib64/ lib64/stubs/)

# Pin to CUDA 13.0 = what PyTorch cu130 wheels ship and what driver 580 supports.
# A newer nvcc (13.1+) emits PTX ISA > 9.0 that driver 580 cannot JIT, and cudarc 0.19.10
# panics on nvcc versions it does not know (e.g. 13.5).
PINS=(
  nvidia-cuda-nvcc==13.0.88     # bin/nvcc ptxas fatbinary nvlink cudafe++
  nvidia-nvvm==13.0.88          # nvvm/bin/cicc, libdevice (split out of nvcc in CUDA 13)
  nvidia-cuda-crt==13.0.88      # include/crt/*.h (split out in CUDA 13)
  nvidia-cuda-runtime==13.0.96  # cuda_runtime.h, cuda_bf16.h, libcudart.so.13
  nvidia-cuda-cccl==13.0.85     # include/cccl (cuda/std, cub, thrust)
  nvidia-cublas==13.1.1.3       # libcublas.so.13 libcublasLt.so.13 (+headers)
  nvidia-curand==10.4.0.35      # libcurand.so.10
  nvidia-cuda-nvrtc==13.0.88    # libnvrtc.so.13
)

# --- 1. toolkit from PyPI (all CUDA-13 wheels unpack into nvidia/cu13/{bin,include,lib,nvvm}) ---
if [ ! -x "$SITE/nvidia/cu13/bin/nvcc" ]; then
  python3 -m pip install --no-deps --target "$SITE" "${PINS[@]}"
fi
C=$SITE/nvidia/cu13
"$C/bin/nvcc" --version | tail -2

# --- 2. CUDA_ROOT layout that cudarc/cudaforge accept ---
mkdir -p "$CUDA/lib64/stubs"
ln -sfn "$C/bin" "$CUDA/bin"
ln -sfn "$C/include" "$CUDA/include"
ln -sfn "$C/nvvm" "$CUDA/nvvm"
for f in "$C"/lib/*.so.* "$C"/lib/*.a; do ln -sf "$f" "$CUDA/lib64/"; done
# wheels ship only versioned sonames; the linker (-lcublas etc.) needs the unversioned names
for l in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
  ln -sf "$l" "$CUDA/lib64/${l%%.so.*}.so"
done

# --- 3. libcuda stub (no wheel/Debian-main package ships one). candle-core turns on cudarc's
#        `dynamic-linking`, so the binary links -lcuda. Export every driver symbol cudarc declares;
#        SONAME libcuda.so.1 so the real driver lib is picked up on the GPU box. Each stub returns
#        34 = CUDA_ERROR_STUB_LIBRARY (what NVIDIA's own stub returns).
(cd "$PROJ" && cargo fetch)
CUDARC=$(cd "$PROJ" && cargo metadata --format-version 1 --features cuda | python3 -c '
import json, sys, os
m = json.load(sys.stdin)
print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"] == "cudarc"))')
grep -oP '^\s+fn \Kcu\w+(?=\()' "$CUDARC/src/driver/sys/mod.rs" | sort -u \
  | sed 's/.*/int &(void){return 34;}/' > "$CUDA/lib64/stubs/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA/lib64/stubs/libcuda.so" "$CUDA/lib64/stubs/libcuda_stub.c"

# --- 4. build ---
export CUDA_ROOT=$CUDA CUDA_HOME=$CUDA PATH=$CUDA/bin:$PATH
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}      # no nvidia-smi here; cudaforge makes it sm_90a
export CUDARC_CUDA_VERSION=13000                     # same as what cudarc reads from nvcc; explicit
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc)}
cd "$PROJ"
time cargo build --release "${ARGS[@]}"
echo "built:"; find target*/release -maxdepth 1 -type f -executable -newer Cargo.toml -printf '%p %s bytes\n'
