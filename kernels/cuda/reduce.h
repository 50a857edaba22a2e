#pragma once
// Reductions on the GPU (the CPU set in kernels/reduce.h), all deterministic: fixed chunking by
// problem size, double partials combined in a fixed order, no atomics.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels::cuda {

// out[c] (+)= sum over r of x[r, c].
void sum_rows(const Stream& s, const float* x, int64_t rows, int64_t cols, float* out, bool accumulate);

// *out_device = sum_i x[i]^2 in double, asynchronously.
void sum_squares_async(const Stream& s, const float* x, int64_t n, double* out_device);
// The same, returned to the host (synchronizes the stream).
double sum_squares(const Stream& s, const float* x, int64_t n);
// The sum of squares read back to the host (synchronizes the stream), computed by `async`
// (sum_squares_async, or the reference one of kernels/cuda/reference.h).
double sum_squares_with(const Stream& s, void (*async)(const Stream&, const float*, int64_t, double*), const float* x,
                        int64_t n);

void scale_inplace(const Stream& s, float* x, int64_t n, float factor);
// x[i] += y[i].
void add_inplace(const Stream& s, float* x, const float* y, int64_t n);

// Rows whose argmax (first max wins) equals the label; synchronizes the stream.
int64_t count_argmax_matches(const Stream& s, const float* logits, const int32_t* labels, int64_t rows,
                             int64_t classes);

// Global-norm gradient clipping without a host round trip: norm = sqrt(sum g^2) and, when
// norm > max_norm, g *= float(max_norm / norm), as models/optimizer.cc does on the CPU.
// norm_out_device (may be null) receives the norm before clipping.
void clip_global_norm(const Stream& s, float* grads, int64_t n, double max_norm, double* norm_out_device);

}  // namespace kiln::kernels::cuda
