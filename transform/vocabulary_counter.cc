#include "transform/vocabulary_counter.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "proto/analyzer_state.pb.h"
#include "transform/stable_hash.h"

namespace kiln::transform {
namespace {

constexpr size_t kInitialSlots = 16;
constexpr size_t kPrefetchBatch = 32;  // keys computed (and slots prefetched) ahead of their lookups

template <typename Word>
Word load(const char* p) {
  Word w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

}  // namespace

uint64_t VocabularyCounter::pack(std::string_view v) {
  const size_t n = v.size();
  const char* p = v.data();
  uint64_t bytes = 0;
  if (n >= 4)  // the two loads overlap on equal bytes, so OR-ing them is exact
    bytes = load<uint32_t>(p) | (uint64_t{load<uint32_t>(p + n - 4)} << (8 * (n - 4)));
  else if (n >= 2)
    bytes = load<uint16_t>(p) | (uint64_t{load<uint16_t>(p + n - 2)} << (8 * (n - 2)));
  else if (n == 1)
    bytes = static_cast<unsigned char>(p[0]);
  return bytes | (uint64_t{n + 1} << 56);
}

std::string_view VocabularyCounter::unpack(uint64_t key, char* bytes) {
  const size_t n = (key >> 56) - 1;
  std::memcpy(bytes, &key, 8);
  return {bytes, n};
}

void VocabularyCounter::insert_short(ShortSlot& slot, uint64_t key, int64_t n) {
  slot.key = key;
  slot.count = n;
  ++short_distinct_;
  ++distinct_;
  if (2 * static_cast<size_t>(short_distinct_) > short_slots_.size()) rehash_short(2 * short_slots_.size());
}

void VocabularyCounter::rehash_short(size_t slot_count) {
  std::vector<ShortSlot> old(slot_count);
  old.swap(short_slots_);
  const size_t mask = slot_count - 1;
  for (const ShortSlot& slot : old) {
    if (slot.key == 0) continue;
    size_t i = short_home(slot.key);
    while (short_slots_[i].key != 0) i = (i + 1) & mask;
    short_slots_[i] = slot;
  }
}

size_t VocabularyCounter::find_long(std::string_view value, uint64_t hash) const {
  const size_t mask = long_slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const LongSlot& slot = long_slots_[i];
    if (slot.count == 0 || (slot.hash == hash && slot.value == value)) return i;
  }
}

void VocabularyCounter::rehash_long(size_t slot_count) {
  std::vector<LongSlot> old(slot_count);
  old.swap(long_slots_);
  const size_t mask = slot_count - 1;
  for (LongSlot& slot : old) {
    if (slot.count == 0) continue;
    size_t i = slot.hash & mask;
    while (long_slots_[i].count != 0) i = (i + 1) & mask;
    long_slots_[i] = std::move(slot);
  }
}

void VocabularyCounter::reserve(int64_t short_values, int64_t long_values) {
  size_t slots = std::max(kInitialSlots, short_slots_.size());
  while (2 * static_cast<size_t>(short_values) > slots) slots *= 2;
  if (slots != short_slots_.size()) rehash_short(slots);
  slots = std::max(kInitialSlots, long_slots_.size());
  while (2 * static_cast<size_t>(long_values) > slots) slots *= 2;
  if (long_values > 0 && slots != long_slots_.size()) rehash_long(slots);
}

void VocabularyCounter::add_long(std::string_view value, uint64_t hash, int64_t n) {
  if (long_slots_.empty()) rehash_long(kInitialSlots);
  LongSlot& slot = long_slots_[find_long(value, hash)];
  if (slot.count != 0) {
    slot.count += n;
    return;
  }
  slot.value.assign(value);
  slot.hash = hash;
  slot.count = n;
  ++long_distinct_;
  ++distinct_;
  if (2 * static_cast<size_t>(long_distinct_) > long_slots_.size()) rehash_long(2 * long_slots_.size());
}

void VocabularyCounter::add(std::string_view value, int64_t n) {
  KILN_CHECK(n > 0, "VocabularyCounter::add: count ", n);
  total_ += n;
  if (value.size() > kMaxShort) {
    add_long(value, stable_hash(value), n);
    return;
  }
  if (short_slots_.empty()) rehash_short(kInitialSlots);
  add_short(pack(value), n);
}

void VocabularyCounter::add_all(std::span<const std::string_view> values) {
  if (short_slots_.empty()) rehash_short(kInitialSlots);
  uint64_t keys[kPrefetchBatch];
  for (size_t begin = 0; begin < values.size(); begin += kPrefetchBatch) {
    const size_t m = std::min(kPrefetchBatch, values.size() - begin);
    for (size_t k = 0; k < m; ++k) {
      const std::string_view v = values[begin + k];
      keys[k] = v.size() <= kMaxShort ? pack(v) : 0;
      if (keys[k] != 0) __builtin_prefetch(&short_slots_[short_home(keys[k])]);
    }
    for (size_t k = 0; k < m; ++k) {
      if (keys[k] != 0)
        add_short(keys[k], 1);
      else
        add_long(values[begin + k], stable_hash(values[begin + k]), 1);
    }
  }
  total_ += static_cast<int64_t>(values.size());
}

void VocabularyCounter::merge(const VocabularyCounter& other) {
  if (this == &other) {  // doubling: inserting while walking the same table would be unsafe
    for (ShortSlot& slot : short_slots_) slot.count *= 2;
    for (LongSlot& slot : long_slots_) slot.count *= 2;
    total_ *= 2;
    return;
  }
  // Grow first: walking other's table inserts values in the order of their home slots there,
  // which in a smaller table would pile them into long probe runs.
  reserve(short_distinct_ + other.short_distinct_, long_distinct_ + other.long_distinct_);
  for (const ShortSlot& slot : other.short_slots_)
    if (slot.key != 0) add_short(slot.key, slot.count);
  for (const LongSlot& slot : other.long_slots_)
    if (slot.count != 0) add_long(slot.value, slot.hash, slot.count);
  total_ += other.total_;
}

int64_t VocabularyCounter::count(std::string_view value) const {
  if (value.size() > kMaxShort) {
    if (long_slots_.empty()) return 0;
    return long_slots_[find_long(value, stable_hash(value))].count;
  }
  if (short_slots_.empty()) return 0;
  const uint64_t key = pack(value);
  const size_t mask = short_slots_.size() - 1;
  for (size_t i = short_home(key);; i = (i + 1) & mask) {
    if (short_slots_[i].key == key) return short_slots_[i].count;
    if (short_slots_[i].key == 0) return 0;
  }
}

std::vector<std::pair<std::string, int64_t>> VocabularyCounter::entries(int64_t threshold) const {
  std::vector<std::pair<std::string, int64_t>> result;
  for_each([&](std::string_view value, int64_t count) {
    if (count >= threshold) result.emplace_back(value, count);
  });
  return result;
}

std::vector<std::pair<std::string, int64_t>> VocabularyCounter::top(int64_t top_k,
                                                                   int64_t frequency_threshold) const {
  if (top_k < 0) fail("vocabulary: top_k ", top_k, " must be >= 0 (0: no limit)");
  std::vector<std::pair<std::string, int64_t>> kept = entries(frequency_threshold);
  // A strict total order (values are distinct), so the result does not depend on the algorithm.
  auto before = [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; };
  if (top_k > 0 && static_cast<size_t>(top_k) < kept.size()) {
    std::partial_sort(kept.begin(), kept.begin() + top_k, kept.end(), before);
    kept.resize(static_cast<size_t>(top_k));
  } else {
    std::sort(kept.begin(), kept.end(), before);
  }
  return kept;
}

bool VocabularyCounter::operator==(const VocabularyCounter& other) const {
  if (total_ != other.total_ || distinct_ != other.distinct_) return false;
  bool equal = true;
  for_each([&](std::string_view value, int64_t count) { equal = equal && other.count(value) == count; });
  return equal;
}

void VocabularyCounter::to_proto(VocabularyState* state) const {
  state->Clear();
  std::vector<std::pair<std::string, int64_t>> sorted = entries(1);
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  state->mutable_values()->Reserve(static_cast<int>(sorted.size()));
  state->mutable_counts()->Reserve(static_cast<int>(sorted.size()));
  for (auto& [value, count] : sorted) {
    state->add_values(std::move(value));
    state->add_counts(count);
  }
}

VocabularyCounter VocabularyCounter::from_proto(const VocabularyState& state) {
  if (state.values_size() != state.counts_size())
    fail("VocabularyState: ", state.values_size(), " values but ", state.counts_size(), " counts");
  VocabularyCounter counter;
  for (int i = 0; i < state.values_size(); ++i) {
    if (i > 0 && !(state.values(i - 1) < state.values(i)))
      fail("VocabularyState: values are not strictly increasing at ", i);
    const int64_t count = state.counts(i);
    if (count <= 0 || count > std::numeric_limits<int64_t>::max() - counter.total_)
      fail("VocabularyState: bad count ", count, " for value ", i);
    counter.add(state.values(i), count);
  }
  return counter;
}

}  // namespace kiln::transform
