#include "io/crc32c.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::io {
namespace {

// Bit-at-a-time reference, independent of the table construction.
uint32_t reference_crc32c(const unsigned char* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
  }
  return ~crc;
}

TEST(Crc32c, CheckValue) { EXPECT_EQ(crc32c("123456789"), 0xE3069283u); }

TEST(Crc32c, Empty) { EXPECT_EQ(crc32c("", 0), 0u); }

// Test vectors from RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32c, Rfc3720Vectors) {
  std::vector<unsigned char> buf(32);
  std::fill(buf.begin(), buf.end(), 0x00);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x8A9136AAu);
  std::fill(buf.begin(), buf.end(), 0xFF);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(crc32c(buf.data(), buf.size()), 0x113FDB5Cu);
}

TEST(Crc32c, MatchesBitwiseReferenceAtAllLengthsAndOffsets) {
  std::vector<unsigned char> data(300);
  uint32_t x = 12345;
  for (auto& b : data) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<unsigned char>(x >> 24);
  }
  for (size_t offset = 0; offset < 9; ++offset)
    for (size_t n = 0; n + offset <= data.size(); n += 7)
      ASSERT_EQ(crc32c(data.data() + offset, n), reference_crc32c(data.data() + offset, n)) << offset << " " << n;
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::string s = "The quick brown fox jumps over the lazy dog, twice over and again.";
  for (size_t split = 0; split <= s.size(); ++split)
    EXPECT_EQ(crc32c_extend(crc32c(s.data(), split), s.data() + split, s.size() - split), crc32c(s));
}

TEST(Crc32c, Masking) {
  const uint32_t crc = crc32c("123456789");
  EXPECT_EQ(masked_crc32c("123456789", 9), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
  // Unmasking recovers the CRC.
  uint32_t rot = mask_crc32c(crc) - 0xa282ead8u;
  EXPECT_EQ((rot >> 17) | (rot << 15), crc);
}

}  // namespace
}  // namespace kiln::io
