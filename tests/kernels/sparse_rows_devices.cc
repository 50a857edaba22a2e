// kernels/sparse_rows.h on every device (tests/kernels/device_test_util.h): the merge of the ranks'
// row-sparse gradients after an all-gather, and the round trip through a table-sized buffer, which
// models/gradient_sync.cc runs on the device. The CPU results are checked against sums written
// out here, so sim (bit-equal to the CPU) and CUDA (tolerance 0) are held to the same bits.
#include <map>

#include "kernels/sparse_rows.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;

class SparseRowsDevices : public test::DeviceTest {};

// Three ranks' gradients of a [40, dim] table in all-gather slots of `stride` ids and
// stride * dim rows (padding filled with garbage the merge must not read).
constexpr int64_t kDim = 3, kStride = 6;
const std::vector<int64_t> kCounts = {4, 0, 5};
const std::vector<int64_t> kIds = {2, 7, 9, 31, -5, -5,  // rank 0, two padding slots
                                   -5, -5, -5, -5, -5, -5,  // rank 1 has no rows
                                   0, 7, 9, 12, 39, -5};   // rank 2
std::vector<float> slotted_rows() {
  std::vector<float> rows = test::random_vec<float>(3 * kStride * kDim, 71);
  rows[0 * kStride * kDim + 1 * kDim] = -0.0f;  // rank 0, id 7, column 0: alone -0 stays -0 ...
  rows[2 * kStride * kDim + 1 * kDim] = -0.0f;  // ... and rank 2's -0 added to it gives -0
  rows[0 * kStride * kDim + 0 * kDim + 1] = -0.0f;  // id 2 is rank 0's only: copied, not 0 + x
  return rows;
}

TEST_P(SparseRowsDevices, MergeSumsEachIdInRankOrder) {
  const std::vector<float> rows = slotted_rows();
  auto run = [&](DeviceRunner& d) {
    int64_t* out_ids = d.alloc<int64_t>(9);
    float* out_rows = d.alloc<float>(9 * kDim);
    int64_t* count = d.alloc<int64_t>(1);
    kernels::sparse_rows_merge(d.stream(), d.upload(kIds), kStride, d.upload(rows), kStride * kDim, 3, kCounts.data(),
                               kDim, out_ids, out_rows, count);
    std::vector<double> result = d.download(count, 1);
    const auto n = static_cast<size_t>(result[0]);
    test::append(result, d.download(out_ids, n));
    test::append(result, d.download(out_rows, n * kDim));
    return result;
  };
  // The union of the ids, each row the first rank's copied and the next ones added in rank order.
  std::map<int64_t, std::vector<float>> want;
  for (size_t r = 0; r < 3; ++r) {
    for (int64_t i = 0; i < kCounts[r]; ++i) {
      const float* row = rows.data() + (r * kStride + static_cast<size_t>(i)) * kDim;
      auto [at, fresh] = want.try_emplace(kIds[r * kStride + static_cast<size_t>(i)], row, row + kDim);
      if (!fresh)
        for (int64_t j = 0; j < kDim; ++j) at->second[static_cast<size_t>(j)] += row[j];
    }
  }
  std::vector<double> expected{static_cast<double>(want.size())};
  for (const auto& [id, row] : want) expected.push_back(static_cast<double>(id));
  for (const auto& [id, row] : want) expected.insert(expected.end(), row.begin(), row.end());
  DeviceRunner cpu(Device::Kind::cpu);
  const std::vector<double> got = run(cpu);
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_EQ(0, std::memcmp(got.data(), expected.data(), got.size() * sizeof(double)));
  // Ids 0, 2, 7, ...: id 2's column 1 and id 7's column 0 are -0.
  ASSERT_EQ(got[0], 7);
  EXPECT_TRUE(std::signbit(got[1 + 7 + 1 * kDim + 1]) && std::signbit(got[1 + 7 + 2 * kDim])) << "-0 lost";
  expect_same_as_cpu(run, 0.0);
}

TEST_P(SparseRowsDevices, MergeOfNothingIsEmpty) {
  const std::vector<int64_t> counts = {0, 0};
  expect_same_as_cpu([&](DeviceRunner& d) {
    int64_t* count = d.alloc<int64_t>(1);
    kernels::sparse_rows_merge(d.stream(), d.upload(std::vector<int64_t>{1}), 1, d.upload(std::vector<float>{1}), 1, 2,
                               counts.data(), 1, d.alloc<int64_t>(1), d.alloc<float>(1), count);
    return d.download(count, 1);
  });
}

TEST_P(SparseRowsDevices, DenseRoundTripKeepsPresentIdsWithZeroRows) {
  const int64_t vocab = 50, dim = 4;
  const std::vector<int64_t> ids = {3, 17, 18, 49};
  std::vector<float> rows = test::random_vec<float>(ids.size() * dim, 72);
  for (int64_t j = 0; j < dim; ++j) rows[static_cast<size_t>(dim + j)] = 0.0f;  // id 17: a zero row, still present
  auto run = [&](DeviceRunner& d) {
    float* dense = d.upload(std::vector<float>(vocab * dim, 0.0f));
    float* presence = d.upload(std::vector<float>(vocab, 0.0f));
    kernels::sparse_rows_to_dense(d.stream(), d.upload(ids), d.upload(rows), 4, vocab, dim, dense, presence);
    std::vector<double> result = d.download(dense, vocab * dim);
    test::append(result, d.download(presence, vocab));
    int64_t* out_ids = d.alloc<int64_t>(vocab);
    float* out_rows = d.alloc<float>(vocab * dim);
    int64_t* count = d.alloc<int64_t>(1);
    kernels::sparse_rows_from_dense(d.stream(), dense, presence, vocab, dim, out_ids, out_rows, count);
    test::append(result, d.download(count, 1));
    test::append(result, d.download(out_ids, 4));
    test::append(result, d.download(out_rows, 4 * dim));
    return result;
  };
  DeviceRunner cpu(Device::Kind::cpu);
  const std::vector<double> got = run(cpu);
  const size_t tail = static_cast<size_t>(vocab * dim + vocab);
  ASSERT_EQ(got.size(), tail + 1 + 4 + 4 * dim);
  EXPECT_EQ(got[tail], 4);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(got[tail + 1 + i], static_cast<double>(ids[i]));
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(got[tail + 5 + i], static_cast<double>(rows[i])) << i;
  expect_same_as_cpu(run, 0.0);
}

TEST_P(SparseRowsDevices, OverlappingPartsAreAnError) {
  DeviceRunner d(GetParam());
  const std::vector<int64_t> counts = {3, 1};
  test::expect_error(
      [&] {
        kernels::sparse_rows_merge(d.stream(), d.alloc<int64_t>(8), 2, d.alloc<float>(8), 2, 2, counts.data(), 1,
                                   d.alloc<int64_t>(4), d.alloc<float>(4), d.alloc<int64_t>(1));
      },
      {"part 0 of 3 ids overlaps the next"});
}

KILN_DEVICE_TEST_SUITE(SparseRowsDevices);

}  // namespace
}  // namespace kiln
