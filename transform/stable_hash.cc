#include "transform/stable_hash.h"

// Inlined (same code as libxxhash): no call through the PLT on the hot path.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kiln::transform {

uint64_t stable_hash(std::string_view bytes) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), kStableHashSeed);
}

uint64_t stable_hash_combine(uint64_t a, uint64_t b) {
  // Explicit little-endian bytes: the result must not depend on the host's byte order.
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(a >> (8 * i));
    bytes[8 + i] = static_cast<unsigned char>(b >> (8 * i));
  }
  return XXH3_64bits_withSeed(bytes, sizeof(bytes), kStableHashSeed);
}

}  // namespace kiln::transform
