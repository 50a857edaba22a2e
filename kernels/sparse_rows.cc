// Device dispatch of kernels/sparse_rows.h (kernels/dispatch.h).
#include "kernels/sparse_rows.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/sparse_rows.h"
#include "kernels/dispatch.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/sparse_rows.h"
#endif

namespace kiln::kernels {

using detail::sim_arg;

namespace {

// The parts of a strided merge input as the CPU merge takes them.
std::vector<cpu::SparseRowsPart> strided_parts(const int64_t* ids, int64_t ids_stride, const float* rows,
                                               int64_t rows_stride, const std::vector<int64_t>& counts) {
  std::vector<cpu::SparseRowsPart> parts;
  for (size_t p = 0; p < counts.size(); ++p) {
    const auto at = static_cast<int64_t>(p);
    parts.push_back({ids + at * ids_stride, rows + at * rows_stride, counts[p]});
  }
  return parts;
}

int64_t total(const std::vector<int64_t>& counts) {
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  return n;
}

}  // namespace

void sparse_rows_merge(const Stream& s, const int64_t* ids, int64_t ids_stride, const float* rows, int64_t rows_stride,
                       int64_t parts, const int64_t* counts, int64_t dim, int64_t* out_ids, float* out_rows,
                       int64_t* out_count) {
  constexpr const char* kOp = "sparse_rows_merge";
  KILN_CHECK(parts >= 0 && dim > 0, kOp, ": parts ", parts, ", dim ", dim);
  std::vector<int64_t> c(counts, counts + parts);
  // The extents the parts reach (for the sim's checks); a part may not run into the next one.
  int64_t ids_extent = 0, rows_extent = 0;
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t n = c[static_cast<size_t>(p)];
    if (n < 0 || (p + 1 < parts && (n > ids_stride || n * dim > rows_stride)))
      fail(kOp, ": part ", p, " of ", n, " ids overlaps the next (strides ", ids_stride, " and ", rows_stride, ")");
    if (n == 0) continue;
    ids_extent = std::max(ids_extent, p * ids_stride + n);
    rows_extent = std::max(rows_extent, p * rows_stride + n * dim);
  }
  const int64_t n = total(c);
  switch (s.device().kind) {
    case Device::Kind::cpu:
      *out_count = cpu::sparse_rows_merge(strided_parts(ids, ids_stride, rows, rows_stride, c), dim, out_ids, out_rows);
      return;
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, c = std::move(c), ids = sim_arg(kOp, "ids", ids, ids_extent),
              rows = sim_arg(kOp, "rows", rows, rows_extent), out_ids = sim_arg(kOp, "out_ids", out_ids, n),
              out_rows = sim_arg(kOp, "out_rows", out_rows, n * dim),
              out_count = sim_arg(kOp, "out_count", out_count, 1)] {
            *out_count.get() = cpu::sparse_rows_merge(strided_parts(ids.get(), ids_stride, rows.get(), rows_stride, c),
                                                      dim, out_ids.get(), out_rows.get());
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, float, s,
                    cuda::sparse_rows_merge(s, ids, ids_stride, rows, rows_stride, c, dim, out_ids, out_rows, out_count));
  }
  detail::unknown_device(kOp, s);
}

void sparse_rows_to_dense(const Stream& s, const int64_t* ids, const float* rows, int64_t count, int64_t vocab,
                          int64_t dim, float* dense, float* presence) {
  constexpr const char* kOp = "sparse_rows_to_dense";
  KILN_CHECK(count >= 0 && vocab >= 0 && dim > 0, kOp, ": count ", count, ", vocab ", vocab, ", dim ", dim);
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::sparse_rows_to_dense(ids, rows, count, vocab, dim, dense, presence);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, ids = sim_arg(kOp, "ids", ids, count), rows = sim_arg(kOp, "rows", rows, count * dim),
              dense = sim_arg(kOp, "dense", dense, vocab * dim), presence = sim_arg(kOp, "presence", presence, vocab)] {
            cpu::sparse_rows_to_dense(ids.get(), rows.get(), count, vocab, dim, dense.get(), presence.get());
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, float, s, cuda::sparse_rows_to_dense(s, ids, rows, count, vocab, dim, dense, presence));
  }
  detail::unknown_device(kOp, s);
}

void sparse_rows_from_dense(const Stream& s, const float* dense, const float* presence, int64_t vocab, int64_t dim,
                            int64_t* out_ids, float* out_rows, int64_t* out_count) {
  constexpr const char* kOp = "sparse_rows_from_dense";
  KILN_CHECK(vocab >= 0 && dim > 0, kOp, ": vocab ", vocab, ", dim ", dim);
  switch (s.device().kind) {
    case Device::Kind::cpu:
      *out_count = cpu::sparse_rows_from_dense(dense, presence, vocab, dim, out_ids, out_rows);
      return;
    case Device::Kind::sim:
      // The outputs' extent (the ids present) is known once the stream gets there.
      return detail::sim_launch(
          s, [=, dense = sim_arg(kOp, "dense", dense, vocab * dim), presence = sim_arg(kOp, "presence", presence, vocab),
              out_ids = sim_arg(kOp, "out_ids", out_ids, 0), out_rows = sim_arg(kOp, "out_rows", out_rows, 0),
              out_count = sim_arg(kOp, "out_count", out_count, 1)] {
            const float* p = presence.get();
            int64_t n = 0;
            for (int64_t id = 0; id < vocab; ++id) n += p[id] > 0;
            *out_count.get() = cpu::sparse_rows_from_dense(dense.get(), p, vocab, dim, out_ids.get(n), out_rows.get(n * dim));
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, float, s, cuda::sparse_rows_from_dense(s, dense, presence, vocab, dim, out_ids, out_rows, out_count));
  }
  detail::unknown_device(kOp, s);
}

}  // namespace kiln::kernels
