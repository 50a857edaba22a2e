#pragma once
// The data report's charts (transform/html_report.h) as inline SVG markup: no script and no
// external resource, so a page of them renders anywhere, offline, with JavaScript off. Every bar
// carries a <title> (the browser's tooltip) with its exact share.
#include <string>
#include <string_view>
#include <vector>

namespace kiln::transform {

// Text for HTML and SVG content and attribute values: & < > " ' escaped; control characters
// (which HTML forbids) shown as \xNN.
std::string escape_html(std::string_view text);

// At most `max_chars` code points of UTF-8 text, with "…" in place of the rest.
std::string shorten(std::string_view text, size_t max_chars);

// One data set's bars: shares in [0, 1] (one per bin or category), drawn in `color`.
struct ChartSeries {
  std::string name;
  std::string color;
  std::vector<double> shares;
};

// Vertical bars over equal-width bins of [lo, hi] (one bin when lo == hi), the series side by side
// in each bin; dashed vertical lines at `markers` (bucket boundaries) inside the range.
std::string histogram_svg(double lo, double hi, const std::vector<ChartSeries>& series,
                          const std::vector<double>& markers = {});

// Horizontal bars, one row per label, the series side by side in each row; row `highlight` (-1:
// none) is outlined (the category where two distributions differ most). Row `aggregate` (-1: none)
// sums many categories: it is left out of the bar scale and its bars, paler, stop at full width,
// so it cannot flatten the bars of single categories.
std::string category_bars_svg(const std::vector<std::string>& labels, const std::vector<ChartSeries>& series,
                              int highlight = -1, int aggregate = -1);

}  // namespace kiln::transform
