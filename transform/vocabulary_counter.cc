#include "transform/vocabulary_counter.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "proto/analyzer_state.pb.h"
#include "transform/stable_hash.h"

namespace kiln::transform {
namespace {

constexpr size_t kInitialSlots = 16;
constexpr size_t kMaxEntries = std::numeric_limits<uint32_t>::max() - 1;

}  // namespace

size_t VocabularyCounter::find_slot(std::string_view value, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  const auto tag = static_cast<uint32_t>(hash >> 32);
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot slot = slots_[i];
    if (slot.entry == 0 || (slot.tag == tag && entries_[slot.entry - 1].value == value)) return i;
  }
}

void VocabularyCounter::rehash(size_t slot_count) {
  slots_.assign(slot_count, Slot{0, 0});
  const size_t mask = slot_count - 1;
  for (size_t e = 0; e < entries_.size(); ++e) {
    size_t i = entries_[e].hash & mask;
    while (slots_[i].entry != 0) i = (i + 1) & mask;
    slots_[i] = {static_cast<uint32_t>(entries_[e].hash >> 32), static_cast<uint32_t>(e + 1)};
  }
}

void VocabularyCounter::add(std::string_view value, int64_t n) { add_hashed(value, stable_hash(value), n); }

void VocabularyCounter::add_hashed(std::string_view value, uint64_t hash, int64_t n) {
  total_ += n;
  if (slots_.empty()) rehash(kInitialSlots);
  const size_t i = find_slot(value, hash);
  if (slots_[i].entry != 0) {
    entries_[slots_[i].entry - 1].count += n;
    return;
  }
  KILN_CHECK(entries_.size() < kMaxEntries, "vocabulary of more than ", kMaxEntries, " values");
  entries_.push_back(Entry{std::string(value), hash, n});
  slots_[i] = {static_cast<uint32_t>(hash >> 32), static_cast<uint32_t>(entries_.size())};
  if (2 * entries_.size() > slots_.size()) rehash(2 * slots_.size());
}

void VocabularyCounter::merge(const VocabularyCounter& other) {
  if (this == &other) {  // doubling: adding to entries_ while walking them would be unsafe
    for (Entry& entry : entries_) entry.count *= 2;
    total_ *= 2;
    return;
  }
  for (const Entry& entry : other.entries_) add_hashed(entry.value, entry.hash, entry.count);
}

int64_t VocabularyCounter::count(std::string_view value) const {
  if (slots_.empty()) return 0;
  const Slot slot = slots_[find_slot(value, stable_hash(value))];
  return slot.entry == 0 ? 0 : entries_[slot.entry - 1].count;
}

std::vector<std::pair<std::string, int64_t>> VocabularyCounter::top(int64_t top_k,
                                                                   int64_t frequency_threshold) const {
  if (top_k < 0) fail("vocabulary: top_k ", top_k, " must be >= 0 (0: no limit)");
  std::vector<const Entry*> kept;
  for (const Entry& entry : entries_)
    if (entry.count >= frequency_threshold) kept.push_back(&entry);
  // A strict total order (values are distinct), so the result does not depend on the algorithm.
  auto before = [](const Entry* a, const Entry* b) {
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
  for (const Entry* entry : kept) result.emplace_back(entry->value, entry->count);
  return result;
}

bool VocabularyCounter::operator==(const VocabularyCounter& other) const {
  if (total_ != other.total_ || entries_.size() != other.entries_.size()) return false;
  return std::all_of(entries_.begin(), entries_.end(),
                     [&](const Entry& entry) { return other.count(entry.value) == entry.count; });
}

void VocabularyCounter::to_proto(VocabularyState* state) const {
  state->Clear();
  std::vector<const Entry*> sorted;
  sorted.reserve(entries_.size());
  for (const Entry& entry : entries_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) { return a->value < b->value; });
  state->mutable_values()->Reserve(static_cast<int>(sorted.size()));
  state->mutable_counts()->Reserve(static_cast<int>(sorted.size()));
  for (const Entry* entry : sorted) {
    state->add_values(entry->value);
    state->add_counts(entry->count);
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
