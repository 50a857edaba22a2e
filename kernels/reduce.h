#pragma once
// Reductions: bias gradients, norms for gradient clipping, metric counts.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

// out[c] (+)= sum over r of x[r, c]; x is [rows, cols] row-major. The bias gradient of a dense or
// convolution layer. accumulate=false overwrites out.
template <typename T>
void sum_rows(const Stream& s, const T* x, int64_t rows, int64_t cols, T* out, bool accumulate);

// sum_i x[i]^2 accumulated in double.
template <typename T>
double sum_squares(const Stream& s, const T* x, int64_t n);

// x[i] *= factor.
template <typename T>
void scale_inplace(const Stream& s, T* x, int64_t n, T factor);

// Number of rows r whose argmax over logits[r, :] equals labels[r] (first max wins on ties).
template <typename T>
int64_t count_argmax_matches(const Stream& s, const T* logits, const int32_t* labels, int64_t rows, int64_t classes);

}  // namespace kiln::kernels
