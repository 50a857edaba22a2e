#pragma once
// Reductions: bias gradients, norms for gradient clipping, metric counts.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

// out[c] (+)= sum over r of x[r, c]; x is [rows, cols] row-major. The bias gradient of a dense or
// convolution layer. accumulate=false overwrites out.
template <typename T>
void sum_rows(const Stream& s, const T* x, int64_t rows, int64_t cols, T* out, bool accumulate);

// sum_i x[i]^2 accumulated in double (on a device stream this synchronizes the stream).
template <typename T>
double sum_squares(const Stream& s, const T* x, int64_t n);
// The same into *out: device memory on a device stream (host memory on the CPU), no host sync.
template <typename T>
void sum_squares_async(const Stream& s, const T* x, int64_t n, double* out);

// x[i] *= factor.
template <typename T>
void scale_inplace(const Stream& s, T* x, int64_t n, T factor);

// x[i] += y[i] (a value with two consumers sums their gradients).
template <typename T>
void add_inplace(const Stream& s, T* x, const T* y, int64_t n);

// Number of rows r whose argmax over logits[r, :] equals labels[r] (first max wins on ties).
// On a device stream this synchronizes the stream.
template <typename T>
int64_t count_argmax_matches(const Stream& s, const T* logits, const int32_t* labels, int64_t rows, int64_t classes);
// The same into *out: device memory on a device stream (host memory on the CPU), no host sync. No
// CUDA kernel yet.
template <typename T>
void count_argmax_matches_async(const Stream& s, const T* logits, const int32_t* labels, int64_t rows,
                                int64_t classes, int64_t* out);

}  // namespace kiln::kernels
