#include "transform/comparison_spec.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/transform/analyze_text.h"

namespace kiln::transform {
namespace {

using testing::analyze_csv;
using testing::parse_spec;

const char* kSpec =
    "features { name: 'age' numeric {} missing { kind: MEDIAN } } "
    "features { name: 'age_q' source: 'age' bucketized { num_quantile_buckets: 2 } missing { kind: MEAN } } "
    "features { name: 'city' categorical { vocabulary { top_k: 1 frequency_threshold: 2 } } } "
    "features { name: 'tag' categorical { hash { buckets: 8 } } missing { kind: DROP_ROW } } "
    "features { name: 'city_x_age' crossed { columns: ['city', 'age_q'] hash_buckets: 4 } } "
    "label { column: 'y' }";

TEST(ComparisonSpec, KeepsEveryValueAndTheBaselinesBuckets) {
  const TransformState base = analyze_csv(parse_spec(kSpec), "age,city,tag,y\n10,paris,a,1\n20,paris,b,2\n30,rome,c,3\n"
                                                             "40,oslo,d,4\n");
  const FeatureSpec spec = comparison_spec(base);
  EXPECT_EQ(spec.features(0).missing().kind(), MissingPolicy::DEFAULT);
  EXPECT_EQ(spec.features(1).missing().kind(), MissingPolicy::DEFAULT);
  EXPECT_EQ(spec.features(1).bucketized().num_quantile_buckets(), 0);
  ASSERT_EQ(spec.features(1).bucketized().boundaries_size(), base.features(1).boundaries_size());
  EXPECT_EQ(spec.features(1).bucketized().boundaries(0), base.features(1).boundaries(0));
  EXPECT_EQ(spec.features(2).categorical().vocabulary().top_k(), 0);
  EXPECT_EQ(spec.features(2).categorical().vocabulary().frequency_threshold(), 1);
  EXPECT_TRUE(spec.features(3).categorical().has_vocabulary());  // was hashed
  EXPECT_EQ(spec.features(3).missing().kind(), MissingPolicy::DROP_ROW);  // the same rows
  EXPECT_TRUE(spec.features(4).has_crossed());
  EXPECT_EQ(spec.label().column(), "y");

  // Other data: no age at all (no median to compute: not an error), a missing tag drops its row,
  // and every city is kept.
  const TransformState other = analyze_csv(spec, "age,city,tag,y\nNA,rome,a,1\nNA,oslo,,2\nNA,lima,b,3\n");
  EXPECT_EQ(other.rows(), 2);
  EXPECT_EQ(other.features(0).numeric().count(), 0);
  EXPECT_EQ(other.features(2).categorical().vocabulary_size(), 2);
  EXPECT_EQ(other.features(2).categorical().oov_count(), 0);
}

TEST(ComparisonSpec, AStateWithoutItsBucketsIsNamed) {
  TransformState base = analyze_csv(parse_spec(kSpec), "age,city,tag,y\n10,paris,a,1\n20,rome,b,2\n");
  base.mutable_features(1)->clear_boundaries();
  try {
    comparison_spec(base);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("feature 'age_q'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::transform
