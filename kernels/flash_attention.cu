// Causal attention without the (T, T) scores, like FlashAttention-2 (Dao 2023, alg. 1 forward,
// alg. 2 backward), on bf16 tensor cores through WMMA (16x16x16 tiles, f32 accumulation), for
// q, k, v (B, H, T, HD) contiguous bf16 with HD in {16, 32, 64}.
//
// Forward, per block of 64 query rows (4 warps x 16 rows): for each 64-key tile up to the
// diagonal, S = Q K^T scale, online softmax (running max m and sum l per row, the output rescaled
// by exp(m_old - m_new)), O += P V. Writes O (bf16) and lse = m + log l (f32) per row.
// Backward, two kernels, no atomics:
//   flash_bwd_dq, per block of 64 query rows: D = rowsum(dO o O) (written for the next kernel),
//     then over key tiles: P = exp(S scale - lse), dP = dO V^T, dS = P (dP - D), dQ += dS K scale.
//   flash_bwd_dkdv, per block of 64 keys: over query tiles from the diagonal on:
//     P^T = exp(K Q^T scale - lse), dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - D), dK += dS^T Q scale.
// P and dS are rounded to bf16 for the products, as FlashAttention does; sums are f32.
// Launch: grid (ceil(T / 64), B H), block 128 (4 warps); static shared memory under 48 KB, its
// arrays 128-byte aligned (WMMA loads and stores need 32-byte aligned tiles; every tile offset
// below is a multiple of 16 elements, and every leading dimension a multiple of 16).
#include "common.cuh"
#ifndef SWEEPLAW_EMULATED
#include <mma.h>
#endif

using namespace sweeplaw;
using namespace nvcuda;

namespace flash {

constexpr int TILE = 64;   // query rows (forward, dq) or keys (dkdv) per block, and per loop step
constexpr int WARPS = 4;   // each warp owns 16 rows of the block's tile
using bf16 = __nv_bfloat16;
using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBT = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;  // B given as rows of B^T
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// Rows first .. first + TILE of one head (seq, HD) into tile (TILE, HD); zeros past seq.
template <int HD>
__device__ void load_tile(bf16* tile, const bf16* head, int first, int seq) {
    for (int i = threadIdx.x; i < TILE * HD; i += blockDim.x) {
        int row = first + i / HD;
        tile[i] = row < seq ? head[(size_t)row * HD + i % HD] : __float2bfloat16(0.0f);
    }
}

// out (16, TILE) f32, ld TILE = a (16, HD) times the transpose of rows (TILE, HD): a rows^T.
template <int HD>
__device__ void times_rows_transposed(float* out, const FragA* a, const bf16* rows) {
    for (int j = 0; j < TILE / 16; ++j) {
        FragC acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int kk = 0; kk < HD / 16; ++kk) {
            FragBT b;  // element (d, n) of rows^T is rows[n * HD + d]
            wmma::load_matrix_sync(b, rows + j * 16 * HD + kk * 16, HD);
            wmma::mma_sync(acc, a[kk], b, acc);
        }
        wmma::store_matrix_sync(out + j * 16, acc, TILE, wmma::mem_row_major);
    }
}

// out (16, HD) f32, ld HD = a (16, TILE) bf16 row-major (ld TILE) times b (TILE, HD) row-major.
template <int HD>
__device__ void times_tile(float* out, const bf16* a, const bf16* b) {
    for (int j = 0; j < HD / 16; ++j) {
        FragC acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int kk = 0; kk < TILE / 16; ++kk) {
            FragA af;
            FragB bf;
            wmma::load_matrix_sync(af, a + kk * 16, TILE);
            wmma::load_matrix_sync(bf, b + kk * 16 * HD + j * 16, HD);
            wmma::mma_sync(acc, af, bf, acc);
        }
        wmma::store_matrix_sync(out + j * 16, acc, HD, wmma::mem_row_major);
    }
}

// acc (HD / 2) += this lane's half of row r of a (16, HD) product in shared memory (ld HD).
template <int HD>
__device__ __forceinline__ void add_row_half(float* acc, const float* product, int r, int half) {
    for (int c = 0; c < HD / 2; ++c) acc[c] += product[r * HD + half * (HD / 2) + c];
}

// This warp's 16 rows of a head, from row `first`, as matrix_a fragments (staged through `stage`,
// a TILE x HD buffer the whole block loads; call with every thread of the block).
template <int HD>
__device__ void load_row_fragments(FragA* frags, bf16* stage, const bf16* head, int first, int seq) {
    load_tile<HD>(stage, head, first, seq);
    __syncthreads();
    int warp = threadIdx.x / 32;
    for (int kk = 0; kk < HD / 16; ++kk) wmma::load_matrix_sync(frags[kk], stage + warp * 16 * HD + kk * 16, HD);
    __syncthreads();
}

template <int HD>
__device__ void forward(const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse, int seq, float scale) {
    __shared__ __align__(128) bf16 k_tile[TILE * HD];
    __shared__ __align__(128) bf16 v_tile[TILE * HD];
    __shared__ __align__(128) float scores[WARPS][16 * TILE];  // S, then P V (ld HD)
    __shared__ __align__(128) bf16 probs[WARPS][16 * TILE];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t head = (size_t)blockIdx.y * seq * HD;
    const int q_first = blockIdx.x * TILE;
    FragA q_frags[HD / 16];
    load_row_fragments<HD>(q_frags, k_tile, q + head, q_first, seq);
    // Lanes 2r and 2r + 1 own row r of the warp's 16: its running max and sum, half its output.
    const int r = lane / 2, half = lane % 2;
    const int query = q_first + warp * 16 + r;
    float row_max = -INFINITY, row_sum = 0.0f, out[HD / 2];
    for (int c = 0; c < HD / 2; ++c) out[c] = 0.0f;
    const int key_end = min(seq, q_first + TILE);
    for (int k_first = 0; k_first < key_end; k_first += TILE) {
        load_tile<HD>(k_tile, k + head, k_first, seq);
        load_tile<HD>(v_tile, v + head, k_first, seq);
        __syncthreads();
        times_rows_transposed<HD>(scores[warp], q_frags, k_tile);  // S (16, TILE)
        __syncwarp();
        const float* s = scores[warp] + r * TILE;
        float tile_max = -INFINITY;
        for (int c = half * (TILE / 2); c < (half + 1) * (TILE / 2); ++c) {
            int key = k_first + c;
            if (key <= query && key < seq) tile_max = fmaxf(tile_max, s[c] * scale);
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        // Key 0 is in the first tile and visible to every row, so new_max is finite from then on.
        float new_max = fmaxf(row_max, tile_max);
        float tile_sum = 0.0f;
        for (int c = half * (TILE / 2); c < (half + 1) * (TILE / 2); ++c) {
            int key = k_first + c;
            float p = key <= query && key < seq ? expf(s[c] * scale - new_max) : 0.0f;
            probs[warp][r * TILE + c] = __float2bfloat16(p);
            tile_sum += p;
        }
        tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);
        float correction = expf(row_max - new_max);  // 0 on the first tile
        row_sum = row_sum * correction + tile_sum;
        row_max = new_max;
        for (int c = 0; c < HD / 2; ++c) out[c] *= correction;
        __syncwarp();
        times_tile<HD>(scores[warp], probs[warp], v_tile);  // P V (16, HD)
        __syncwarp();
        add_row_half<HD>(out, scores[warp], r, half);
        __syncthreads();  // the tiles and buffers are rewritten for the next keys
    }
    if (query < seq) {
        size_t row = head + (size_t)query * HD + half * (HD / 2);
        for (int c = 0; c < HD / 2; ++c) o[row + c] = __float2bfloat16(out[c] / row_sum);
        if (half == 0) lse[(size_t)blockIdx.y * seq + query] = row_max + logf(row_sum);
    }
}

template <int HD>
__device__ void backward_dq(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const bf16* d_o,
                            const float* lse, float* dot, bf16* d_q, int seq, float scale) {
    __shared__ __align__(128) bf16 k_tile[TILE * HD];
    __shared__ __align__(128) bf16 v_tile[TILE * HD];
    __shared__ __align__(128) float scratch[WARPS][16 * TILE];  // dP, then dS K (ld HD)
    __shared__ __align__(128) bf16 ds[WARPS][16 * TILE];        // P, then dS
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t head = (size_t)blockIdx.y * seq * HD;
    const int q_first = blockIdx.x * TILE;
    FragA q_frags[HD / 16], do_frags[HD / 16];
    load_row_fragments<HD>(q_frags, k_tile, q + head, q_first, seq);
    load_row_fragments<HD>(do_frags, k_tile, d_o + head, q_first, seq);
    const int r = lane / 2, half = lane % 2;
    const int query = q_first + warp * 16 + r;
    const bool real = query < seq;
    // D = rowsum(dO o O) for this row, from the lane pair's halves.
    float row_dot = 0.0f;
    size_t row = head + (size_t)(real ? query : 0) * HD + half * (HD / 2);
    for (int c = 0; c < HD / 2; ++c) row_dot += __bfloat162float(d_o[row + c]) * __bfloat162float(o[row + c]);
    row_dot += __shfl_xor_sync(0xffffffffu, row_dot, 1);
    const size_t stat = (size_t)blockIdx.y * seq + (real ? query : 0);
    if (real && half == 0) dot[stat] = row_dot;
    const float row_lse = real ? lse[stat] : 0.0f;
    float acc[HD / 2];
    for (int c = 0; c < HD / 2; ++c) acc[c] = 0.0f;
    const int key_end = min(seq, q_first + TILE);
    for (int k_first = 0; k_first < key_end; k_first += TILE) {
        load_tile<HD>(k_tile, k + head, k_first, seq);
        load_tile<HD>(v_tile, v + head, k_first, seq);
        __syncthreads();
        times_rows_transposed<HD>(scratch[warp], q_frags, k_tile);  // S
        __syncwarp();
        for (int c = half * (TILE / 2); c < (half + 1) * (TILE / 2); ++c) {
            int key = k_first + c;
            float p = real && key <= query && key < seq ? expf(scratch[warp][r * TILE + c] * scale - row_lse) : 0.0f;
            ds[warp][r * TILE + c] = __float2bfloat16(p);
        }
        __syncwarp();
        times_rows_transposed<HD>(scratch[warp], do_frags, v_tile);  // dP = dO V^T
        __syncwarp();
        for (int c = half * (TILE / 2); c < (half + 1) * (TILE / 2); ++c) {
            float p = __bfloat162float(ds[warp][r * TILE + c]);
            ds[warp][r * TILE + c] = __float2bfloat16(p * (scratch[warp][r * TILE + c] - row_dot));
        }
        __syncwarp();
        times_tile<HD>(scratch[warp], ds[warp], k_tile);  // dS K (16, HD)
        __syncwarp();
        add_row_half<HD>(acc, scratch[warp], r, half);
        __syncthreads();
    }
    if (real) {
        for (int c = 0; c < HD / 2; ++c) d_q[row + c] = __float2bfloat16(acc[c] * scale);
    }
}

template <int HD>
__device__ void backward_dkdv(const bf16* q, const bf16* k, const bf16* v, const bf16* d_o, const float* lse,
                              const float* dot, bf16* d_k, bf16* d_v, int seq, float scale) {
    __shared__ __align__(128) bf16 q_tile[TILE * HD];
    __shared__ __align__(128) bf16 do_tile[TILE * HD];
    __shared__ __align__(128) float scratch[WARPS][16 * TILE];  // S^T, then dP^T; products (ld HD)
    __shared__ __align__(128) bf16 pt[WARPS][16 * TILE];        // P^T, then dS^T
    __shared__ float lse_tile[TILE], dot_tile[TILE];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t head = (size_t)blockIdx.y * seq * HD;
    const int k_first = blockIdx.x * TILE;
    FragA k_frags[HD / 16], v_frags[HD / 16];
    load_row_fragments<HD>(k_frags, q_tile, k + head, k_first, seq);
    load_row_fragments<HD>(v_frags, q_tile, v + head, k_first, seq);
    const int r = lane / 2, half = lane % 2;
    const int key = k_first + warp * 16 + r;
    float dk[HD / 2], dv[HD / 2];
    for (int c = 0; c < HD / 2; ++c) dk[c] = dv[c] = 0.0f;
    for (int q_first = k_first; q_first < seq; q_first += TILE) {  // earlier queries see none of these keys
        load_tile<HD>(q_tile, q + head, q_first, seq);
        load_tile<HD>(do_tile, d_o + head, q_first, seq);
        for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
            bool real = q_first + i < seq;
            lse_tile[i] = real ? lse[(size_t)blockIdx.y * seq + q_first + i] : 0.0f;
            dot_tile[i] = real ? dot[(size_t)blockIdx.y * seq + q_first + i] : 0.0f;
        }
        __syncthreads();
        times_rows_transposed<HD>(scratch[warp], k_frags, q_tile);  // S^T (16 keys, TILE queries)
        __syncwarp();
        for (int c = half * (TILE / 2); c < (half + 1) * (TILE / 2); ++c) {
            int query = q_first + c;
            bool visible = key < seq && query >= key && query < seq;
            float p = visible ? expf(scratch[warp][r * TILE + c] * scale - lse_tile[c]) : 0.0f;
            pt[warp][r * TILE + c] = __float2bfloat16(p);
        }
        __syncwarp();
        times_tile<HD>(scratch[warp], pt[warp], do_tile);  // P^T dO (16, HD)
        __syncwarp();
        add_row_half<HD>(dv, scratch[warp], r, half);
        __syncwarp();
        times_rows_transposed<HD>(scratch[warp], v_frags, do_tile);  // dP^T = V dO^T
        __syncwarp();
        for (int c = half * (TILE / 2); c < (half + 1) * (TILE / 2); ++c) {
            float p = __bfloat162float(pt[warp][r * TILE + c]);
            pt[warp][r * TILE + c] = __float2bfloat16(p * (scratch[warp][r * TILE + c] - dot_tile[c]));
        }
        __syncwarp();
        times_tile<HD>(scratch[warp], pt[warp], q_tile);  // dS^T Q (16, HD)
        __syncwarp();
        add_row_half<HD>(dk, scratch[warp], r, half);
        __syncthreads();
    }
    if (key < seq) {
        size_t row = head + (size_t)key * HD + half * (HD / 2);
        for (int c = 0; c < HD / 2; ++c) {
            d_k[row + c] = __float2bfloat16(dk[c] * scale);
            d_v[row + c] = __float2bfloat16(dv[c]);
        }
    }
}

}  // namespace flash

#define DEFINE(HD)                                                                                             \
    extern "C" __global__ void flash_fwd_hd##HD(const __nv_bfloat16* q, const __nv_bfloat16* k,                \
                                                const __nv_bfloat16* v, __nv_bfloat16* o, float* lse, int seq, \
                                                float scale) {                                                 \
        flash::forward<HD>(q, k, v, o, lse, seq, scale);                                                       \
    }                                                                                                          \
    extern "C" __global__ void flash_bwd_dq_hd##HD(                                                            \
        const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const __nv_bfloat16* o,        \
        const __nv_bfloat16* d_o, const float* lse, float* dot, __nv_bfloat16* d_q, int seq, float scale) {    \
        flash::backward_dq<HD>(q, k, v, o, d_o, lse, dot, d_q, seq, scale);                                    \
    }                                                                                                          \
    extern "C" __global__ void flash_bwd_dkdv_hd##HD(                                                          \
        const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const __nv_bfloat16* d_o,      \
        const float* lse, const float* dot, __nv_bfloat16* d_k, __nv_bfloat16* d_v, int seq, float scale) {    \
        flash::backward_dkdv<HD>(q, k, v, d_o, lse, dot, d_k, d_v, seq, scale);                                \
    }
DEFINE(16)
DEFINE(32)
DEFINE(64)
