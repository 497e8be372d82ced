// What every sweeplaw kernel shares: loads and stores that compute in f32 whatever the storage
// dtype (f32 or bf16), and warp and block reductions.
//
// The kernels are compiled to PTX at build time by build.rs (feature `cuda`, through cudaforge,
// like candle-kernels) and launched from src/ops/cuda/. Without a GPU they compile with g++
// against kernels/emulated.h, which runs each CUDA thread as an OS thread, so the tests in
// src/ops/cuda_emulated.rs check them against the composite ops on the CPU.
//
// Launch rules shared by all kernels: a block has blockDim.x threads, a multiple of 32 and at most
// 1024, and every thread of a block reaches every block reduction (no early return before one).
#pragma once

#ifdef SWEEPLAW_EMULATED
#include "emulated.h"
#else
#include <cuda_bf16.h>
#include <stdint.h>
#endif

namespace sweeplaw {

__device__ __forceinline__ float load(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, size_t i, float v) { p[i] = __float2bfloat16(v); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum of `v` over the block; every thread gets the total. Warps are added in a fixed order, so
// the result does not depend on scheduling.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    v = warp_sum(v);
    __syncthreads();  // a previous call may still be reading `partial`
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    float total = 0.0f;
    for (unsigned w = 0; w < (blockDim.x >> 5); ++w) total += partial[w];
    return total;
}

// Maximum of `v` over the block; every thread gets it.
__device__ __forceinline__ float block_max(float v) {
    __shared__ float partial[32];
    v = warp_max(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    float best = -INFINITY;
    for (unsigned w = 0; w < (blockDim.x >> 5); ++w) best = fmaxf(best, partial[w]);
    return best;
}

}  // namespace sweeplaw

// Instantiates a kernel for both storage dtypes: `DEFINE(f32, float)` and `DEFINE(bf16, __nv_bfloat16)`,
// where DEFINE(SUFFIX, T) defines the extern "C" entry point `name_##SUFFIX`.
#define SWEEPLAW_FOR_DTYPES(DEFINE) DEFINE(f32, float) DEFINE(bf16, __nv_bfloat16)
