#pragma once
// DistinctValues: exact counts of a numeric column's distinct values, up to a limit.
//
// Why: most tabular numeric columns (years, months, ages, counts, codes) have few distinct values,
// and for them the quantiles (medians for imputation, quantile-bucket boundaries) can be exact at
// the cost of one hash probe per value. Past `limit` distinct values the counter gives up
// (overflowed(): no counts kept) and the quantiles come from the sketch and a refinement pass
// (transform/quantile_refinement.h).
//
// Deterministic for any sharding: a part that overflowed saw more than `limit` distinct values,
// so the union of all parts has more too; and a union of parts that did not overflow is exact.
// So the merged result, overflowed or exact counts, depends only on the multiset of values.
// -0.0 counts as 0.0 (they compare equal); callers pass finite values only.
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace kiln {
class DistinctValuesState;
}

namespace kiln::transform {

class DistinctValues {
 public:
  static constexpr int64_t kDefaultLimit = 4096;

  explicit DistinctValues(int64_t limit = kDefaultLimit);

  void add_all(std::span<const double> values);
  void merge(const DistinctValues& other);

  bool overflowed() const { return overflowed_; }
  int64_t limit() const { return limit_; }
  int64_t distinct() const { return size_; }  // 0 once overflowed

  // (value, count) in ascending order of value. Empty once overflowed.
  std::vector<std::pair<double, int64_t>> sorted() const;

  // Sorted values, canonical: equal counters give equal states.
  void to_proto(DistinctValuesState* state) const;
  // Throws kiln::Error when the state is malformed.
  static DistinctValues from_proto(const DistinctValuesState& state);

 private:
  struct Slot {
    uint64_t key;   // the value's bits; kEmpty for a free slot
    int64_t count;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // a NaN's bits: never a finite value

  void add(uint64_t key, int64_t n);
  void grow();
  void overflow();

  int64_t limit_;
  bool overflowed_ = false;
  int64_t size_ = 0;
  std::vector<Slot> slots_;  // open addressing, linear probing, power-of-two size, load <= 1/4
};

}  // namespace kiln::transform
