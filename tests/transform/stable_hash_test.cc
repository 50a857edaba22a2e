#include "transform/stable_hash.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::transform {
namespace {

// Golden values. These hashes are baked into every trained model (hash buckets, crosses, OOV
// buckets): if this test fails, the hash changed and exported models would silently break. Fix
// the code or the library, never these numbers.
TEST(StableHash, GoldenValues) {
  EXPECT_EQ(stable_hash(""), 0x00f7b2638dbea931ull);
  EXPECT_EQ(stable_hash("a"), 0x314bb455d770ec91ull);
  EXPECT_EQ(stable_hash("kiln"), 0x3593143cdd01261aull);
  EXPECT_EQ(stable_hash("Single(1)"), 0x44266f082db6855aull);
  EXPECT_EQ(stable_hash(std::string(1000, 'x')), 0x18c64ede2864a335ull);
  EXPECT_EQ(stable_hash_combine(1, 2), 0x74d6790c0ecf3d01ull);
  EXPECT_EQ(stable_hash_combine(stable_hash("True"), stable_hash("Single(1)")), 0xff875d80226fd1eeull);
}

TEST(StableHash, BasicProperties) {
  EXPECT_EQ(stable_hash("abc"), stable_hash(std::string("abc")));
  EXPECT_NE(stable_hash("abc"), stable_hash("abd"));
  EXPECT_NE(stable_hash(std::string("a\0", 2)), stable_hash("a"));
  EXPECT_NE(stable_hash_combine(1, 2), stable_hash_combine(2, 1));  // column order matters
}

}  // namespace
}  // namespace kiln::transform
