// Unit-cube encodings: round trips for every type and scale, the scales' geometry, conditional
// parameters, enumeration, and the scrambled Halton points the initial design draws.
#include "tuning/search_space.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "core/error.h"
#include "tests/tuning/spec_text.h"
#include "tuning/halton.h"

namespace kiln::tuning {
namespace {

const char* kMixed = R"(
params { parameter_name: 'lr' type: DOUBLE min_value: 1e-5 max_value: 1 scale_type: UNIT_LOG_SCALE }
params { parameter_name: 'momentum' type: DOUBLE min_value: 0.5 max_value: 0.999 scale_type: UNIT_REVERSE_LOG_SCALE }
params { parameter_name: 'x' type: DOUBLE min_value: -3 max_value: 7 }
params { parameter_name: 'units' type: INTEGER min_value: 8 max_value: 1024 scale_type: LOG }
params { parameter_name: 'layers' type: INTEGER min_value: 1 max_value: 4 }
params { parameter_name: 'dropout' type: DISCRETE discrete_values: [0, 0.1, 0.25, 0.5] }
params { parameter_name: 'opt' type: CATEGORICAL categorical_values: ['sgd', 'adam', 'adagrad'] }
params { parameter_name: 'nesterov' type: CATEGORICAL categorical_values: ['true', 'false'] parent_parameter: 'opt' parent_values: ['sgd'] }
params { parameter_name: 'width2' type: INTEGER min_value: 4 max_value: 64 parent_parameter: 'layers' parent_values: ['2', '3', '4'] }
)";

TEST(SearchSpace, EncodingRoundTripsEveryType) {
  SearchSpace space(spec_from(kMixed));
  EXPECT_EQ(space.dimensions(), 1u + 1 + 1 + 1 + 1 + 1 + 3 + 2 + 1);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 500; ++i) {
    std::vector<double> x(space.dimensions());
    for (double& v : x) v = u(rng);
    Assignment a = space.decode(x);
    std::vector<double> e = space.encode(a);
    EXPECT_EQ(space.decode(e), a) << assignment_to_text(a);
    // Values are feasible: integers, listed values, in range.
    EXPECT_EQ(std::nearbyint(a.at("units").number), a.at("units").number);
    EXPECT_GE(a.at("units").number, 8);
    EXPECT_LE(a.at("units").number, 1024);
    EXPECT_GE(a.at("lr").number, 1e-5);
    EXPECT_LE(a.at("lr").number, 1);
    std::set<double> dropouts = {0, 0.1, 0.25, 0.5};
    EXPECT_TRUE(dropouts.count(a.at("dropout").number));
    // A second trip through the text form (the command line, KILN_TUNE_PARAMS) is exact too.
    EXPECT_EQ(assignment_from_json(assignment_to_json(a)), a);
  }
}

TEST(SearchSpace, ScalesPlaceValuesWhereExpected) {
  SearchSpace space(spec_from(kMixed));
  const auto& lr = space.params()[0];
  EXPECT_NEAR(space.to_unit(lr, 1e-5), 0, 1e-12);
  EXPECT_NEAR(space.to_unit(lr, 1), 1, 1e-12);
  EXPECT_NEAR(space.to_unit(lr, std::sqrt(1e-5)), 0.5, 1e-12);  // geometric midpoint
  const auto& momentum = space.params()[1];
  // Reverse log: the mirror image of log (as Vizier defines it), so equal steps in value get
  // max/min times more of the unit interval near max_value than near min_value.
  EXPECT_NEAR(space.to_unit(momentum, 0.5), 0, 1e-12);
  EXPECT_NEAR(space.to_unit(momentum, 0.999), 1, 1e-12);
  EXPECT_GT(space.to_unit(momentum, 0.999) - space.to_unit(momentum, 0.998),
            1.9 * (space.to_unit(momentum, 0.501) - space.to_unit(momentum, 0.5)));
  double mirror = std::log(0.999 + 0.5 - 0.9);
  EXPECT_NEAR(space.to_unit(momentum, 0.9), 1 - (mirror - std::log(0.5)) / (std::log(0.999) - std::log(0.5)), 1e-12);
  for (const auto& p : space.params()) {
    if (p.type == ParameterSpec::CATEGORICAL) continue;
    for (double u : {0.0, 0.13, 0.5, 0.77, 1.0}) EXPECT_NEAR(space.to_unit(p, space.from_unit(p, u)), u, 1e-9) << p.name;
  }
}

TEST(SearchSpace, ConditionalParametersOnlyWhenActive) {
  SearchSpace space(spec_from(kMixed));
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(0, 1);
  int with_nesterov = 0, without = 0;
  for (int i = 0; i < 300; ++i) {
    std::vector<double> x(space.dimensions());
    for (double& v : x) v = u(rng);
    Assignment a = space.decode(x);
    bool sgd = a.at("opt").category == "sgd";
    EXPECT_EQ(a.count("nesterov") == 1, sgd) << assignment_to_text(a);
    EXPECT_EQ(a.count("width2") == 1, a.at("layers").number >= 2) << assignment_to_text(a);
    (sgd ? with_nesterov : without)++;
    // Inactive children encode to one fixed point, whatever x held there.
    std::vector<double> e = space.encode(a);
    const auto& nesterov = space.params()[7];
    if (!sgd) {
      EXPECT_EQ(e[nesterov.offset], 0.0);
      EXPECT_EQ(e[nesterov.offset + 1], 0.0);
    }
  }
  EXPECT_GT(with_nesterov, 50);
  EXPECT_GT(without, 50);
  // Encoding an assignment that lacks an active parameter is an error.
  Assignment a = space.decode(std::vector<double>(space.dimensions(), 0.0));
  a.erase("lr");
  EXPECT_THROW(space.encode(a), Error);
}

TEST(SearchSpace, EnumeratesFiniteSpacesWithConditionals) {
  SearchSpace space(spec_from(R"(
    params { parameter_name: 'opt' type: CATEGORICAL categorical_values: ['sgd', 'adam'] }
    params { parameter_name: 'momentum' type: DISCRETE discrete_values: [0.5, 0.9] parent_parameter: 'opt' parent_values: ['sgd'] }
    params { parameter_name: 'layers' type: INTEGER min_value: 1 max_value: 3 }
  )"));
  // sgd x 2 momenta x 3 layers + adam x 3 layers
  EXPECT_EQ(space.cardinality(1000), 9u);
  EXPECT_EQ(space.cardinality(5), std::nullopt);
  std::set<std::string> keys;
  for (const Assignment& a : space.enumerate(1000)) keys.insert(assignment_to_json(a));
  EXPECT_EQ(keys.size(), 9u);
  EXPECT_EQ(SearchSpace(spec_from("params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }")).cardinality(1000),
            std::nullopt);
}

TEST(SearchSpace, NumbersFormatToRoundTrip) {
  EXPECT_EQ(format_number(64), "64");
  EXPECT_EQ(format_number(0.1), "0.1");
  EXPECT_EQ(format_number(-2.5e-7), "-2.5e-07");
  for (double v : {0.1 + 0.2, 1.0 / 3, 6.02214076e23, 1e-300})
    EXPECT_EQ(std::stod(format_number(v)), v);
  EXPECT_THROW(assignment_from_json("{\"a\": [1]}"), Error);
  EXPECT_THROW(assignment_from_json("{\"a\": 1"), Error);
}

TEST(Halton, PointsAreStratifiedAndSeeded) {
  Halton h(5, 42);
  // Base 2 (dimension 0): the first 2^k points fall one in each interval of width 2^-k; base 3
  // (dimension 1) likewise with 3^k.
  for (int k : {3, 6}) {
    std::set<int> cells2, cells3;
    int n2 = 1 << k, n3 = static_cast<int>(std::pow(3, k / 3 + 1));
    for (int i = 0; i < n2; ++i) cells2.insert(static_cast<int>(h.point(static_cast<uint64_t>(i))[0] * n2));
    for (int i = 0; i < n3; ++i) cells3.insert(static_cast<int>(h.point(static_cast<uint64_t>(i))[1] * n3));
    EXPECT_EQ(static_cast<int>(cells2.size()), n2);
    EXPECT_EQ(static_cast<int>(cells3.size()), n3);
  }
  for (uint64_t i = 0; i < 1000; ++i)
    for (double v : h.point(i)) {
      ASSERT_GE(v, 0.0);
      ASSERT_LT(v, 1.0);
    }
  EXPECT_EQ(Halton(5, 42).point(17), h.point(17));
  EXPECT_NE(Halton(5, 43).point(17), h.point(17));
}

}  // namespace
}  // namespace kiln::tuning
