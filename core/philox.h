#pragma once
// Counter-based Philox4x32-10 (Salmon et al., SC'11). A draw depends only on (seed, counter), so
// the CPU and the GPU produce identical streams and any element can be generated independently:
// element i of a stream uses counter i / 4 and takes word i % 4.
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#if defined(__CUDACC__)
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif

namespace kiln {

struct Philox4x32 {
  using Block = std::array<uint32_t, 4>;

  KILN_HOST_DEVICE static Block generate(uint64_t seed, uint64_t counter_hi, uint64_t counter_lo) {
    uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
    uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
      uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
      uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
      uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
      c1 = static_cast<uint32_t>(p1);
      c3 = static_cast<uint32_t>(p0);
      c0 = n0;
      c2 = n2;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    return {c0, c1, c2, c3};
  }

  // The i-th 32-bit word of stream `stream` under `seed`.
  KILN_HOST_DEVICE static uint32_t word(uint64_t seed, uint64_t stream, uint64_t i) {
    Block b = generate(seed, stream, i >> 2);
    return b[i & 3];
  }

  // Uniform in [0, 1) with 24 random bits, exactly representable in float.
  KILN_HOST_DEVICE static float uniform(uint64_t seed, uint64_t stream, uint64_t i) {
    return static_cast<float>(word(seed, stream, i) >> 8) * (1.0f / 16777216.0f);
  }
};

// A sequential generator over one Philox stream, for host-side initialisation and shuffling.
class PhiloxGenerator {
 public:
  PhiloxGenerator(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  // Word i of the stream, as Philox4x32::word gives it; a block of four is computed once and its
  // words handed out in turn (4x fewer rounds for sequential draws, the same values).
  uint32_t next_u32() {
    const uint64_t counter = index_ >> 2;
    if (counter != block_counter_ || !block_valid_) {
      block_ = Philox4x32::generate(seed_, stream_, counter);
      block_counter_ = counter;
      block_valid_ = true;
    }
    return block_[index_++ & 3];
  }
  uint64_t next_u64() {
    uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
  }
  float uniform() { return static_cast<float>(next_u32() >> 8) * (1.0f / 16777216.0f); }
  // Standard normal via Box-Muller (two uniforms, one output: simple and stream-stable).
  double normal();
  // Uniform integer in [0, n), unbiased (rejection).
  uint64_t below(uint64_t n);
  // Fisher-Yates: a permutation that depends on the stream alone.
  template <typename Vector>
  void shuffle(Vector& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
  uint64_t position() const { return index_; }
  void seek(uint64_t index) { index_ = index; }

 private:
  uint64_t seed_, stream_, index_ = 0;
  Philox4x32::Block block_{};
  uint64_t block_counter_ = 0;
  bool block_valid_ = false;
};

}  // namespace kiln
