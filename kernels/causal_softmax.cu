// The causal softmax of attention scores (Vaswani et al. 2017, eq. 1, with a causal mask) in one
// kernel per pass, in place of candle's scale, mask, max, subtract, exp, sum and divide kernels.
// The scores come from one cuBLAS matmul q k^T and the probabilities go to another (P v).
// Forward, per row i of the (T, T) scores of one head: p_j = softmax_j(scale s_j) over the keys
// j <= i, and p_j = 0 for j > i. Backward: ds_j = scale p_j (dp_j - sum_k p_k dp_k); ds_j = 0 for j > i.
// Arithmetic is in f32 whatever the storage dtype.
#include "common.cuh"

using namespace sweeplaw;

// Launch: grid (rows), block (any); rows = B H T, and row r is query position r % seq.
// scores, probs (rows, seq).
template <typename T>
__device__ void causal_softmax_fwd(const T* scores, T* probs, int seq, float scale) {
    size_t row = blockIdx.x;
    int visible = (int)(row % seq) + 1;  // keys 0 ..= query position
    const T* s = scores + row * seq;
    T* p = probs + row * seq;
    float best = -INFINITY;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) best = fmaxf(best, scale * load(s, j));
    best = block_max(best);
    float total = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) total += expf(scale * load(s, j) - best);
    float inv_total = 1.0f / block_sum(total);
    for (int j = threadIdx.x; j < seq; j += blockDim.x) {
        store(p, j, j < visible ? expf(scale * load(s, j) - best) * inv_total : 0.0f);
    }
}

// Launch: grid (rows), block (any). probs, d_probs, d_scores (rows, seq).
template <typename T>
__device__ void causal_softmax_bwd(const T* probs, const T* d_probs, T* d_scores, int seq, float scale) {
    size_t row = blockIdx.x;
    int visible = (int)(row % seq) + 1;
    const T* p = probs + row * seq;
    const T* dp = d_probs + row * seq;
    T* ds = d_scores + row * seq;
    float dot = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) dot += load(p, j) * load(dp, j);
    dot = block_sum(dot);
    for (int j = threadIdx.x; j < seq; j += blockDim.x) {
        store(ds, j, j < visible ? scale * load(p, j) * (load(dp, j) - dot) : 0.0f);
    }
}

#define DEFINE(SUFFIX, T)                                                                                    \
    extern "C" __global__ void causal_softmax_fwd_##SUFFIX(const T* scores, T* probs, int seq, float scale) { \
        causal_softmax_fwd<T>(scores, probs, seq, scale);                                                    \
    }                                                                                                        \
    extern "C" __global__ void causal_softmax_bwd_##SUFFIX(const T* probs, const T* d_probs, T* d_scores,    \
                                                           int seq, float scale) {                           \
        causal_softmax_bwd<T>(probs, d_probs, d_scores, seq, scale);                                         \
    }
SWEEPLAW_FOR_DTYPES(DEFINE)
