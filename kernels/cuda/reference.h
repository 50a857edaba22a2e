#pragma once
// Reference CUDA kernels: what kernel_library VENDOR runs on a CUDA stream for the op families with
// no vendor library behind them (docs/cuda.md, "Kernel libraries"), so a misbehaving optimized
// Kiln kernel can be switched off from the config. Each is the CPU reference (kernels/cpu/)
// written once more, as plainly as possible: one thread per output element in grid-stride loops,
// no shared memory, no tensor cores, fp32 only, and no atomics: every sum is one thread looping
// over its inputs in the CPU's order (accumulating in double where the CPU does). Not tuned: they
// are for correctness, not speed. The argument checks are those of Kiln's CUDA kernels.
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"
#include "kernels/optimizer.h"
#include "kernels/pooling.h"

namespace kiln::kernels::cuda::reference {

// pooling (kernels/pooling.h). max_pool2d_forward scans each window as kernels/cpu/pooling.cc
// does (the first maximum in (row, column) order wins, a window wholly in the padding gives 0 and
// argmax -1); the backward passes gather, each input summing the outputs that route to it in
// output order, as the CPU's serial scatter adds them: the CPU's bits.
void max_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y, int32_t* argmax);
void max_pool2d_backward(const Stream& s, const Pool2dShape& shape, const float* dy, const int32_t* argmax, float* dx);
void avg_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y);
void avg_pool2d_backward(const Stream& s, const Pool2dShape& shape, const float* dy, float* dx);
void global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* x, float* y);
void global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* dy, float* dx);

// reduce (kernels/reduce.h), in the CPU's chunking and order, in double: the CPU's bits.
// sum_rows: one thread per column. sum_squares: one thread per CPU chunk, then one thread adding
// the chunk partials in order.
void sum_rows(const Stream& s, const float* x, int64_t rows, int64_t cols, float* out, bool accumulate);
void sum_squares_async(const Stream& s, const float* x, int64_t n, double* out_device);
double sum_squares(const Stream& s, const float* x, int64_t n);
void scale_inplace(const Stream& s, float* x, int64_t n, float factor);
void add_inplace(const Stream& s, float* x, const float* y, int64_t n);

// activation (kernels/activation.h): the formulas of kernels/cpu/act_impl.h with CUDA's libdevice
// expf/erff/tanhf (the CPU f32 path uses its own approximations: a few ulp apart).
void activation_forward(const Stream& s, Activation act, float slope, const float* x, float* y, int64_t n);
void activation_backward(const Stream& s, Activation act, float slope, const float* x, const float* y,
                         const float* dy, float* dx, int64_t n);

// loss (kernels/loss.h): the CPU's formulas (CUDA's expf/log1pf may differ from the CPU's by an
// ulp); softmax cross-entropy forward one thread per row, summing in double in class order.
void softmax_cross_entropy_forward(const Stream& s, const float* logits, const int32_t* labels, int64_t batch,
                                   int64_t classes, float* probs, float* losses);
void softmax_cross_entropy_backward(const Stream& s, const float* probs, const int32_t* labels, int64_t batch,
                                    int64_t classes, float grad_scale, float* dlogits);
void mse_forward(const Stream& s, const float* pred, const float* target, int64_t n, float* losses);
void mse_backward(const Stream& s, const float* pred, const float* target, int64_t n, float grad_scale, float* dpred);
void huber_forward(const Stream& s, const float* pred, const float* target, int64_t n, float delta, float* losses);
void huber_backward(const Stream& s, const float* pred, const float* target, int64_t n, float delta, float grad_scale,
                    float* dpred);
void logistic_forward(const Stream& s, const float* logits, const float* target, int64_t n, float* losses);
void logistic_backward(const Stream& s, const float* logits, const float* target, int64_t n, float grad_scale,
                       float* dlogits);

// dropout (kernels/dropout.h) forward: one thread per element, the CPU's Philox draws and formula
// (built with -fmad=false: the CPU's masks and bits). rate 0 draws too (every element is kept).
// The backward, dy * mask * scale per element, is Kiln's kernel already in this form.
void dropout_forward(const Stream& s, int64_t n, float rate, uint64_t seed, uint64_t stream, const float* x, float* y,
                     uint8_t* mask, uint64_t first, const uint64_t* stream_base);

// optimizer (kernels/optimizer.h), dense updates: one thread per parameter, the CPU's formulas
// (built with -fmad=false: the CPU's bits). The row-sparse updates stay Kiln's kernels.
void sgd_update(const Stream& s, int64_t n, float* params, const float* grads, float* velocity, const SgdHyper& h);
void adam_update(const Stream& s, int64_t n, float* params, const float* grads, float* m, float* v,
                 const AdamHyper& h);

}  // namespace kiln::kernels::cuda::reference
