#pragma once
// Reference CUDA kernels: what kernel_library VENDOR runs on a CUDA stream where Kiln's own kernel
// is tuned (shared-memory reductions, warp shuffles, vector loads) and no vendor library covers the
// op (docs/cuda.md, "Kernel libraries"), so a misbehaving optimized kernel can be switched off from
// the config. Each is the CPU reference (kernels/cpu/) written once more, as plainly as possible:
// one thread per output in grid-stride loops, no shared memory, fp32 only, no atomics, sums in the
// CPU's order. Kiln's kernels that are already in that form (activation, dropout, the max pool's
// backward, the element-wise losses, SGD, the row-sparse updates, scale and add) run under VENDOR
// as they are: a copy would add nothing.
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/embedding.h"
#include "kernels/optimizer.h"

namespace kiln::kernels::cuda::reference {

// The row-invariant GEMM and convolution forward (kernels::gemm_row_invariant, conv2d_forward with
// row_invariant; kernels/cuda_route.h says when they run): one thread per output element summing
// its products in a fixed order in fp32, the operands rounded to the stream's precision first
// (tf32 as cvt.rna, bf16 to nearest even), so a row's answer does not depend on its batch. C =
// act(A B + bias), A [m, k], B [k, n]; the convolution NHWC x, HWIO w, bias may be null.
void gemm_row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                        int64_t ldb, float* c, int64_t ldc, const float* bias, Activation act, float slope);
void conv2d_forward_row_invariant(const Stream& s, const Conv2dShape& shape, const float* x, const float* w,
                                  const float* bias, float* y, Activation act, float slope);

// reduce (kernels/reduce.h), in the CPU's chunking and order, in double: the CPU's bits.
// sum_rows: one thread per column. sum_squares: one thread per CPU chunk, then one thread adding
// the chunk partials in order (the host-returning sum_squares is cuda::sum_squares_with).
void sum_rows(const Stream& s, const float* x, int64_t rows, int64_t cols, float* out, bool accumulate);
void sum_squares_async(const Stream& s, const float* x, int64_t n, double* out_device);

// Softmax cross-entropy (kernels/loss.h): the forward one thread per row, summing the row's
// exponentials in double in class order as the CPU does (CUDA's expf may differ by an ulp); the
// backward one thread per element.
void softmax_cross_entropy_forward(const Stream& s, const float* logits, const int32_t* labels, int64_t batch,
                                   int64_t classes, float* probs, float* losses);
void softmax_cross_entropy_backward(const Stream& s, const float* probs, const int32_t* labels, int64_t batch,
                                    int64_t classes, float grad_scale, float* dlogits);

// Adam/AdamW (kernels/optimizer.h): one thread per parameter, the CPU's formulas (built with
// -fmad=false: the CPU's bits). The row-sparse updates stay Kiln's kernels.
void adam_update(const Stream& s, int64_t n, float* params, const float* grads, float* m, float* v,
                 const AdamHyper& h);

// Embedding (kernels/embedding.h), the CPU's bits (-fmad=false). The forward one thread per output
// element, adding the example's rows in id order and dividing for mean as the CPU does; the
// caller has checked the ids (kernels/embedding.cc). The backward checks the ids (the CPU's error),
// sorts (id, position) with Thrust's stable_sort_by_key, takes each id's first position with
// unique_by_key_copy, then one thread per output element sums the id's rows in position order from
// zero, as the CPU does. Returns the number of unique ids (synchronizes the stream). Thrust
// allocates its scratch with cudaMalloc: slow, and not capturable, like the rest of this path.
void embedding_forward(const Stream& s, const float* table, int64_t rows, int64_t dim, const int64_t* ids,
                       const int64_t* offsets, int64_t batch, Combiner combiner, float* out);
int64_t embedding_backward(const Stream& s, const float* dout, int64_t rows, int64_t dim, const int64_t* ids,
                           const int64_t* offsets, int64_t batch, int64_t nnz, Combiner combiner, int64_t* unique_ids,
                           float* grad_rows);

}  // namespace kiln::kernels::cuda::reference
