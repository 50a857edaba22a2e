#pragma once
// VocabularyCounter: how often each string value occurs in a categorical column, mergeable.
//
// Counts are integers, so merging is exact and any split of the rows gives the same counts; top()
// breaks ties by byte order, so the vocabulary it yields is deterministic too.
//
// The table is one open-addressing array with linear probing, at most half full; each slot holds
// the value (std::string: short values live inside it, no allocation), its full hash and its count.
// Counting a value already present hashes it and usually reads one cache line: no allocation.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {
class VocabularyState;
}

namespace kiln::transform {

class VocabularyCounter {
 public:
  // Adds n (>= 1) occurrences of value.
  void add(std::string_view value, int64_t n = 1);
  // Exact.
  void merge(const VocabularyCounter& other);

  int64_t count(std::string_view value) const;  // 0 when never seen
  int64_t total() const { return total_; }      // occurrences
  int64_t distinct() const { return distinct_; }

  // The values seen at least frequency_threshold times, most frequent first, ties in ascending
  // byte order; at most top_k of them (0: no limit). Throws kiln::Error when top_k < 0.
  std::vector<std::pair<std::string, int64_t>> top(int64_t top_k, int64_t frequency_threshold) const;

  // Calls f(value, count) for every distinct value, in an unspecified order (it depends on the
  // hashes and the order of insertion): use it for order-independent reductions only.
  template <typename F>
  void for_each(F&& f) const {
    for (const Slot& slot : slots_)
      if (slot.count != 0) f(std::string_view(slot.value), slot.count);
  }

  bool operator==(const VocabularyCounter& other) const;

  // Values in byte order: equal counters give equal states.
  void to_proto(VocabularyState* state) const;
  // Throws kiln::Error when the state is malformed.
  static VocabularyCounter from_proto(const VocabularyState& state);

 private:
  struct Slot {
    std::string value;
    uint64_t hash = 0;
    int64_t count = 0;  // 0 marks an empty slot
  };

  void add_hashed(std::string_view value, uint64_t hash, int64_t n);
  // The slot holding value, or the empty slot where it belongs.
  size_t find_slot(std::string_view value, uint64_t hash) const;
  void rehash(size_t slot_count);

  std::vector<Slot> slots_;  // a power of two in size, at most half full
  int64_t distinct_ = 0;
  int64_t total_ = 0;
};

}  // namespace kiln::transform
