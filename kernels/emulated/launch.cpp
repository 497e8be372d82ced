// TEST SCAFFOLDING: the kernels of kernels/*.cu, compiled with g++ against kernels/emulated.h into
// a shared library that src/ops/cuda_emulated.rs loads. One entry point launches any kernel by
// name, with its arguments passed as CUDA's cuLaunchKernel takes them (an array of pointers to
// the argument values), plus each argument's size, checked against the kernel's signature.
//
// Build (src/ops/cuda_emulated.rs does it once per test process):
//   g++ -std=c++20 -O2 -shared -fPIC -pthread -DSWEEPLAW_EMULATED -I kernels -x c++
//       kernels/emulated/launch.cpp -o libsweeplaw_emulated.so
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "../rms_norm.cu"
#undef DEFINE
#include "../causal_softmax.cu"
#undef DEFINE
#include "../cross_entropy.cu"
#undef DEFINE
#include "../elementwise.cu"
#undef DEFINE
#include "../flash_attention.cu"
#undef DEFINE
#include "../adamw.cu"

namespace {

// Checks the arguments against the kernel's parameters and returns the call, or an error.
using Binder = std::function<std::string(void** args, const size_t* sizes, size_t n, std::function<void()>& call)>;

template <typename... P, size_t... I>
std::tuple<P...> read_arguments(void** args, std::index_sequence<I...>) {
    return {*static_cast<P*>(args[I])...};
}

template <typename... P>
Binder binder(void (*kernel)(P...)) {
    return [kernel](void** args, const size_t* sizes, size_t n, std::function<void()>& call) -> std::string {
        const size_t expected[] = {sizeof(P)...};
        if (n != sizeof...(P)) return "takes " + std::to_string(sizeof...(P)) + " arguments, got " + std::to_string(n);
        for (size_t i = 0; i < n; ++i) {
            if (sizes[i] != expected[i]) {
                return "argument " + std::to_string(i) + " has " + std::to_string(sizes[i]) + " bytes, the kernel takes " +
                       std::to_string(expected[i]);
            }
        }
        std::tuple<P...> values = read_arguments<P...>(args, std::index_sequence_for<P...>{});
        call = [kernel, values] { std::apply(kernel, values); };
        return "";
    };
}

#define KERNEL(NAME) {#NAME, binder(NAME)}
const std::map<std::string, Binder> kernels = {
    KERNEL(rms_norm_fwd_f32),        KERNEL(rms_norm_fwd_bf16),       KERNEL(rms_norm_bwd_x_f32),
    KERNEL(rms_norm_bwd_x_bf16),     KERNEL(rms_norm_bwd_w_f32),      KERNEL(rms_norm_bwd_w_bf16),
    KERNEL(causal_softmax_fwd_f32),  KERNEL(causal_softmax_fwd_bf16), KERNEL(causal_softmax_bwd_f32),
    KERNEL(causal_softmax_bwd_bf16), KERNEL(cross_entropy_fwd_f32),   KERNEL(cross_entropy_fwd_bf16),
    KERNEL(cross_entropy_bwd_f32),   KERNEL(cross_entropy_bwd_bf16),  KERNEL(rope_f32),
    KERNEL(rope_bf16),               KERNEL(gelu_fwd_f32),            KERNEL(gelu_fwd_bf16),
    KERNEL(gelu_bwd_f32),            KERNEL(gelu_bwd_bf16),           KERNEL(flash_fwd_hd16),
    KERNEL(flash_fwd_hd32),          KERNEL(flash_fwd_hd64),          KERNEL(flash_bwd_dq_hd16),
    KERNEL(flash_bwd_dq_hd32),       KERNEL(flash_bwd_dq_hd64),       KERNEL(flash_bwd_dkdv_hd16),
    KERNEL(flash_bwd_dkdv_hd32),     KERNEL(flash_bwd_dkdv_hd64),     KERNEL(adamw_moment),
    KERNEL(adamw_apply),
};

}  // namespace

// Launches `name` on grid (grid_x, grid_y) with block (block_x); args[i] points to argument i,
// of arg_sizes[i] bytes. Returns 0, or 1 with the reason in `error` (NUL-terminated).
extern "C" int sweeplaw_emulated_launch(const char* name, unsigned grid_x, unsigned grid_y, unsigned block_x,
                                        void** args, const size_t* arg_sizes, size_t n_args, char* error,
                                        size_t error_len) {
    auto fail = [&](const std::string& why) {
        std::snprintf(error, error_len, "%s: %s", name, why.c_str());
        return 1;
    };
    auto found = kernels.find(name);
    if (found == kernels.end()) return fail("no such kernel");
    std::function<void()> call;
    std::string why = found->second(args, arg_sizes, n_args, call);
    if (why.empty()) why = emulated::launch({grid_x, grid_y, 1}, {block_x, 1, 1}, call);
    return why.empty() ? 0 : fail(why);
}

// __float2bfloat16 of each input, as bits, so the tests can check its rounding.
extern "C" void sweeplaw_emulated_float2bfloat16(const float* in, uint16_t* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = __float2bfloat16(in[i]).bits;
}
