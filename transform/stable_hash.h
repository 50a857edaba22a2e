#pragma once
// The one 64-bit hash of Kiln: hash buckets, feature crosses and OOV buckets all use it, and it is
// also the hash of VocabularyCounter's table.
//
// It must NEVER change. A trained model's embedding rows are indexed by these hashes, so a
// different hash would silently send every hashed value to another row of a servable that was
// exported long ago. It is XXH3_64bits (xxHash >= 0.8.0, whose XXH3 output is frozen) with the
// fixed seed below; tests/transform/stable_hash_test.cc pins golden outputs so that a library or
// code change that alters a single hash fails the build's tests.
#include <cstdint>
#include <string_view>

namespace kiln::transform {

inline constexpr uint64_t kStableHashSeed = 0x6b696c6e2e763031;  // "kiln.v01"

// XXH3_64bits_withSeed(bytes, kStableHashSeed).
uint64_t stable_hash(std::string_view bytes);

// The hash of the 16 bytes a then b, each little-endian: for crosses, combine the column hashes
// in the spec's column order (the combination is not symmetric).
uint64_t stable_hash_combine(uint64_t a, uint64_t b);

}  // namespace kiln::transform
