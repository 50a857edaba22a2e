#include "transform/html_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <unordered_set>

#include "core/error.h"
#include "io/error_budget.h"
#include "transform/distances.h"
#include "transform/number_text.h"
#include "transform/quantile_sketch.h"
#include "transform/report_charts.h"
#include "transform/sketch_histogram.h"
#include "transform/state_report.h"

namespace kiln::transform {
namespace {

constexpr const char* kDataColor = "#4c78a8";
constexpr const char* kCompareColor = "#f58518";

constexpr const char* kStyle = R"(
body { font: 14px/1.4 system-ui, sans-serif; color: #222; margin: 24px auto; max-width: 1000px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 17px; margin: 0 0 8px; }
.meta, .note { color: #555; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: -1px; margin: 0 4px 0 12px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #e4e4e4; }
th:first-child, td:first-child { text-align: left; }
section.feature { border: 1px solid #ddd; border-left: 5px solid #9ab; border-radius: 4px; padding: 12px 16px;
                  margin: 16px 0; }
section.feature.drifted { border-left-color: #d62728; }
.kind { font-weight: normal; color: #666; font-size: 13px; margin-left: 8px; }
.distance { font-weight: normal; font-size: 13px; margin-left: 8px; padding: 1px 6px; border-radius: 3px;
            background: #eef3ee; }
.distance.over { background: #d62728; color: #fff; }
td.over { color: #d62728; font-weight: bold; }
svg.chart { display: block; margin: 8px 0; }
svg text { font: 10px system-ui, sans-serif; fill: #444; }
svg text.label { font-size: 11px; fill: #222; }
svg .grid { stroke: #e4e4e4; }
svg .axis { stroke: #888; }
svg .marker { stroke: #666; stroke-dasharray: 3 3; }
svg .highlight { fill: none; stroke: #999; stroke-dasharray: 4 2; }
section.drifted svg .highlight { stroke: #d62728; stroke-dasharray: none; stroke-width: 1.5; }
.columns { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 0 24px; }
table.overview td:nth-child(2), table.overview td:nth-child(5),
table.overview th:nth-child(2), table.overview th:nth-child(5) { text-align: left; }
)";

std::string number(double v) { return number_text("%.6g", v); }

std::string percent_of(int64_t part, int64_t whole) {
  return whole > 0 ? number_text("%.2f%%", 100.0 * static_cast<double>(part) / static_cast<double>(whole)) : "\u2013";
}

std::string share_text(double share) { return number_text("%.2f%%", 100 * share); }

// One feature (or the label) of the report: its statistics in the data and, when compared, in the
// other data.
struct Entry {
  const FeatureState* a = nullptr;
  const FeatureState* b = nullptr;      // null without a comparison
  const FeatureColumn* spec = nullptr;  // null for the label
  std::string kind;
  std::optional<FeatureDistance> distance;
};

bool over(const Entry& e, double threshold) { return e.distance && e.distance->value > threshold; }

// Which data sets a table or chart shows: the data's, then the comparison's when there is one.
struct Columns {
  const ReportOptions& options;
  bool compared;
  std::string header() const {
    std::string h = "<tr><th></th><th>" + escape_html(options.data_name) + "</th>";
    if (compared) h += "<th>" + escape_html(options.compare_name) + "</th>";
    return h + "</tr>\n";
  }
};

std::string row(const std::string& name, const std::string& a, const std::optional<std::string>& b) {
  std::string r = "<tr><td>" + name + "</td><td>" + a + "</td>";
  if (b) r += "<td>" + *b + "</td>";
  return r + "</tr>\n";
}

std::string numeric_section(const Entry& e, const Columns& columns) {
  const NumericStats& a = e.a->numeric();
  const NumericStats* b = e.b ? &e.b->numeric() : nullptr;
  auto cells = [&](auto get) { return std::pair{get(a), b ? std::optional<std::string>(get(*b)) : std::nullopt}; };
  auto stat = [&](const char* name, auto value) {
    auto [x, y] =
        cells([&](const NumericStats& s) { return s.count() > 0 ? number(value(s)) : std::string("\u2013"); });
    return row(name, x, y);
  };
  std::string out = "<div class=\"columns\">\n<table class=\"stats\">\n" + columns.header();
  auto [count_a, count_b] = cells([](const NumericStats& s) { return std::to_string(s.count()); });
  out += row("count", count_a, count_b);
  auto [missing_a, missing_b] = cells([](const NumericStats& s) {
    return std::to_string(s.missing()) + " (" + percent_of(s.missing(), s.count() + s.missing()) + ")";
  });
  out += row("missing", missing_a, missing_b);
  out += stat("mean", [](const NumericStats& s) { return s.mean(); });
  out += stat("std dev", [](const NumericStats& s) { return s.stddev(); });
  out += stat("min", [](const NumericStats& s) { return s.min(); });
  out += stat("median", [](const NumericStats& s) { return s.median(); });
  out += stat("max", [](const NumericStats& s) { return s.max(); });
  out += "</table>\n";

  // Common bins over both ranges, each side's counts as shares of its own values.
  double lo = INFINITY, hi = -INFINITY;
  for (const NumericStats* s : {&a, b})
    if (s && s->count() > 0) {
      lo = std::min(lo, s->min());
      hi = std::max(hi, s->max());
    }
  if (!(lo <= hi)) return out + "</div>\n<p class=\"note\">No values to draw.</p>\n";
  const int bins = lo == hi ? 1 : columns.options.histogram_bins;
  auto series = [&](const NumericStats& s, const std::string& name, const char* color) {
    ChartSeries c{name, color, std::vector<double>(static_cast<size_t>(bins), 0.0)};
    if (s.count() == 0) return c;
    c.shares = sketch_histogram(QuantileSketch::from_proto(s.sketch()), lo, hi, bins);
    for (double& x : c.shares) x /= static_cast<double>(s.count());
    return c;
  };
  std::vector<ChartSeries> chart{series(a, columns.options.data_name, kDataColor)};
  if (b) chart.push_back(series(*b, columns.options.compare_name, kCompareColor));
  const std::vector<double> boundaries(e.a->boundaries().begin(), e.a->boundaries().end());
  out += histogram_svg(lo, hi, chart, boundaries) + "</div>\n";
  if (!boundaries.empty()) {
    out += "<p class=\"note\">" + std::to_string(boundaries.size() + 1) + " buckets, boundaries (dashed):";
    for (double x : boundaries) out += " " + number(x);
    out += "</p>\n";
  }
  return out;
}

std::string categorical_section(const Entry& e, const Columns& columns) {
  const ReportOptions& o = columns.options;
  const CategoricalStats& a = e.a->categorical();
  const CategoricalStats* b = e.b ? &e.b->categorical() : nullptr;
  const bool vocabulary = e.spec && e.spec->has_categorical() && e.spec->categorical().has_vocabulary();
  const bool hashed = e.spec && e.spec->has_categorical() && e.spec->categorical().has_hash();
  const CategoryShares shares = category_shares(a, b ? *b : a);
  const size_t kept = shares.baseline.size() - 1;  // the last share is every other value's

  std::string out = "<div class=\"columns\">\n<table class=\"stats\">\n" + columns.header();
  out += row("values", std::to_string(a.count()), b ? std::optional(std::to_string(b->count())) : std::nullopt);
  out += row(
      "missing", std::to_string(a.missing()) + " (" + percent_of(a.missing(), a.count() + a.missing()) + ")",
      b ? std::optional(std::to_string(b->missing()) + " (" + percent_of(b->missing(), b->count() + b->missing()) + ")")
        : std::nullopt);
  out += row("distinct", std::to_string(a.distinct()), b ? std::optional(std::to_string(b->distinct())) : std::nullopt);
  if (vocabulary) {
    out += row("vocabulary", std::to_string(a.vocabulary_size()), b ? std::optional(std::string("")) : std::nullopt);
    out += row("out of vocabulary (OOV)", share_text(shares.baseline.back()),
               b ? std::optional(share_text(shares.other.back())) : std::nullopt);
  } else if (hashed) {
    out += row("hash buckets", std::to_string(e.a->id_space()), b ? std::optional(std::string("")) : std::nullopt);
  }
  out += "</table>\n";

  // Rows: the most frequent kept values; the value where the two sides differ most when it is not
  // among them; the remaining kept values together; every value outside them.
  std::optional<size_t> widest;
  if (b && e.distance) {
    double best = -1;
    for (size_t k = 0; k < shares.baseline.size(); ++k)
      if (std::fabs(shares.baseline[k] - shares.other[k]) > best) {
        best = std::fabs(shares.baseline[k] - shares.other[k]);
        widest = k;
      }
  }
  std::vector<size_t> shown;
  for (size_t k = 0; k < std::min(kept, static_cast<size_t>(o.top_values)); ++k) shown.push_back(k);
  if (widest && *widest < kept && *widest >= shown.size()) shown.push_back(*widest);
  std::vector<std::string> labels;
  ChartSeries sa{o.data_name, kDataColor, {}}, sb{o.compare_name, kCompareColor, {}};
  int highlight = -1;
  double rest_a = 0, rest_b = 0;
  std::unordered_set<size_t> is_shown(shown.begin(), shown.end());
  for (size_t k = 0; k < kept; ++k)
    if (!is_shown.count(k)) {
      rest_a += shares.baseline[k];
      rest_b += shares.other[k];
    }
  for (size_t k : shown) {
    if (widest == k) highlight = static_cast<int>(labels.size());
    labels.push_back(a.vocabulary(static_cast<int>(k)));
    sa.shares.push_back(shares.baseline[k]);
    sb.shares.push_back(shares.other[k]);
  }
  int aggregate = -1;
  if (kept > shown.size()) {
    aggregate = static_cast<int>(labels.size());
    labels.push_back("(" + std::to_string(kept - shown.size()) + " more " + (vocabulary ? "vocabulary " : "") +
                     "values)");
    sa.shares.push_back(rest_a);
    sb.shares.push_back(rest_b);
  }
  if (vocabulary || shares.baseline.back() > 0 || shares.other.back() > 0) {
    if (widest == kept) highlight = static_cast<int>(labels.size());
    labels.push_back(vocabulary ? "OOV (outside the vocabulary)" : "(other values)");
    sa.shares.push_back(shares.baseline.back());
    sb.shares.push_back(shares.other.back());
  }
  std::vector<ChartSeries> chart{sa};
  if (b) chart.push_back(sb);
  out += labels.empty() ? "</div>\n<p class=\"note\">No values to draw.</p>\n"
                        : category_bars_svg(labels, chart, highlight, aggregate) + "</div>\n";

  if (b && b->count() > 0) {  // what the other data brings that the data's vocabulary lacks
    std::unordered_set<std::string> known(a.vocabulary().begin(), a.vocabulary().end());
    std::string fresh;
    int listed = 0;
    for (int k = 0; k < b->vocabulary_size() && listed < 5; ++k)
      if (!known.count(b->vocabulary(k))) {
        fresh += std::string(listed++ ? ", " : " ") + "'" + escape_html(shorten(b->vocabulary(k), 40)) + "' " +
                 share_text(static_cast<double>(b->frequencies(k)) / static_cast<double>(b->count()));
      }
    if (!fresh.empty())
      out += "<p class=\"note\">Most frequent " + escape_html(o.compare_name) + " values outside " +
             escape_html(o.data_name) + "'s " + (hashed ? "top values" : "vocabulary") + ":" + fresh + "</p>\n";
  }
  if (hashed)
    out += "<p class=\"note\">Hashed: every value has a bucket (no OOV); the state keeps the counts of the " +
           std::to_string(a.vocabulary_size()) + " most frequent values, the rest are other values.</p>\n";
  return out;
}

std::string section(const Entry& e, size_t index, const Columns& columns) {
  const double threshold = columns.options.drift_threshold;
  const std::string name = e.a->name();
  std::string out = "<section class=\"feature" + std::string(over(e, threshold) ? " drifted" : "") +
                    "\" id=\"feature-" + std::to_string(index) + "\" data-feature=\"" + escape_html(name) +
                    "\" data-kind=\"" + e.kind + "\"";
  if (e.distance) out += " data-distance=\"" + number_text("%.6f", e.distance->value) + "\"";
  out += ">\n<h2>" + escape_html(name) + "<span class=\"kind\">" + e.kind + "</span>";
  if (e.distance)
    out += std::string("<span class=\"distance") + (over(e, threshold) ? " over" : "") + "\" title=\"" +
           (e.distance->measure == "JS" ? "Jensen-Shannon divergence" : "L-infinity distance") + "\">" +
           e.distance->measure + " " + number_text("%.4f", e.distance->value) +
           (over(e, threshold) ? " &gt; " + number_text("%g", threshold) : "") + "</span>";
  out += "</h2>\n";
  if (e.a->has_numeric()) {
    out += numeric_section(e, columns);
  } else if (e.a->has_categorical()) {
    out += categorical_section(e, columns);
  } else if (e.spec && e.spec->has_crossed()) {
    std::string cols;
    for (const std::string& c : e.spec->crossed().columns()) cols += (cols.empty() ? "" : " \u00d7 ") + escape_html(c);
    out += "<p class=\"note\">A cross of " + cols + ", hashed into " +
           std::to_string(e.spec->crossed().hash_buckets()) +
           " buckets: analysis keeps no statistics of a cross; see its columns.</p>\n";
  }
  return out + "</section>\n";
}

std::string overview(const std::vector<Entry>& entries, const Columns& columns) {
  const ReportOptions& o = columns.options;
  std::string out = "<table class=\"overview\">\n<tr><th>feature</th><th>kind</th><th>count</th><th>missing</th>";
  out += "<th>summary (" + escape_html(o.data_name) + ")</th>";
  if (columns.compared) out += "<th>distance</th>";
  out += "</tr>\n";
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    int64_t count = 0, missing = 0;
    const bool stats = e.a->has_numeric() || e.a->has_categorical();
    std::string summary;
    if (e.a->has_numeric()) {
      const NumericStats& n = e.a->numeric();
      count = n.count();
      missing = n.missing();
      if (count > 0)
        summary = "mean " + number(n.mean()) + ", std " + number(n.stddev()) + ", [" + number(n.min()) + ", " +
                  number(n.max()) + "]";
    } else if (e.a->has_categorical()) {
      const CategoricalStats& c = e.a->categorical();
      count = c.count();
      missing = c.missing();
      summary = std::to_string(c.distinct()) + " distinct";
      if (e.spec && e.spec->has_categorical() && e.spec->categorical().has_vocabulary())
        summary += ", OOV " + percent_of(c.oov_count(), c.count());
    }
    out += "<tr><td><a href=\"#feature-" + std::to_string(i) + "\">" + escape_html(e.a->name()) + "</a></td><td>" +
           e.kind + "</td><td>" + (stats ? std::to_string(count) : "\u2013") + "</td><td>" +
           percent_of(missing, count + missing) + "</td><td>" + summary + "</td>";
    if (columns.compared)
      out += e.distance ? std::string("<td") + (over(e, o.drift_threshold) ? " class=\"over\"" : "") + ">" +
                              e.distance->measure + " " + number_text("%.4f", e.distance->value) + "</td>"
                        : "<td>\u2013</td>";
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

std::string describe_data(const TransformState& s, const std::string& name, const char* color) {
  const std::map<std::string, int64_t> left_out(s.rows_left_out().begin(), s.rows_left_out().end());
  std::string out = "<p class=\"meta\"><span class=\"swatch\" style=\"background:" + std::string(color) +
                    "\"></span><b>" + escape_html(name) + "</b>: " + std::to_string(s.rows()) + " rows, " +
                    escape_html(io::describe_left_out(left_out)) + ", " + std::to_string(s.files_size()) + " file" +
                    (s.files_size() == 1 ? "" : "s");
  if (s.files_size() > 0) {
    out += " (" + escape_html(shorten(s.files(0), 80));
    if (s.files_size() > 1) out += ", \u2026";
    out += ")";
  }
  return out + "</p>\n";
}

}  // namespace

std::string html_report(const TransformState& data, const TransformState* compare, const ReportOptions& options) {
  if (!(options.drift_threshold >= 0 && std::isfinite(options.drift_threshold)))
    fail("report: the drift threshold ", options.drift_threshold, " must be a finite number >= 0");
  if (options.top_values < 1 || options.histogram_bins < 1) fail("report: top values and histogram bins must be >= 1");
  if (data.features_size() != data.spec().features_size())
    fail("transform state has ", data.features_size(), " features but its spec has ", data.spec().features_size());
  std::vector<FeaturePair> pairs;
  if (compare) pairs = match_features(data, *compare);
  std::vector<Entry> entries;
  for (int i = 0; i < data.features_size(); ++i) {
    Entry e{&data.features(i), compare ? pairs[static_cast<size_t>(i)].b : nullptr, &data.spec().features(i),
            feature_kind(data.spec().features(i)), std::nullopt};
    entries.push_back(e);
  }
  if (data.has_label()) {
    const bool matched = !pairs.empty() && pairs.back().label;
    entries.push_back({&data.label(), matched ? pairs.back().b : nullptr, nullptr,
                       "label, " + LabelSpec::Type_Name(data.spec().label().type()), std::nullopt});
  }
  for (Entry& e : entries)
    if (e.b) e.distance = feature_distance(*e.a, *e.b);

  const Columns columns{options, compare != nullptr};
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>Kiln data report</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<h1>Data report</h1>\n";
  out += describe_data(data, options.data_name, kDataColor);
  if (compare) {
    out += describe_data(*compare, options.compare_name, kCompareColor);
    const auto drifted =
        std::count_if(entries.begin(), entries.end(), [&](const Entry& e) { return over(e, options.drift_threshold); });
    const auto scored =
        std::count_if(entries.begin(), entries.end(), [](const Entry& e) { return e.distance.has_value(); });
    out += "<p class=\"meta\" id=\"drift-summary\">" + std::to_string(drifted) + " of " + std::to_string(scored) +
           " features above the drift threshold " + number_text("%g", options.drift_threshold) +
           " (L-infinity distance over the shares of " + escape_html(options.data_name) +
           "'s categories for categorical features, Jensen-Shannon divergence over 100 equal-mass bins for numeric "
           "ones).</p>\n";
  }
  out += overview(entries, columns);
  for (size_t i = 0; i < entries.size(); ++i) out += section(entries[i], i, columns);
  return out + "<p class=\"meta\">Written by kiln analyze.</p>\n</body>\n</html>\n";
}

}  // namespace kiln::transform
