// AdamW (Loshchilov & Hutter 2019, alg. 2, with Adam's bias corrections, Kingma & Ba 2015,
// alg. 1) on one f32 parameter tensor, in place, in three launches instead of candle's dozen
// elementwise kernels and their temporaries. With s the gradient-clipping scale:
//   adamw_moment (first):  m = beta1 m + (1 - beta1) (s g)
//   adamw_moment (second): v = beta2 v + (1 - beta2) (s g)^2
//   adamw_apply:           theta = theta (1 - lr wd) - lr (m / bias1) / (sqrt(v / bias2) + eps)
// Coefficients arrive as f32 computed in f64 on the host, as candle's affine ops take them, so
// the arithmetic follows the composite update in src/ops/adamw.rs operation for operation.
// Launch with any grid (grid-stride loops).
#include "common.cuh"

extern "C" __global__ void adamw_moment(float* moment, const float* grad, size_t n, float beta, float one_minus_beta,
                                        float clip_scale, int squared) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float g = grad[i] * clip_scale;
        float term = squared ? g * g : g;
        moment[i] = moment[i] * beta + term * one_minus_beta;
    }
}

extern "C" __global__ void adamw_apply(float* theta, const float* m, const float* v, size_t n, float lr,
                                       float decay_factor, float inv_bias1, float inv_bias2, float eps) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float update = (m[i] * inv_bias1) / (sqrtf(v[i] * inv_bias2) + eps);
        theta[i] = theta[i] * decay_factor - update * lr;
    }
}
