// RMSNorm (Zhang & Sennrich 2019, eq. 4) over the last dimension and its backward.
// Forward, per row x (d): r = 1 / sqrt(mean(x^2) + eps), y = x r w.
// Backward with g = w dy and n = x r:
//   dx = r (g - n mean(g n))            (one block per row)
//   dw = sum over rows of dy n          (column partial sums over row chunks, summed by the caller)
#include "common.cuh"

using namespace sweeplaw;

// Inverse RMS of row `row` of x (rows, d); every thread of the block gets it.
template <typename T>
__device__ __forceinline__ float row_inv_rms(const T* x, size_t row, int d, float eps) {
    float sum_squares = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float v = load(x, row * d + j);
        sum_squares += v * v;
    }
    return rsqrtf(block_sum(sum_squares) / d + eps);
}

// Launch: grid (rows), block (any). x, y (rows, d); w (d).
template <typename T>
__device__ void rms_norm_fwd(const T* x, const T* w, T* y, int d, float eps) {
    size_t row = blockIdx.x;
    float r = row_inv_rms(x, row, d, eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) store(y, row * d + j, load(x, row * d + j) * r * load(w, j));
}

// Launch: grid (rows), block (any). Writes dx (rows, d) and the row's inverse RMS to inv_rms (rows).
template <typename T>
__device__ void rms_norm_bwd_x(const T* x, const T* w, const T* dy, T* dx, float* inv_rms, int d, float eps) {
    size_t row = blockIdx.x;
    float r = row_inv_rms(x, row, d, eps);
    float dot = 0.0f;  // sum over the row of g n
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        size_t i = row * d + j;
        dot += load(w, j) * load(dy, i) * load(x, i) * r;
    }
    float mean_gn = block_sum(dot) / d;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        size_t i = row * d + j;
        store(dx, i, r * (load(w, j) * load(dy, i) - load(x, i) * r * mean_gn));
    }
    if (threadIdx.x == 0) inv_rms[row] = r;
}

// Launch: grid (ceil(d / blockDim.x), chunks), block (any). Column j of chunk c sums dy x r over
// rows c*rows_per_chunk .. min(rows, (c+1)*rows_per_chunk) into partial[c * d + j] (f32).
template <typename T>
__device__ void rms_norm_bwd_w(const T* x, const T* dy, const float* inv_rms, float* partial, int rows, int d,
                               int rows_per_chunk) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;  // no block reduction follows
    int first = blockIdx.y * rows_per_chunk;
    int last = min(rows, first + rows_per_chunk);
    float sum = 0.0f;
    for (int row = first; row < last; ++row) {
        size_t i = (size_t)row * d + j;
        sum += load(dy, i) * load(x, i) * inv_rms[row];
    }
    partial[(size_t)blockIdx.y * d + j] = sum;
}

#define DEFINE(SUFFIX, T)                                                                                    \
    extern "C" __global__ void rms_norm_fwd_##SUFFIX(const T* x, const T* w, T* y, int d, float eps) {       \
        rms_norm_fwd<T>(x, w, y, d, eps);                                                                    \
    }                                                                                                        \
    extern "C" __global__ void rms_norm_bwd_x_##SUFFIX(const T* x, const T* w, const T* dy, T* dx,           \
                                                       float* inv_rms, int d, float eps) {                   \
        rms_norm_bwd_x<T>(x, w, dy, dx, inv_rms, d, eps);                                                    \
    }                                                                                                        \
    extern "C" __global__ void rms_norm_bwd_w_##SUFFIX(const T* x, const T* dy, const float* inv_rms,        \
                                                       float* partial, int rows, int d, int rows_per_chunk) { \
        rms_norm_bwd_w<T>(x, dy, inv_rms, partial, rows, d, rows_per_chunk);                                 \
    }
SWEEPLAW_FOR_DTYPES(DEFINE)
