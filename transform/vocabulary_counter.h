#pragma once
// VocabularyCounter: how often each string value occurs in a categorical column, mergeable.
//
// Counts are integers, so merging is exact and any split of the rows gives the same counts; top()
// breaks ties by byte order, so the vocabulary it yields is deterministic too.
//
// Two open-addressing tables with linear probing. Most categorical values are short (codes, ids,
// words): a value of up to 7 bytes is packed with its length into one 64-bit key, so its slot is
// 16 bytes (key, count) and a lookup compares one integer. That table is at most half full, so
// most values sit in their home slot or the next (in a table up to 3/4 full, one lookup in six
// went further and mispredicted, which cost more than its cache misses saved): 20,000 distinct
// values take 1 MiB, where strings in slots (48 bytes, half full) took 3 MiB. Longer values go
// to a second table of (value, hash, count) slots, at most half full. add_all() computes a batch
// of keys first and prefetches their slots, so the cache misses of one column's lookups overlap
// instead of queueing.
#include <bit>
#include <cstdint>
#include <span>
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
  // add(value) for each value, faster.
  void add_all(std::span<const std::string_view> values);
  // Exact.
  void merge(const VocabularyCounter& other);

  int64_t count(std::string_view value) const;  // 0 when never seen
  int64_t total() const { return total_; }      // occurrences
  int64_t distinct() const { return distinct_; }

  // The values seen at least frequency_threshold times, most frequent first, ties in ascending
  // byte order; at most top_k of them (0: no limit). Throws kiln::Error when top_k < 0.
  std::vector<std::pair<std::string, int64_t>> top(int64_t top_k, int64_t frequency_threshold) const;

  // Calls f(value, count) for every distinct value, in an unspecified order (it depends on the
  // hashes and the order of insertion): use it for order-independent reductions only. The view
  // is valid during the call only.
  template <typename F>
  void for_each(F&& f) const {
    for (const ShortSlot& slot : short_slots_) {
      if (slot.key == 0) continue;
      char bytes[8];
      f(unpack(slot.key, bytes), slot.count);
    }
    for (const LongSlot& slot : long_slots_)
      if (slot.count != 0) f(std::string_view(slot.value), slot.count);
  }

  bool operator==(const VocabularyCounter& other) const;

  // Values in byte order: equal counters give equal states.
  void to_proto(VocabularyState* state) const;
  // Throws kiln::Error when the state is malformed.
  static VocabularyCounter from_proto(const VocabularyState& state);

 private:
  static_assert(std::endian::native == std::endian::little, "short keys pack bytes little-endian");
  static constexpr size_t kMaxShort = 7;

  struct ShortSlot {
    uint64_t key = 0;  // 0 marks an empty slot
    int64_t count = 0;
  };
  struct LongSlot {
    std::string value;
    uint64_t hash = 0;
    int64_t count = 0;  // 0 marks an empty slot
  };

  // A value of at most kMaxShort bytes as a nonzero word: its bytes, and its length + 1 in the
  // top byte (so "a" and "a\0" differ). Two overlapping loads instead of a byte loop.
  static uint64_t pack(std::string_view v);
  static std::string_view unpack(uint64_t key, char* bytes);  // bytes: room for 8
  size_t short_home(uint64_t key) const {
    const unsigned __int128 product = static_cast<unsigned __int128>(key) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64)) &
           (short_slots_.size() - 1);
  }
  void add_short(uint64_t key, int64_t n) {
    const size_t mask = short_slots_.size() - 1;
    const size_t home = short_home(key);
    // Most values were seen before and sit in their home slot or the next: that case is found
    // without a branch on which slot holds it (a probe loop mispredicts on a third of them).
    const size_t near = (home + (short_slots_[home].key != key)) & mask;  // arithmetic: GCC made a ?: a branch
    if (short_slots_[near].key == key) [[likely]] {
      short_slots_[near].count += n;
      return;
    }
    for (size_t i = home;; i = (i + 1) & mask) {
      ShortSlot& slot = short_slots_[i];
      if (slot.key == key) {
        slot.count += n;
        return;
      }
      if (slot.key == 0) {
        insert_short(slot, key, n);
        return;
      }
    }
  }
  void insert_short(ShortSlot& slot, uint64_t key, int64_t n);
  void add_long(std::string_view value, uint64_t hash, int64_t n);
  // The long slot holding value, or the empty slot where it belongs.
  size_t find_long(std::string_view value, uint64_t hash) const;
  // Grows the tables to hold that many distinct values within their load limits.
  void reserve(int64_t short_values, int64_t long_values);
  void rehash_short(size_t slot_count);
  void rehash_long(size_t slot_count);
  // Every (value, count) with count >= threshold, unordered.
  std::vector<std::pair<std::string, int64_t>> entries(int64_t threshold) const;

  std::vector<ShortSlot> short_slots_;  // a power of two in size (or empty), at most half full
  std::vector<LongSlot> long_slots_;    // a power of two in size (or empty), at most half full
  int64_t short_distinct_ = 0;
  int64_t long_distinct_ = 0;
  int64_t distinct_ = 0;
  int64_t total_ = 0;
};

}  // namespace kiln::transform
