#pragma once
// Optimizer updates on the GPU (the CPU set: kernels/optimizer.h), fp32: each one fused pass
// over the flat parameter buffer and its twins (gradients, moments), 16-byte vectors where the
// buffers allow; and the row-sparse updates of embedding tables.
#include <cstdint>

#include "core/stream.h"
#include "kernels/optimizer.h"

namespace kiln::kernels::cuda {

void sgd_update(const Stream& s, int64_t n, float* params, const float* grads, float* velocity, const SgdHyper& h);
void adam_update(const Stream& s, int64_t n, float* params, const float* grads, float* m, float* v,
                 const AdamHyper& h);

// ids: `count` unique row ids (embedding_backward's output), grad_rows [count, dim].
// With device_count (not null) the kernels read the row count from device memory and `count` is
// the capacity the launch is sized for (rows past *device_count do nothing): a captured step.
void sparse_adagrad_update(const Stream& s, int64_t dim, float* table, float* accum, const int64_t* ids, int64_t count,
                           const float* grad_rows, float lr, float eps, const int64_t* device_count = nullptr);
void sparse_adam_update(const Stream& s, int64_t dim, float* table, float* m, float* v, const int64_t* ids,
                        int64_t count, const float* grad_rows, const AdamHyper& h,
                        const int64_t* device_count = nullptr);

}  // namespace kiln::kernels::cuda
