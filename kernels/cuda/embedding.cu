#include "kernels/cuda/embedding.h"

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>

#include <algorithm>

#include "core/cuda/launch.cuh"
#include "core/cuda/memory.h"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/elementwise.cuh"

namespace kiln::kernels::cuda {

namespace {

constexpr int kWarps = 8;  // examples (forward) or unique ids (backward) per block

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// One warp per example; lane l owns columns l*V + 32*V*i. kVec4: dim % 4 == 0 and aligned rows.
template <bool kVec4>
__global__ void __launch_bounds__(kWarps * 32)
    embedding_forward_kernel(const float* table, int64_t rows, int64_t dim, const int64_t* ids,
                             const int64_t* offsets, int64_t batch, bool mean, float* out) {
  const int lane = threadIdx.x & 31;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (b >= batch) return;
  const int64_t j0 = offsets[b], j1 = offsets[b + 1];
  const float cnt = static_cast<float>(j1 - j0);
  const bool divide = mean && j1 - j0 > 1;
  float* o = out + b * dim;
  if constexpr (kVec4) {
    for (int64_t d = 4 * lane; d < dim; d += 128) {
      float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t id = ids[j];
        if (id < 0 || id >= rows) continue;
        const float4 r = __ldg(reinterpret_cast<const float4*>(table + id * dim + d));
        acc.x += r.x, acc.y += r.y, acc.z += r.z, acc.w += r.w;
      }
      if (divide) acc.x /= cnt, acc.y /= cnt, acc.z /= cnt, acc.w /= cnt;
      *reinterpret_cast<float4*>(o + d) = acc;
    }
  } else {
    for (int64_t d = lane; d < dim; d += 32) {
      float acc = 0.0f;
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t id = ids[j];
        if (id >= 0 && id < rows) acc += __ldg(table + id * dim + d);
      }
      o[d] = divide ? acc / cnt : acc;
    }
  }
}

// nnz_device (when not null) replaces nnz: the forward reads offsets[batch] on the device.
__global__ void bad_id_kernel(const int64_t* ids, int64_t nnz, const int64_t* nnz_device, int64_t rows,
                              unsigned long long* first_bad) {
  if (nnz_device) nnz = *nnz_device;
  KILN_GRID_STRIDE(j, nnz) {
    if (ids[j] < 0 || ids[j] >= rows) atomicMin(first_bad, static_cast<unsigned long long>(j));
  }
}

// example[j] = b for every position j of example b; positions[j] = j.
__global__ void positions_kernel(const int64_t* offsets, int64_t batch, int32_t* example, int32_t* positions) {
  KILN_GRID_STRIDE(b, batch) {
    for (int64_t j = offsets[b]; j < offsets[b + 1]; ++j) {
      example[j] = static_cast<int32_t>(b);
      positions[j] = static_cast<int32_t>(j);
    }
  }
}

// One warp per unique id u: grad_rows[u] = sum over its positions (ascending) of dout[example]
// (divided by the example's id count for mean), the CPU path's order.
__global__ void __launch_bounds__(kWarps * 32)
    segment_sum_kernel(const float* dout, int64_t dim, const int64_t* offsets, const int32_t* example,
                       const int32_t* sorted_positions, const int64_t* run_starts, const int32_t* run_lengths,
                       const int64_t* num_runs, bool mean, float* grad_rows) {
  const int lane = threadIdx.x & 31;
  const int64_t u = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (u >= *num_runs) return;
  const int64_t i0 = run_starts[u], i1 = i0 + run_lengths[u];
  float* g = grad_rows + u * dim;
  for (int64_t d = lane; d < dim; d += 32) {
    float acc = 0.0f;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = example[sorted_positions[i]];
      const float v = dout[b * dim + d];
      acc += mean ? v / static_cast<float>(offsets[b + 1] - offsets[b]) : v;
    }
    g[d] = acc;
  }
}

// Position of the first id outside [0, rows) among the first nnz (or *nnz_device), or -1;
// synchronizes the stream. `grid` blocks stride over the ids.
int64_t first_bad_position(cudaStream_t st, const int64_t* ids, int64_t nnz, const int64_t* nnz_device, int64_t rows,
                           unsigned grid) {
  kiln::cuda::DeviceArray<unsigned long long> first(1, st);
  KILN_CUDA_CHECK(cudaMemsetAsync(first.get(), 0xff, sizeof(unsigned long long), st));
  kiln::cuda::launch("bad_id_kernel", bad_id_kernel, dim3(grid), dim3(kElementwiseThreads), 0, st, ids, nnz,
                     nnz_device, rows, first.get());
  unsigned long long host = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&host, first.get(), sizeof(host), cudaMemcpyDeviceToHost, st));
  KILN_CUDA_CHECK(cudaStreamSynchronize(st));
  return host == ~0ull ? -1 : static_cast<int64_t>(host);
}

// The CPU path's error for the id at position j.
[[noreturn]] void fail_bad_id(cudaStream_t st, const int64_t* ids, int64_t j, int64_t rows) {
  int64_t id = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&id, ids + j, sizeof(id), cudaMemcpyDeviceToHost, st));
  KILN_CUDA_CHECK(cudaStreamSynchronize(st));
  fail("embedding: id ", id, " (position ", j, ") is outside the table's ", rows, " rows");
}

// keys[j] = ids[j] for the batch's nnz = offsets[batch] positions, `rows` (sorting after every
// id) past them or for an id outside [0, rows); positions[j] = j. Over the whole capacity.
__global__ void capacity_keys_kernel(const int64_t* ids, const int64_t* offsets, int64_t batch, int64_t capacity,
                                     int64_t rows, int64_t* keys, int32_t* positions) {
  const int64_t nnz = offsets[batch];
  KILN_GRID_STRIDE(j, capacity) {
    const int64_t id = j < nnz ? ids[j] : rows;
    keys[j] = id >= 0 && id < rows ? id : rows;
    positions[j] = static_cast<int32_t>(j);
  }
}

// example[j] = b for every position j of example b below the capacity.
__global__ void capacity_examples_kernel(const int64_t* offsets, int64_t batch, int64_t capacity, int32_t* example) {
  KILN_GRID_STRIDE(b, batch) {
    const int64_t end = offsets[b + 1] < capacity ? offsets[b + 1] : capacity;
    for (int64_t j = offsets[b]; j < end; ++j) example[j] = static_cast<int32_t>(b);
  }
}

// The unique ids are the runs but the last when that one is the padding key `rows`.
__global__ void unique_count_kernel(const int64_t* num_runs, const int64_t* unique_ids, int64_t rows,
                                    int64_t* count) {
  const int64_t n = *num_runs;
  *count = n > 0 && unique_ids[n - 1] == rows ? n - 1 : n;
}

// Where each piece of embedding_backward_async's workspace starts (256-byte aligned, as
// cudaMalloc's blocks are), and the total.
struct AsyncWorkspace {
  size_t keys = 0, sorted_keys = 0, positions = 0, sorted_positions = 0, example = 0, run_lengths = 0,
         run_starts = 0, num_runs = 0, temp = 0, temp_bytes = 0, total = 0;
  int end_bit = 1;
};

AsyncWorkspace async_workspace(int64_t rows, int64_t capacity) {
  AsyncWorkspace w;
  // Keys are in [0, rows]: the bits of `rows` (the padding key) cover them.
  for (uint64_t v = static_cast<uint64_t>(rows) >> 1; v; v >>= 1) ++w.end_bit;
  const int n = static_cast<int>(capacity);
  size_t sort_bytes = 0, rle_bytes = 0, scan_bytes = 0;
  // Size queries: CUB computes them on the host from n and the key bits, launching nothing.
  KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, static_cast<const int64_t*>(nullptr),
                                                  static_cast<int64_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                                  static_cast<int32_t*>(nullptr), n, 0, w.end_bit));
  KILN_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(nullptr, rle_bytes, static_cast<const int64_t*>(nullptr),
                                                     static_cast<int64_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                                     static_cast<int64_t*>(nullptr), n));
  KILN_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, static_cast<const int32_t*>(nullptr),
                                                static_cast<int64_t*>(nullptr), n));
  const size_t cap = static_cast<size_t>(capacity);
  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t start = at;
    at += (bytes + 255) / 256 * 256;
    return start;
  };
  w.keys = take(cap * 8);
  w.sorted_keys = take(cap * 8);
  w.positions = take(cap * 4);
  w.sorted_positions = take(cap * 4);
  w.example = take(cap * 4);
  w.run_lengths = take(cap * 4);
  w.run_starts = take(cap * 8);
  w.num_runs = take(8);
  w.temp_bytes = std::max({sort_bytes, rle_bytes, scan_bytes, size_t{1}});
  w.temp = take(w.temp_bytes);
  w.total = at;
  return w;
}

}  // namespace

void embedding_forward(const Stream& s, const float* table, int64_t rows, int64_t dim, const int64_t* ids,
                       const int64_t* offsets, int64_t batch, Combiner combiner, float* out, bool ids_checked) {
  KILN_CHECK(s.device().is_cuda() && batch >= 0 && dim > 0 && rows >= 0);
  if (batch == 0) return;
  // nnz = offsets[batch] is read on the device, so validation costs one synchronisation.
  const cudaStream_t st = kiln::cuda::raw(s);
  if (!ids_checked) {
    const int64_t bad = first_bad_position(st, ids, 0, offsets + batch, rows, elementwise_blocks(int64_t{1} << 22));
    if (bad >= 0) fail_bad_id(st, ids, bad, rows);
  }
  const bool vec = dim % 4 == 0 && aligned16(table) && aligned16(out);
  const unsigned blocks = static_cast<unsigned>((batch + kWarps - 1) / kWarps);
  const bool mean = combiner == Combiner::mean;
  if (vec)
    kiln::cuda::launch("embedding_forward_kernel<vec4>", embedding_forward_kernel<true>, dim3(blocks),
                       dim3(kWarps * 32), 0, st, table, rows, dim, ids, offsets, batch, mean, out);
  else
    kiln::cuda::launch("embedding_forward_kernel<scalar>", embedding_forward_kernel<false>, dim3(blocks),
                       dim3(kWarps * 32), 0, st, table, rows, dim, ids, offsets, batch, mean, out);
}

int64_t embedding_first_bad_id(const Stream& s, const int64_t* ids, int64_t nnz, int64_t rows) {
  KILN_CHECK(s.device().is_cuda());
  if (nnz <= 0) return -1;
  return first_bad_position(kiln::cuda::raw(s), ids, nnz, nullptr, rows, elementwise_blocks(nnz));
}

void embedding_check_ids(const Stream& s, const int64_t* ids, int64_t nnz, int64_t rows) {
  if (const int64_t bad = embedding_first_bad_id(s, ids, nnz, rows); bad >= 0)
    fail_bad_id(kiln::cuda::raw(s), ids, bad, rows);
}

int64_t embedding_backward(const Stream& s, const float* dout, int64_t rows, int64_t dim, const int64_t* ids,
                           const int64_t* offsets, int64_t batch, int64_t nnz, Combiner combiner, int64_t* unique_ids,
                           float* grad_rows) {
  KILN_CHECK(s.device().is_cuda() && batch >= 0 && dim > 0 && nnz >= 0 && rows >= 0);
  KILN_CHECK(nnz < INT32_MAX, "embedding backward over ", nnz, " ids: positions are 32-bit");
  if (nnz == 0 || batch == 0) return 0;
  const cudaStream_t st = kiln::cuda::raw(s);
  embedding_check_ids(s, ids, nnz, rows);
  const int n = static_cast<int>(nnz);
  using kiln::cuda::DeviceArray;
  DeviceArray<int32_t> example(nnz, st), positions(nnz, st), sorted_positions(nnz, st), run_lengths(nnz, st);
  DeviceArray<int64_t> sorted_ids(nnz, st), run_starts(nnz, st), num_runs(1, st);
  kiln::cuda::launch("positions_kernel", positions_kernel, dim3(elementwise_blocks(batch)),
                     dim3(kElementwiseThreads), 0, st, offsets, batch, example.get(), positions.get());
  // Ids are validated to [0, rows), so sorting the bits of rows - 1 as unsigned is enough; a
  // stable sort keeps each id's positions ascending.
  int end_bit = 1;
  for (uint64_t v = static_cast<uint64_t>(rows - 1) >> 1; v; v >>= 1) ++end_bit;
  size_t sort_bytes = 0, rle_bytes = 0, scan_bytes = 0;
  KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, ids, sorted_ids.get(), positions.get(),
                                                  sorted_positions.get(), n, 0, end_bit, st));
  KILN_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(nullptr, rle_bytes, sorted_ids.get(), unique_ids,
                                                     run_lengths.get(), num_runs.get(), n, st));
  KILN_CUDA_CHECK(
      cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, run_lengths.get(), run_starts.get(), n, st));
  DeviceArray<unsigned char> temp(std::max({sort_bytes, rle_bytes, scan_bytes, size_t{1}}), st);
  size_t bytes = sort_bytes;
  KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), bytes, ids, sorted_ids.get(), positions.get(),
                                                  sorted_positions.get(), n, 0, end_bit, st));
  // The encoder leaves the run lengths past the number of runs unwritten; zero them so the scan
  // (which covers all n slots, only the first num_runs being used) reads defined memory.
  KILN_CUDA_CHECK(cudaMemsetAsync(run_lengths.get(), 0, sizeof(int32_t) * nnz, st));
  bytes = rle_bytes;
  KILN_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(temp.get(), bytes, sorted_ids.get(), unique_ids,
                                                     run_lengths.get(), num_runs.get(), n, st));
  bytes = scan_bytes;
  KILN_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp.get(), bytes, run_lengths.get(), run_starts.get(), n, st));
  // One warp per possible run; warps past num_runs exit at once.
  kiln::cuda::launch("segment_sum_kernel", segment_sum_kernel, dim3(static_cast<unsigned>((nnz + kWarps - 1) / kWarps)),
                     dim3(kWarps * 32), 0, st, dout, dim, offsets, static_cast<const int32_t*>(example.get()),
                     static_cast<const int32_t*>(sorted_positions.get()), static_cast<const int64_t*>(run_starts.get()),
                     static_cast<const int32_t*>(run_lengths.get()), static_cast<const int64_t*>(num_runs.get()),
                     combiner == Combiner::mean, grad_rows);
  int64_t count = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&count, num_runs.get(), sizeof(count), cudaMemcpyDeviceToHost, st));
  KILN_CUDA_CHECK(cudaStreamSynchronize(st));
  return count;
}

int64_t embedding_backward_workspace_bytes(int64_t rows, int64_t capacity) {
  KILN_CHECK(rows >= 0 && capacity >= 0);
  KILN_CHECK(capacity < INT32_MAX, "embedding backward over ", capacity, " ids: positions are 32-bit");
  if (capacity == 0) return 0;
  return static_cast<int64_t>(async_workspace(rows, capacity).total);
}

void embedding_backward_async(const Stream& s, const float* dout, int64_t rows, int64_t dim, const int64_t* ids,
                              const int64_t* offsets, int64_t batch, int64_t capacity, Combiner combiner,
                              int64_t* unique_ids, float* grad_rows, int64_t* count, void* workspace) {
  KILN_CHECK(s.device().is_cuda() && batch >= 0 && dim > 0 && capacity >= 0 && rows >= 0);
  KILN_CHECK(capacity < INT32_MAX, "embedding backward over ", capacity, " ids: positions are 32-bit");
  const cudaStream_t st = kiln::cuda::raw(s);
  if (capacity == 0 || batch == 0) {
    KILN_CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof(int64_t), st));
    return;
  }
  KILN_CHECK(workspace, "embedding_backward_async: no workspace");
  const AsyncWorkspace w = async_workspace(rows, capacity);
  char* base = static_cast<char*>(workspace);
  auto* keys = reinterpret_cast<int64_t*>(base + w.keys);
  auto* sorted_keys = reinterpret_cast<int64_t*>(base + w.sorted_keys);
  auto* positions = reinterpret_cast<int32_t*>(base + w.positions);
  auto* sorted_positions = reinterpret_cast<int32_t*>(base + w.sorted_positions);
  auto* example = reinterpret_cast<int32_t*>(base + w.example);
  auto* run_lengths = reinterpret_cast<int32_t*>(base + w.run_lengths);
  auto* run_starts = reinterpret_cast<int64_t*>(base + w.run_starts);
  auto* num_runs = reinterpret_cast<int64_t*>(base + w.num_runs);
  void* temp = base + w.temp;
  const int n = static_cast<int>(capacity);
  kiln::cuda::launch("capacity_keys_kernel", capacity_keys_kernel, dim3(elementwise_blocks(capacity)),
                     dim3(kElementwiseThreads), 0, st, ids, offsets, batch, capacity, rows, keys, positions);
  kiln::cuda::launch("capacity_examples_kernel", capacity_examples_kernel, dim3(elementwise_blocks(batch)),
                     dim3(kElementwiseThreads), 0, st, offsets, batch, capacity, example);
  // A stable sort keeps each id's positions ascending, the CPU's summation order.
  size_t bytes = w.temp_bytes;
  KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, bytes, static_cast<const int64_t*>(keys), sorted_keys,
                                                  static_cast<const int32_t*>(positions), sorted_positions, n, 0,
                                                  w.end_bit, st));
  // The run lengths past the number of runs stay unwritten; zeroed, the scan reads defined memory.
  KILN_CUDA_CHECK(cudaMemsetAsync(run_lengths, 0, sizeof(int32_t) * capacity, st));
  bytes = w.temp_bytes;
  KILN_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(temp, bytes, static_cast<const int64_t*>(sorted_keys), unique_ids,
                                                     run_lengths, num_runs, n, st));
  bytes = w.temp_bytes;
  KILN_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp, bytes, static_cast<const int32_t*>(run_lengths), run_starts, n,
                                                st));
  kiln::cuda::launch("unique_count_kernel", unique_count_kernel, dim3(1), dim3(1), 0, st,
                     static_cast<const int64_t*>(num_runs), static_cast<const int64_t*>(unique_ids), rows, count);
  // One warp per possible run; warps past the unique count (the padding run included) exit at once.
  kiln::cuda::launch("segment_sum_kernel", segment_sum_kernel,
                     dim3(static_cast<unsigned>((capacity + kWarps - 1) / kWarps)), dim3(kWarps * 32), 0, st, dout,
                     dim, offsets, static_cast<const int32_t*>(example), static_cast<const int32_t*>(sorted_positions),
                     static_cast<const int64_t*>(run_starts), static_cast<const int32_t*>(run_lengths),
                     static_cast<const int64_t*>(count), combiner == Combiner::mean, grad_rows);
}

}  // namespace kiln::kernels::cuda
