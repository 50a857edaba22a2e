// Reference embedding kernels (kernels/cuda/reference.h): kernels/cpu/embedding.cc written again
// for the GPU, one thread per output element, the CPU's summation order.
#include <thrust/execution_policy.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/unique.h>

#include "core/cuda/check.h"
#include "core/cuda/memory.h"
#include "core/error.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/reference_launch.cuh"

namespace kiln::kernels::cuda::reference {

namespace {

// out[b, d]: example b's rows added in id order, divided by their count for mean (more than one).
__global__ void ref_embedding_forward(const float* table, int64_t dim, const int64_t* ids, const int64_t* offsets,
                                      int64_t batch, bool mean, float* out) {
  KILN_GRID_STRIDE(e, batch * dim) {
    const int64_t b = e / dim, d = e % dim;
    float acc = 0.0f;
    for (int64_t j = offsets[b]; j < offsets[b + 1]; ++j) acc += table[ids[j] * dim + d];
    const int64_t count = offsets[b + 1] - offsets[b];
    out[e] = mean && count > 1 ? acc / static_cast<float>(count) : acc;
  }
}

// example[j] = b for each position j of example b.
__global__ void ref_positions_examples(const int64_t* offsets, int64_t batch, int64_t* example) {
  KILN_GRID_STRIDE(b, batch) {
    for (int64_t j = offsets[b]; j < offsets[b + 1]; ++j) example[j] = b;
  }
}

// grad_rows[u, d]: from zero, dout[example of p, d] (divided by that example's count for mean)
// added for each position p of unique id u, ascending.
__global__ void ref_embedding_backward(const float* dout, int64_t dim, const int64_t* offsets, const int64_t* example,
                                       const int64_t* sorted_positions, const int64_t* starts, int64_t count,
                                       int64_t nnz, bool mean, float* grad_rows) {
  KILN_GRID_STRIDE(e, count * dim) {
    const int64_t u = e / dim, d = e % dim;
    const int64_t end = u + 1 < count ? starts[u + 1] : nnz;
    float acc = 0.0f;
    for (int64_t i = starts[u]; i < end; ++i) {
      const int64_t b = example[sorted_positions[i]];
      const float v = dout[b * dim + d];
      acc += mean ? v / static_cast<float>(offsets[b + 1] - offsets[b]) : v;
    }
    grad_rows[e] = acc;
  }
}

}  // namespace

void embedding_forward(const Stream& s, const float* table, int64_t rows, int64_t dim, const int64_t* ids,
                       const int64_t* offsets, int64_t batch, Combiner combiner, float* out) {
  KILN_CHECK(s.device().is_cuda() && batch >= 0 && dim > 0 && rows >= 0);
  launch_per_output(s, "ref_embedding_forward", ref_embedding_forward, batch * dim, table, dim, ids, offsets, batch,
                    combiner == Combiner::mean, out);
}

int64_t embedding_backward(const Stream& s, const float* dout, int64_t rows, int64_t dim, const int64_t* ids,
                           const int64_t* offsets, int64_t batch, int64_t nnz, Combiner combiner, int64_t* unique_ids,
                           float* grad_rows) {
  KILN_CHECK(s.device().is_cuda() && batch >= 0 && dim > 0 && nnz >= 0 && rows >= 0);
  if (nnz == 0 || batch == 0) return 0;
  embedding_check_ids(s, ids, nnz, rows);
  const cudaStream_t st = kiln::cuda::raw(s);
  using kiln::cuda::DeviceArray;
  DeviceArray<int64_t> keys(nnz, st), positions(nnz, st), example(nnz, st), starts(nnz, st);
  KILN_CUDA_CHECK(cudaMemcpyAsync(keys.get(), ids, sizeof(int64_t) * nnz, cudaMemcpyDeviceToDevice, st));
  launch_per_output(s, "ref_positions_examples", ref_positions_examples, batch, offsets, batch, example.get());
  const auto policy = thrust::cuda::par.on(st);
  thrust::sequence(policy, positions.get(), positions.get() + nnz);
  // Stable: each id's positions stay ascending, the CPU's (id, position) order.
  thrust::stable_sort_by_key(policy, keys.get(), keys.get() + nnz, positions.get());
  // Each unique id and the index of its first entry in the sorted order.
  const auto ends = thrust::unique_by_key_copy(policy, keys.get(), keys.get() + nnz,
                                               thrust::counting_iterator<int64_t>(0), unique_ids, starts.get());
  const int64_t count = ends.first - unique_ids;
  launch_per_output(s, "ref_embedding_backward", ref_embedding_backward, count * dim, dout, dim, offsets,
                    static_cast<const int64_t*>(example.get()), static_cast<const int64_t*>(positions.get()),
                    static_cast<const int64_t*>(starts.get()), count, nnz, combiner == Combiner::mean, grad_rows);
  // The count is a host value already; the synchronize keeps the scratch alive until the kernel ran
  // and reports its errors here, as Kiln's kernel does.
  KILN_CUDA_CHECK(cudaStreamSynchronize(st));
  return count;
}

}  // namespace kiln::kernels::cuda::reference
