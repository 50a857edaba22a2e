#include "transform/vocabulary_counter.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "proto/analyzer_state.pb.h"
#include "transform/stable_hash.h"

namespace kiln::transform {
namespace {

constexpr size_t kInitialSlots = 16;

}  // namespace

size_t VocabularyCounter::find_slot(std::string_view value, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.count == 0 || (slot.hash == hash && slot.value == value)) return i;
  }
}

void VocabularyCounter::rehash(size_t slot_count) {
  std::vector<Slot> old(slot_count);
  old.swap(slots_);
  const size_t mask = slot_count - 1;
  for (Slot& slot : old) {
    if (slot.count == 0) continue;
    size_t i = slot.hash & mask;
    while (slots_[i].count != 0) i = (i + 1) & mask;
    slots_[i] = std::move(slot);
  }
}

void VocabularyCounter::add(std::string_view value, int64_t n) { add_hashed(value, stable_hash(value), n); }

void VocabularyCounter::add_hashed(std::string_view value, uint64_t hash, int64_t n) {
  KILN_CHECK(n > 0, "VocabularyCounter::add: count ", n);
  total_ += n;
  if (slots_.empty()) rehash(kInitialSlots);
  Slot& slot = slots_[find_slot(value, hash)];
  if (slot.count != 0) {
    slot.count += n;
    return;
  }
  slot.value.assign(value);
  slot.hash = hash;
  slot.count = n;
  ++distinct_;
  if (2 * static_cast<size_t>(distinct_) > slots_.size()) rehash(2 * slots_.size());
}

void VocabularyCounter::merge(const VocabularyCounter& other) {
  if (this == &other) {  // doubling: inserting while walking the same table would be unsafe
    for (Slot& slot : slots_) slot.count *= 2;
    total_ *= 2;
    return;
  }
  for (const Slot& slot : other.slots_)
    if (slot.count != 0) add_hashed(slot.value, slot.hash, slot.count);
}

int64_t VocabularyCounter::count(std::string_view value) const {
  if (slots_.empty()) return 0;
  return slots_[find_slot(value, stable_hash(value))].count;
}

std::vector<std::pair<std::string, int64_t>> VocabularyCounter::top(int64_t top_k,
                                                                   int64_t frequency_threshold) const {
  if (top_k < 0) fail("vocabulary: top_k ", top_k, " must be >= 0 (0: no limit)");
  std::vector<const Slot*> kept;
  for (const Slot& slot : slots_)
    if (slot.count != 0 && slot.count >= frequency_threshold) kept.push_back(&slot);
  // A strict total order (values are distinct), so the result does not depend on the algorithm.
  auto before = [](const Slot* a, const Slot* b) {
    return a->count != b->count ? a->count > b->count : a->value < b->value;
  };
  if (top_k > 0 && static_cast<size_t>(top_k) < kept.size()) {
    std::partial_sort(kept.begin(), kept.begin() + top_k, kept.end(), before);
    kept.resize(static_cast<size_t>(top_k));
  } else {
    std::sort(kept.begin(), kept.end(), before);
  }
  std::vector<std::pair<std::string, int64_t>> result;
  result.reserve(kept.size());
  for (const Slot* slot : kept) result.emplace_back(slot->value, slot->count);
  return result;
}

bool VocabularyCounter::operator==(const VocabularyCounter& other) const {
  if (total_ != other.total_ || distinct_ != other.distinct_) return false;
  return std::all_of(slots_.begin(), slots_.end(),
                     [&](const Slot& slot) { return slot.count == 0 || other.count(slot.value) == slot.count; });
}

void VocabularyCounter::to_proto(VocabularyState* state) const {
  state->Clear();
  std::vector<const Slot*> sorted;
  sorted.reserve(static_cast<size_t>(distinct_));
  for (const Slot& slot : slots_)
    if (slot.count != 0) sorted.push_back(&slot);
  std::sort(sorted.begin(), sorted.end(), [](const Slot* a, const Slot* b) { return a->value < b->value; });
  state->mutable_values()->Reserve(static_cast<int>(sorted.size()));
  state->mutable_counts()->Reserve(static_cast<int>(sorted.size()));
  for (const Slot* slot : sorted) {
    state->add_values(slot->value);
    state->add_counts(slot->count);
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
