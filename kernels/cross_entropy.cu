// Cross-entropy of logits against integer targets, per row, and its backward, in place of
// candle's log-softmax (max, subtract, exp, sum, log) plus gather; it reads bf16 logits directly,
// so the (N, V) logits need no f32 copy. Arithmetic is in f32.
// Forward, per row: loss = lse - l_t with lse = log sum_j exp(l_j). Backward, with g the
// gradient of the row's loss: dl_j = g (exp(l_j - lse) - [j = t]).
// A target outside 0..V gives a NaN loss, so the run's divergence check stops it.
#include "common.cuh"

using namespace sweeplaw;

// Log-sum-exp of row `row` of logits (rows, vocab); every thread of the block gets it.
template <typename T>
__device__ __forceinline__ float row_logsumexp(const T* logits, size_t row, int vocab) {
    const T* l = logits + row * vocab;
    float best = -INFINITY;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) best = fmaxf(best, load(l, j));
    best = block_max(best);
    float total = 0.0f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) total += expf(load(l, j) - best);
    return best + logf(block_sum(total));
}

// Launch: grid (rows), block (any). logits (rows, vocab); targets, losses (rows).
template <typename T>
__device__ void cross_entropy_fwd(const T* logits, const uint32_t* targets, float* losses, int vocab) {
    size_t row = blockIdx.x;
    float lse = row_logsumexp(logits, row, vocab);
    if (threadIdx.x == 0) {
        uint32_t t = targets[row];
        losses[row] = t < (uint32_t)vocab ? lse - load(logits, row * vocab + t) : NAN;
    }
}

// Launch: grid (rows), block (any). d_losses (rows) f32; d_logits (rows, vocab).
template <typename T>
__device__ void cross_entropy_bwd(const T* logits, const uint32_t* targets, const float* d_losses, T* d_logits,
                                  int vocab) {
    size_t row = blockIdx.x;
    float lse = row_logsumexp(logits, row, vocab);
    float g = d_losses[row];
    uint32_t t = targets[row];
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        size_t i = row * vocab + j;
        float onehot = (uint32_t)j == t ? 1.0f : 0.0f;
        store(d_logits, i, g * (expf(load(logits, i) - lse) - onehot));
    }
}

#define DEFINE(SUFFIX, T)                                                                                     \
    extern "C" __global__ void cross_entropy_fwd_##SUFFIX(const T* logits, const uint32_t* targets,           \
                                                          float* losses, int vocab) {                         \
        cross_entropy_fwd<T>(logits, targets, losses, vocab);                                                 \
    }                                                                                                         \
    extern "C" __global__ void cross_entropy_bwd_##SUFFIX(const T* logits, const uint32_t* targets,           \
                                                          const float* d_losses, T* d_logits, int vocab) {    \
        cross_entropy_bwd<T>(logits, targets, d_losses, d_logits, vocab);                                     \
    }
SWEEPLAW_FOR_DTYPES(DEFINE)
