#include "kernels/cuda/sparse_rows.h"

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_select.cuh>

#include <algorithm>

#include "core/cuda/check.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/memory.h"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/elementwise.cuh"

namespace kiln::kernels::cuda {

namespace {

__global__ void iota_kernel(int64_t n, int32_t* out) {
  KILN_GRID_STRIDE(i, n) { out[i] = static_cast<int32_t>(i); }
}

// Element (u, d) of merged id u: the rows of its run in sorted order, the first one copied.
__global__ void merge_rows_kernel(const float* packed, int64_t dim, const int32_t* sorted_order,
                                  const int64_t* run_starts, const int32_t* run_lengths, const int64_t* num_runs,
                                  int64_t n, float* out_rows) {
  const int64_t runs = *num_runs;
  KILN_GRID_STRIDE(e, n * dim) {
    const int64_t u = e / dim, d = e % dim;
    if (u >= runs) continue;
    const int64_t i0 = run_starts[u], i1 = i0 + run_lengths[u];
    float acc = packed[static_cast<int64_t>(sorted_order[i0]) * dim + d];
    for (int64_t i = i0 + 1; i < i1; ++i) acc += packed[static_cast<int64_t>(sorted_order[i]) * dim + d];
    out_rows[e] = acc;
  }
}

__global__ void to_dense_kernel(const int64_t* ids, const float* rows, int64_t count, int64_t vocab, int64_t dim,
                                float* dense, float* presence) {
  KILN_GRID_STRIDE(e, count * dim) {
    const int64_t i = e / dim, d = e % dim, id = ids[i];
    if (id < 0 || id >= vocab) continue;
    dense[id * dim + d] = rows[e];
    if (d == 0) presence[id] = 1.0f;
  }
}

__global__ void present_kernel(const float* presence, int64_t vocab, int64_t* ids, unsigned char* flags) {
  KILN_GRID_STRIDE(id, vocab) {
    ids[id] = id;
    flags[id] = presence[id] > 0 ? 1 : 0;
  }
}

__global__ void gather_rows_kernel(const float* dense, int64_t dim, const int64_t* ids, const int64_t* count,
                                   int64_t upper, float* out_rows) {
  const int64_t n = *count;
  KILN_GRID_STRIDE(e, upper * dim) {
    const int64_t k = e / dim;
    if (k >= n) continue;
    out_rows[e] = dense[ids[k] * dim + e % dim];
  }
}

template <typename... KArgs, typename... Args>
void launch_elements(const char* name, void (*kernel)(KArgs...), int64_t n, cudaStream_t st, Args... args) {
  if (n <= 0) return;
  kiln::cuda::launch(name, kernel, dim3(elementwise_blocks(n)), dim3(kElementwiseThreads), 0, st, args...);
}

}  // namespace

void sparse_rows_merge(const Stream& s, const int64_t* ids, int64_t ids_stride, const float* rows, int64_t rows_stride,
                       const std::vector<int64_t>& counts, int64_t dim, int64_t* out_ids, float* out_rows,
                       int64_t* out_count) {
  KILN_CHECK(s.device().is_cuda() && dim > 0);
  const cudaStream_t st = kiln::cuda::raw(s);
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  KILN_CHECK(n < INT32_MAX, "sparse_rows_merge over ", n, " rows: positions are 32-bit");
  if (n == 0) {
    KILN_CUDA_CHECK(cudaMemsetAsync(out_count, 0, sizeof(int64_t), st));
    return;
  }
  using kiln::cuda::DeviceArray;
  DeviceArray<int64_t> keys(n, st), sorted_keys(n, st), run_starts(n, st), num_runs(1, st);
  DeviceArray<int32_t> order(n, st), sorted_order(n, st), run_lengths(n, st);
  DeviceArray<float> packed(n * dim, st);
  // The valid slots of every part, packed in part order.
  int64_t at = 0;
  for (size_t p = 0; p < counts.size(); ++p) {
    const int64_t c = counts[p], part = static_cast<int64_t>(p);
    if (c == 0) continue;
    KILN_CUDA_CHECK(cudaMemcpyAsync(keys.get() + at, ids + part * ids_stride, sizeof(int64_t) * c,
                                    cudaMemcpyDeviceToDevice, st));
    KILN_CUDA_CHECK(cudaMemcpyAsync(packed.get() + at * dim, rows + part * rows_stride, sizeof(float) * c * dim,
                                    cudaMemcpyDeviceToDevice, st));
    at += c;
  }
  launch_elements("iota_kernel", iota_kernel, n, st, n, order.get());
  const int count = static_cast<int>(n);
  size_t sort_bytes = 0, rle_bytes = 0, scan_bytes = 0;
  KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys.get(), sorted_keys.get(), order.get(),
                                                  sorted_order.get(), count, 0, 64, st));
  KILN_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(nullptr, rle_bytes, sorted_keys.get(), out_ids,
                                                     run_lengths.get(), num_runs.get(), count, st));
  KILN_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, run_lengths.get(), run_starts.get(), count, st));
  DeviceArray<unsigned char> temp(std::max({sort_bytes, rle_bytes, scan_bytes, size_t{1}}), st);
  // Radix sort is stable: equal ids keep their packed (part) order.
  size_t bytes = sort_bytes;
  KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), bytes, keys.get(), sorted_keys.get(), order.get(),
                                                  sorted_order.get(), count, 0, 64, st));
  // The encoder leaves lengths past the number of runs unwritten; the scan reads all n.
  KILN_CUDA_CHECK(cudaMemsetAsync(run_lengths.get(), 0, sizeof(int32_t) * n, st));
  bytes = rle_bytes;
  KILN_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(temp.get(), bytes, sorted_keys.get(), out_ids,
                                                     run_lengths.get(), num_runs.get(), count, st));
  bytes = scan_bytes;
  KILN_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp.get(), bytes, run_lengths.get(), run_starts.get(), count, st));
  launch_elements("merge_rows_kernel", merge_rows_kernel, n * dim, st, static_cast<const float*>(packed.get()), dim,
                  static_cast<const int32_t*>(sorted_order.get()), static_cast<const int64_t*>(run_starts.get()),
                  static_cast<const int32_t*>(run_lengths.get()), static_cast<const int64_t*>(num_runs.get()), n,
                  out_rows);
  KILN_CUDA_CHECK(cudaMemcpyAsync(out_count, num_runs.get(), sizeof(int64_t), cudaMemcpyDeviceToDevice, st));
}

void sparse_rows_to_dense(const Stream& s, const int64_t* ids, const float* rows, int64_t count, int64_t vocab,
                          int64_t dim, float* dense, float* presence) {
  KILN_CHECK(s.device().is_cuda() && count >= 0 && dim > 0);
  launch_elements("to_dense_kernel", to_dense_kernel, count * dim, kiln::cuda::raw(s), ids, rows, count, vocab, dim,
                  dense, presence);
}

void sparse_rows_from_dense(const Stream& s, const float* dense, const float* presence, int64_t vocab, int64_t dim,
                            int64_t* out_ids, float* out_rows, int64_t* out_count) {
  KILN_CHECK(s.device().is_cuda() && vocab >= 0 && dim > 0);
  KILN_CHECK(vocab < INT32_MAX, "sparse_rows_from_dense over ", vocab, " rows: CUB's selection counts in 32 bits");
  const cudaStream_t st = kiln::cuda::raw(s);
  if (vocab == 0) {
    KILN_CUDA_CHECK(cudaMemsetAsync(out_count, 0, sizeof(int64_t), st));
    return;
  }
  using kiln::cuda::DeviceArray;
  DeviceArray<int64_t> all_ids(vocab, st);
  DeviceArray<unsigned char> flags(vocab, st);
  launch_elements("present_kernel", present_kernel, vocab, st, presence, vocab, all_ids.get(), flags.get());
  const int n = static_cast<int>(vocab);
  size_t bytes = 0;
  KILN_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, bytes, all_ids.get(), flags.get(), out_ids, out_count, n, st));
  DeviceArray<unsigned char> temp(std::max(bytes, size_t{1}), st);
  KILN_CUDA_CHECK(cub::DeviceSelect::Flagged(temp.get(), bytes, all_ids.get(), flags.get(), out_ids, out_count, n, st));
  launch_elements("gather_rows_kernel", gather_rows_kernel, vocab * dim, st, dense, dim,
                  static_cast<const int64_t*>(out_ids), static_cast<const int64_t*>(out_count), vocab, out_rows);
}

}  // namespace kiln::kernels::cuda
