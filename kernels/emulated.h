// TEST SCAFFOLDING, not a CUDA implementation: just enough of CUDA for g++ (C++20) to compile the
// kernels in kernels/*.cu unchanged and run them on the CPU, so src/ops/cuda_emulated.rs can check
// their values against the composite ops without a GPU. kernels/common.cuh includes this file in
// place of <cuda_bf16.h> when SWEEPLAW_EMULATED is defined.
//
// Model: `emulated::launch` runs the blocks of a grid one after another; each CUDA thread of the
// block is one OS thread, so `__shared__` is `static` (one block at a time owns it) and the
// built-ins threadIdx, blockIdx, ... are thread_local. `__syncthreads()` is a std::barrier; a
// thread that returns from the kernel drops out of it (as an exited CUDA thread does). Warp
// shuffles go through a block-wide exchange buffer and a barrier, so they must be called by every
// thread of the block, as common.cuh's launch rules require. Launches are serialised process-wide,
// since the `static` shared memory is one per process.
#pragma once

#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }

// bfloat16 storage: the high 16 bits of an f32.
struct __nv_bfloat16 {
    uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.bits << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// Round to nearest, ties to even, as CUDA's __float2bfloat16; a NaN stays a (quiet) NaN.
inline __nv_bfloat16 __float2bfloat16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if (std::isnan(f)) return {(uint16_t)((u >> 16) | 0x0040u)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return {(uint16_t)(u >> 16)};
}

namespace emulated {

// What the threads of the running block share.
struct Block {
    std::optional<std::barrier<>> sync;  // __syncthreads; fresh for every block
    std::vector<float> exchange[2];      // one slot per thread, for the warp shuffles, used in turn
    std::vector<unsigned> syncs;         // barriers each thread reached, to check the launch rules
    std::mutex misuse_lock;
    std::string misuse;                  // the first misuse a kernel made (see `report`)
};

inline thread_local Block* current = nullptr;
inline thread_local unsigned shuffles = 0;  // this thread's shuffles in the current block

// Records what a kernel did that a GPU would fault or miscompute on; the launch returns it.
inline void report(const std::string& what) {
    std::lock_guard lock(current->misuse_lock);
    if (current->misuse.empty()) current->misuse = what;
}

inline void sync_block() {
    ++current->syncs[threadIdx.x];
    current->sync->arrive_and_wait();
}

}  // namespace emulated

inline void __syncthreads() { emulated::sync_block(); }

// A block-wide barrier stands in for the warp's: the kernels call __syncwarp in block-uniform
// control flow, so every thread of the block reaches it (the launch checks the barrier counts).
inline void __syncwarp(unsigned /*mask*/ = 0xffffffffu) { emulated::sync_block(); }

// `v` of lane `lane ^ lane_mask` of the same warp; every thread of the block must call it. The two
// exchange buffers alternate: a thread writes one again only after the barrier of the next
// shuffle, which every thread reaches after reading it, so one barrier per shuffle suffices.
inline float __shfl_xor_sync(unsigned /*mask*/, float v, int lane_mask) {
    auto& exchange = emulated::current->exchange[emulated::shuffles++ & 1];
    exchange[threadIdx.x] = v;
    emulated::sync_block();
    unsigned source = threadIdx.x ^ (unsigned)lane_mask;
    return source < blockDim.x ? exchange[source] : v;
}

namespace emulated {

// Runs `kernel` on every block of `grid` (x, y), one OS thread per thread of `block`, blocks one
// after another. Returns an empty string, or what went wrong (a bad launch shape, or threads of
// one block that reached different numbers of barriers, which a GPU may hang or miscompute on).
inline std::string launch(dim3 grid, dim3 block, const std::function<void()>& kernel) {
    static std::mutex one_launch_at_a_time;
    std::lock_guard lock(one_launch_at_a_time);
    unsigned threads = block.x;
    bool one_dimensional_block = threads > 0 && threads <= 1024 && block.y == 1 && block.z == 1;
    if (!one_dimensional_block || grid.x == 0 || grid.y == 0 || grid.z != 1) return "bad launch shape";
    Block shared;
    for (auto& exchange : shared.exchange) exchange.assign(threads, 0.0f);
    std::string error;
    dim3 at{0, 0, 1};
    auto next_block = [&]() noexcept {  // runs once all threads finished block `at`
        for (unsigned t = 1; t < threads; ++t) {
            if (shared.syncs[t] != shared.syncs[0] && error.empty()) {
                error = "block (" + std::to_string(at.x) + ", " + std::to_string(at.y) + "): thread " +
                        std::to_string(t) + " reached " + std::to_string(shared.syncs[t]) + " barriers, thread 0 " +
                        std::to_string(shared.syncs[0]);
            }
        }
        if (++at.x == grid.x) at = {0, at.y + 1, 1};
        shared.sync.emplace(threads);
        shared.syncs.assign(threads, 0);
    };
    shared.sync.emplace(threads);
    shared.syncs.assign(threads, 0);
    std::barrier end_of_block(threads, next_block);
    std::vector<std::jthread> pool;
    for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            current = &shared;
            threadIdx = {t, 0, 0};
            blockDim = block;
            gridDim = grid;
            for (unsigned b = 0; b < grid.x * grid.y; ++b) {
                blockIdx = at;
                shuffles = 0;
                kernel();
                shared.sync->arrive_and_drop();  // an exited thread no longer holds back __syncthreads
                end_of_block.arrive_and_wait();
            }
            current = nullptr;
        });
    }
    pool.clear();  // joins
    return error.empty() ? shared.misuse : error;
}

}  // namespace emulated

// WMMA (nvcuda::wmma) for 16x16x16 tiles: every lane of a warp holds the whole tile (CUDA spreads
// it over the lanes in an unspecified layout, which the kernels never rely on); mma accumulates
// in f32; a store is written by lane 0 only, and the kernels __syncwarp before reading it back.
namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the emulation has 16x16x16 tiles only");
    static constexpr int num_elements = 256;
    float x[256];  // element (i, j) at x[16 i + j]
};

inline float widen(float v) { return v; }
inline float widen(__nv_bfloat16 v) { return __bfloat162float(v); }

// WMMA's rules: a tile's address 32-byte aligned, its leading dimension a multiple of 16 bytes.
template <typename T>
void check_tile(const T* p, unsigned ldm, const char* what) {
    if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || (ldm * sizeof(T)) % 16 != 0) {
        emulated::report(std::string(what) + ": tile not 32-byte aligned or ldm " + std::to_string(ldm) +
                         " not a multiple of 16 bytes");
    }
}

template <typename Use, typename T, typename Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm) {
    check_tile(p, ldm, "load_matrix_sync");
    constexpr bool rows = std::is_same_v<Layout, row_major>;
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) f.x[16 * i + j] = widen(rows ? p[i * ldm + j] : p[i + j * ldm]);
}

template <typename Use, typename T, typename Layout>
void fill_fragment(fragment<Use, 16, 16, 16, T, Layout>& f, float v) {
    for (float& e : f.x) e = v;
}

template <typename TA, typename LA, typename TB, typename LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, TA, LA>& a,
              const fragment<matrix_b, 16, 16, 16, TB, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
    float out[256];
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) {
            float sum = c.x[16 * i + j];
            for (int k = 0; k < 16; ++k) sum += a.x[16 * i + k] * b.x[16 * k + j];
            out[16 * i + j] = sum;
        }
    std::memcpy(d.x, out, sizeof out);
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t layout) {
    check_tile(p, ldm, "store_matrix_sync");
    if (threadIdx.x % 32 != 0) return;
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) (layout == mem_row_major ? p[i * ldm + j] : p[i + j * ldm]) = f.x[16 * i + j];
}

}  // namespace nvcuda::wmma
