#pragma once
// Splitting a data set the way threads, file chunks and MPI ranks would: the rows shuffled, cut
// into parts at random points (some parts may be empty), each part accumulated on its own, and the
// parts merged pairwise in a random tree. An order-independent accumulator gives the same result
// for every such split.
#include <algorithm>
#include <random>
#include <utility>
#include <vector>

namespace kiln::transform::testing {

template <typename Accumulator>
Accumulator merge_in_random_tree(std::vector<Accumulator> parts, std::mt19937_64& rng) {
  while (parts.size() > 1) {
    std::uniform_int_distribution<size_t> pick(0, parts.size() - 1);
    const size_t into = pick(rng);
    size_t from = pick(rng);
    while (from == into) from = pick(rng);
    parts[into].merge(parts[from]);
    std::swap(parts[from], parts.back());
    parts.pop_back();
  }
  return parts.front();
}

// make() builds an empty accumulator; add(accumulator, value) adds one row.
template <typename Value, typename Make, typename Add>
auto accumulate_in_parts(std::vector<Value> values, size_t num_parts, std::mt19937_64& rng, Make make, Add add) {
  std::shuffle(values.begin(), values.end(), rng);
  std::vector<size_t> cuts{0, values.size()};
  std::uniform_int_distribution<size_t> cut(0, values.size());
  for (size_t k = 1; k < num_parts; ++k) cuts.push_back(cut(rng));
  std::sort(cuts.begin(), cuts.end());
  std::vector<decltype(make())> parts;
  for (size_t k = 0; k + 1 < cuts.size(); ++k) {
    auto part = make();
    for (size_t i = cuts[k]; i < cuts[k + 1]; ++i) add(part, values[i]);
    parts.push_back(std::move(part));
  }
  return merge_in_random_tree(std::move(parts), rng);
}

// Every value in a part of its own, the parts merged in a random tree.
template <typename Value, typename Make, typename Add>
auto accumulate_each_apart(const std::vector<Value>& values, std::mt19937_64& rng, Make make, Add add) {
  std::vector<decltype(make())> parts;
  parts.reserve(values.size());
  for (const Value& value : values) {
    auto part = make();
    add(part, value);
    parts.push_back(std::move(part));
  }
  return merge_in_random_tree(std::move(parts), rng);
}

}  // namespace kiln::transform::testing
