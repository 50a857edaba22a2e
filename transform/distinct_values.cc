#include "transform/distinct_values.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "core/error.h"
#include "proto/analyzer_state.pb.h"

namespace kiln::transform {
namespace {

uint64_t key_of(double x) { return std::bit_cast<uint64_t>(x == 0 ? 0.0 : x); }

// splitmix64's finaliser: integer-valued doubles differ only in their high bits, which a plain
// multiplicative hash would not carry down to the slot bits.
size_t slot_of(uint64_t key, size_t mask) {
  key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ull;
  key = (key ^ (key >> 27)) * 0x94d049bb133111ebull;
  return static_cast<size_t>(key ^ (key >> 31)) & mask;
}

}  // namespace

DistinctValues::DistinctValues(int64_t limit) : limit_(limit) {
  if (limit < 1) fail("distinct values: limit ", limit, " must be at least 1");
}

void DistinctValues::overflow() {
  overflowed_ = true;
  size_ = 0;
  std::vector<Slot>().swap(slots_);
}

void DistinctValues::grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(std::max<size_t>(64, old.size() * 2), Slot{kEmpty, 0});
  size_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) add(s.key, s.count);
}

void DistinctValues::add(uint64_t key, int64_t n) {
  // No growing for a value that overflows the counter.
  if (4 * (size_ + 1) > static_cast<int64_t>(slots_.size()) && size_ < limit_) grow();
  const size_t mask = slots_.size() - 1;
  for (size_t i = slot_of(key, mask);; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.key == key) {
      s.count += n;
      return;
    }
    if (s.key == kEmpty) {
      s = {key, n};
      ++size_;
      return;
    }
  }
}

void DistinctValues::add_all(std::span<const double> values) {
  if (overflowed_) return;
  for (double x : values) {
    const uint64_t key = key_of(x);
    // Most values were seen before and sit in their home slot or the next (the table is at most
    // a quarter full): that case is found without a branch on which slot holds it.
    if (!slots_.empty()) {
      const size_t mask = slots_.size() - 1;
      const size_t home = slot_of(key, mask);
      const size_t i = (home + (slots_[home].key != key)) & mask;  // arithmetic: GCC made a ?: a branch
      if (slots_[i].key == key) {
        ++slots_[i].count;
        continue;
      }
    }
    add(key, 1);
    if (size_ > limit_) return overflow();
  }
}

void DistinctValues::merge(const DistinctValues& other) {
  if (limit_ != other.limit_) fail("cannot merge distinct-value counters of different limits (", limit_, " and ", other.limit_, ")");
  if (overflowed_) return;
  if (other.overflowed_) return overflow();
  for (const Slot& s : other.slots_)
    if (s.key != kEmpty) {
      add(s.key, s.count);
      if (size_ > limit_) return overflow();
    }
}

std::vector<std::pair<double, int64_t>> DistinctValues::sorted() const {
  std::vector<std::pair<double, int64_t>> result;
  result.reserve(static_cast<size_t>(size_));
  for (const Slot& s : slots_)
    if (s.key != kEmpty) result.emplace_back(std::bit_cast<double>(s.key), s.count);
  std::sort(result.begin(), result.end());
  return result;
}

void DistinctValues::to_proto(DistinctValuesState* state) const {
  state->Clear();
  state->set_limit(limit_);
  state->set_overflowed(overflowed_);
  for (const auto& [value, count] : sorted()) {
    state->add_values(value);
    state->add_counts(count);
  }
}

DistinctValues DistinctValues::from_proto(const DistinctValuesState& state) {
  DistinctValues d(state.limit());
  if (state.overflowed()) {
    if (state.values_size() > 0) fail("DistinctValuesState: an overflowed counter holds values");
    d.overflow();
    return d;
  }
  if (state.values_size() != state.counts_size())
    fail("DistinctValuesState: ", state.values_size(), " values but ", state.counts_size(), " counts");
  if (state.values_size() > d.limit_) fail("DistinctValuesState: ", state.values_size(), " values exceed the limit ", d.limit_);
  for (int i = 0; i < state.values_size(); ++i) {
    const double x = state.values(i);
    if (!std::isfinite(x) || (i > 0 && !(x > state.values(i - 1))))
      fail("DistinctValuesState: values are not finite and strictly increasing");
    if (state.counts(i) <= 0) fail("DistinctValuesState: bad count ", state.counts(i));
    d.add(key_of(x), state.counts(i));
  }
  return d;
}

}  // namespace kiln::transform
