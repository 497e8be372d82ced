// Elementwise ops fused into one kernel each: rotary embedding and exact GELU, forward and
// backward. Each thread handles elements n, n + stride, ... (grid-stride loop); launch with any grid.
#include "common.cuh"

using namespace sweeplaw;

// Rotary embedding (Su et al. 2021, eq. 34) on interleaved pairs of x (B, H, T, hd), with cos,
// sin (T, hd/2): y[2i] = x[2i] c - x[2i+1] s sign, y[2i+1] = x[2i] s sign + x[2i+1] c.
// sign = 1 is the forward; sign = -1 rotates back, which is the backward (the rotation's transpose).
// pairs = B H T hd/2.
template <typename T>
__device__ void rope(const T* x, const T* cos, const T* sin, T* y, size_t pairs, int seq, int half, float sign) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t n = (size_t)blockIdx.x * blockDim.x + threadIdx.x; n < pairs; n += stride) {
        size_t table = ((n / half) % seq) * half + n % half;  // (t, i)
        float c = load(cos, table), s = sign * load(sin, table);
        float even = load(x, 2 * n), odd = load(x, 2 * n + 1);
        store(y, 2 * n, even * c - odd * s);
        store(y, 2 * n + 1, even * s + odd * c);
    }
}

// Exact GELU (Hendrycks & Gimpel 2016, section 2): y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2.
template <typename T>
__device__ void gelu_fwd(const T* x, T* y, size_t n_elements) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t n = (size_t)blockIdx.x * blockDim.x + threadIdx.x; n < n_elements; n += stride) {
        float v = load(x, n);
        store(y, n, 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)));
    }
}

// dx = dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
template <typename T>
__device__ void gelu_bwd(const T* x, const T* dy, T* dx, size_t n_elements) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t n = (size_t)blockIdx.x * blockDim.x + threadIdx.x; n < n_elements; n += stride) {
        float v = load(x, n);
        float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
        store(dx, n, load(dy, n) * (cdf + v * pdf));
    }
}

#define DEFINE(SUFFIX, T)                                                                                    \
    extern "C" __global__ void rope_##SUFFIX(const T* x, const T* cos, const T* sin, T* y, size_t pairs,     \
                                             int seq, int half, float sign) {                                \
        rope<T>(x, cos, sin, y, pairs, seq, half, sign);                                                     \
    }                                                                                                        \
    extern "C" __global__ void gelu_fwd_##SUFFIX(const T* x, T* y, size_t n_elements) {                      \
        gelu_fwd<T>(x, y, n_elements);                                                                       \
    }                                                                                                        \
    extern "C" __global__ void gelu_bwd_##SUFFIX(const T* x, const T* dy, T* dx, size_t n_elements) {        \
        gelu_bwd<T>(x, dy, dx, n_elements);                                                                  \
    }
SWEEPLAW_FOR_DTYPES(DEFINE)
