#include "transform/html_report.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "tests/transform/analyze_text.h"
#include "transform/comparison_spec.h"
#include "transform/report_charts.h"
#include "transform/state_report.h"

namespace kiln::transform {
namespace {

using testing::analyze_csv;
using testing::parse_spec;

const char* kSpec =
    "features { name: 'age' numeric {} } "
    "features { name: 'age_q' source: 'age' bucketized { num_quantile_buckets: 3 } } "
    "features { name: 'city' categorical { vocabulary {} } } "
    "features { name: 'tag' categorical { hash { buckets: 8 } } } "
    "features { name: 'city_x_age' crossed { columns: ['city', 'age_q'] hash_buckets: 4 } } "
    "label { column: 'y' }";

// 60 rows: ages 10..69, cities paris/rome/oslo in 3:2:1, tags a..d.
std::string base_csv() {
  std::string csv = "age,city,tag,y\n";
  const char* cities[] = {"paris", "paris", "paris", "rome", "rome", "oslo"};
  for (int i = 0; i < 60; ++i)
    csv += std::to_string(10 + i) + "," + cities[i % 6] + "," + std::string(1, static_cast<char>('a' + i % 4)) + "," +
           std::to_string(i % 7) + "\n";
  return csv;
}

// The same ages and tags; cities mostly 'lima', which the base never saw.
std::string drifted_csv() {
  std::string csv = "age,city,tag,y\n";
  for (int i = 0; i < 60; ++i)
    csv += std::to_string(10 + i) + "," + (i % 4 == 0 ? "paris" : "lima") + "," +
           std::string(1, static_cast<char>('a' + i % 4)) + "," + std::to_string(i % 7) + "\n";
  return csv;
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The markup of the section of feature `name`.
std::string section_of(const std::string& page, const std::string& name) {
  const size_t at = page.find("data-feature=\"" + name + "\"");
  if (at == std::string::npos) return "";
  const size_t begin = page.rfind("<section", at);
  return page.substr(begin, page.find("</section>", at) - begin);
}

TEST(HtmlReport, OneSelfContainedSectionPerFeatureAndTheLabel) {
  const TransformState s = analyze_csv(parse_spec(kSpec), base_csv());
  const std::string page = html_report(s, nullptr, ReportOptions{});
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("Content-Security-Policy\" content=\"default-src 'none'"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("http:"), std::string::npos);
  EXPECT_EQ(page.find("https:"), std::string::npos);
  EXPECT_EQ(occurrences(page, "<section class=\"feature"), 6u);  // 5 features and the label
  for (const char* name : {"age", "age_q", "city", "tag", "y"}) {
    const std::string sec = section_of(page, name);
    EXPECT_NE(sec.find("<svg class=\"chart"), std::string::npos) << name;
    EXPECT_NE(sec.find("<rect"), std::string::npos) << name;
    EXPECT_EQ(sec.find("data-distance"), std::string::npos) << name;  // nothing compared
  }
  EXPECT_NE(section_of(page, "city_x_age").find("A cross of city \u00d7 age_q"), std::string::npos);
  EXPECT_NE(section_of(page, "age").find("<td>min</td><td>10</td>"), std::string::npos);
  EXPECT_NE(section_of(page, "age_q").find("3 buckets, boundaries (dashed)"), std::string::npos);
  EXPECT_NE(section_of(page, "city").find(">paris</text>"), std::string::npos);
  EXPECT_NE(section_of(page, "city").find("<td>out of vocabulary (OOV)</td><td>0.00%</td>"), std::string::npos);
}

TEST(HtmlReport, MarksTheFeaturesAboveTheThreshold) {
  const TransformState base = analyze_csv(parse_spec(kSpec), base_csv());
  const TransformState other = analyze_csv(comparison_spec(base), drifted_csv());
  ReportOptions options;
  options.data_name = "train";
  options.compare_name = "serving";
  const std::string page = html_report(base, &other, options);
  // city: 'lima' (75%) falls in base's OOV bucket, which held 0%.
  const std::string city = section_of(page, "city");
  EXPECT_NE(city.find("class=\"feature drifted\""), std::string::npos);
  EXPECT_NE(city.find("data-distance=\"0.750000\""), std::string::npos) << city;
  EXPECT_NE(city.find("L-inf 0.7500 &gt; 0.01"), std::string::npos);
  EXPECT_NE(city.find("Most frequent serving values outside train's vocabulary: 'lima' 75.00%"), std::string::npos);
  EXPECT_NE(city.find("class=\"highlight\""), std::string::npos);
  for (const char* same : {"age", "age_q", "tag", "y"}) {
    const std::string sec = section_of(page, same);
    EXPECT_NE(sec.find("data-distance=\"0.000000\""), std::string::npos) << same;
    EXPECT_EQ(sec.find("drifted"), std::string::npos) << same;
  }
  EXPECT_NE(page.find("1 of 5 features above the drift threshold 0.01"), std::string::npos);
  // The report's distances are compare_states'.
  for (const FeatureDistance& d : compare_states(base, other))
    if (d.feature == "city") {
      EXPECT_EQ(d.value, 0.75);
    }
  options.drift_threshold = 0.8;
  EXPECT_EQ(html_report(base, &other, options).find("feature drifted"), std::string::npos);
}

TEST(HtmlReport, EscapesNamesAndValues) {
  const FeatureSpec spec = parse_spec("features { name: 'c<b>' source: 'c' categorical { vocabulary {} } }");
  const TransformState s = analyze_csv(spec, "c\n\"<script>alert('x')</script>\"\n\"a&b\"\n");
  const std::string page = html_report(s, nullptr, ReportOptions{});
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("c<b>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(&#39;x&#39;)"), std::string::npos);
  EXPECT_NE(page.find("data-feature=\"c&lt;b&gt;\""), std::string::npos);
  EXPECT_NE(page.find(">a&amp;b</text>"), std::string::npos);
  EXPECT_EQ(escape_html(std::string("tab\there\x01")), "tab\\x09here\\x01");
  EXPECT_EQ(shorten("\u00e9t\u00e9 \u00e0 Paris", 4), "\u00e9t\u00e9 \u2026");
  EXPECT_EQ(shorten("short", 5), "short");
}

TEST(HtmlReport, MismatchedStatesAreNamed) {
  const TransformState base = analyze_csv(parse_spec(kSpec), base_csv());
  auto message = [&](const TransformState& other, const ReportOptions& options = {}) -> std::string {
    try {
      html_report(base, &other, options);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  TransformState fewer = base;
  fewer.mutable_features()->RemoveLast();
  EXPECT_NE(message(fewer).find("feature 'city_x_age' is in the first state only"), std::string::npos);
  TransformState other_kind = base;
  other_kind.mutable_features(2)->clear_categorical();
  *other_kind.mutable_features(2)->mutable_numeric() = base.features(0).numeric();
  EXPECT_NE(message(other_kind).find("feature 'city' has numeric statistics in one state"), std::string::npos);
  ReportOptions bad;
  bad.drift_threshold = -1;
  EXPECT_NE(message(base, bad).find("drift threshold"), std::string::npos);
}

}  // namespace
}  // namespace kiln::transform
