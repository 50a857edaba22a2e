#include "transform/report_charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "transform/number_text.h"

namespace kiln::transform {
namespace {

// A coordinate: one decimal is below a pixel and keeps the markup short.
std::string px(double v) { return number_text("%.1f", v); }

std::string percent(double share) {
  const double p = 100 * share;
  if (p == 0) return "0%";
  return number_text(p >= 10 ? "%.1f%%" : p >= 0.1 ? "%.2f%%" : "%.2g%%", p);
}

// The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at or above x
// (> 0): the axis maximum, close above the highest bar.
double round_up(double x) {
  const double power = std::pow(10.0, std::floor(std::log10(x)));
  for (double step : {1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0})
    if (step * power >= x * (1 - 1e-12)) return step * power;
  return 10 * power;
}

// The largest share of any row but `skip`.
double largest_share(const std::vector<ChartSeries>& series, int skip = -1) {
  double top = 0;
  for (const ChartSeries& s : series)
    for (size_t k = 0; k < s.shares.size(); ++k)
      if (static_cast<int>(k) != skip) top = std::max(top, s.shares[k]);
  return top;
}

size_t common_size(const std::vector<ChartSeries>& series) {
  KILN_CHECK(!series.empty(), "a chart needs a series");
  for (const ChartSeries& s : series) KILN_CHECK(s.shares.size() == series[0].shares.size(), "series differ in size");
  return series[0].shares.size();
}

std::string svg_open(const char* kind, double width, double height, const std::string& label) {
  return "<svg class=\"chart " + std::string(kind) + "\" viewBox=\"0 0 " + px(width) + " " + px(height) +
         "\" width=\"" + px(width) + "\" height=\"" + px(height) + "\" role=\"img\" aria-label=\"" +
         escape_html(label) + "\">\n";
}

std::string text(double x, double y, const char* anchor, const std::string& content, const char* css = "tick") {
  return "<text class=\"" + std::string(css) + "\" x=\"" + px(x) + "\" y=\"" + px(y) + "\" text-anchor=\"" + anchor +
         "\">" + content + "</text>\n";
}

}  // namespace

std::string escape_html(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string shorten(std::string_view text, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;  // a continuation byte
    if (chars++ == max_chars) return std::string(text.substr(0, i)) + "\u2026";
  }
  return std::string(text);
}

std::string histogram_svg(double lo, double hi, const std::vector<ChartSeries>& series,
                          const std::vector<double>& markers) {
  constexpr double kWidth = 640, kHeight = 200, kLeft = 56, kRight = 16, kTop = 12, kBottom = 34;
  constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;
  const size_t bins = common_size(series);
  KILN_CHECK(bins > 0, "a histogram needs bins");
  const double y_max = round_up(std::max(largest_share(series), 1e-9));
  const double bin_w = (hi - lo) / static_cast<double>(bins);
  const double group = kPlotW / static_cast<double>(bins);
  const double bar = group * 0.8 / static_cast<double>(series.size());
  std::string out = svg_open("histogram", kWidth, kHeight, "histogram");
  for (double f : {0.0, 0.5, 1.0}) {  // horizontal grid with share labels
    const double y = kTop + kPlotH * (1 - f);
    out += "<line class=\"grid\" x1=\"" + px(kLeft) + "\" x2=\"" + px(kWidth - kRight) + "\" y1=\"" + px(y) +
           "\" y2=\"" + px(y) + "\"/>\n";
    out += text(kLeft - 6, y + 4, "end", percent(f * y_max));
  }
  for (size_t b = 0; b < bins; ++b) {
    const double from = lo + bin_w * static_cast<double>(b), to = b + 1 == bins ? hi : from + bin_w;
    const std::string range = lo == hi ? "= " + number_text("%.6g", lo)
                                       : "[" + number_text("%.6g", from) + ", " + number_text("%.6g", to) + ")";
    for (size_t s = 0; s < series.size(); ++s) {
      const double share = series[s].shares[b];
      if (!(share > 0)) continue;
      const double h = std::max(share / y_max * kPlotH, 0.5);
      const double x = kLeft + group * static_cast<double>(b) + group * 0.1 + bar * static_cast<double>(s);
      out += "<rect x=\"" + px(x) + "\" y=\"" + px(kTop + kPlotH - h) + "\" width=\"" + px(bar) + "\" height=\"" +
             px(h) + "\" fill=\"" + series[s].color + "\"><title>" + escape_html(series[s].name) + " " + range + ": " +
             percent(share) + "</title></rect>\n";
    }
  }
  for (double m : markers) {
    if (!(m > lo && m < hi)) continue;
    const double x = kLeft + (m - lo) / (hi - lo) * kPlotW;
    out += "<line class=\"marker\" x1=\"" + px(x) + "\" x2=\"" + px(x) + "\" y1=\"" + px(kTop) + "\" y2=\"" +
           px(kTop + kPlotH) + "\"><title>bucket boundary " + number_text("%.6g", m) + "</title></line>\n";
  }
  const double axis_y = kTop + kPlotH;
  out += "<line class=\"axis\" x1=\"" + px(kLeft) + "\" x2=\"" + px(kWidth - kRight) + "\" y1=\"" + px(axis_y) +
         "\" y2=\"" + px(axis_y) + "\"/>\n";
  if (lo == hi) {
    out += text(kLeft + kPlotW / 2, axis_y + 16, "middle", number_text("%.6g", lo));
  } else {
    for (double f : {0.0, 0.25, 0.5, 0.75, 1.0}) {
      const char* anchor = f == 0 ? "start" : f == 1 ? "end" : "middle";
      out += text(kLeft + kPlotW * f, axis_y + 16, anchor, number_text("%.4g", lo + (hi - lo) * f));
    }
  }
  return out + "</svg>\n";
}

std::string category_bars_svg(const std::vector<std::string>& labels, const std::vector<ChartSeries>& series,
                              int highlight, int aggregate) {
  constexpr double kLabelW = 210, kBarW = 350, kValueW = 120, kTop = 6, kBottom = 6;
  const size_t rows = common_size(series);
  KILN_CHECK(labels.size() == rows, "one label per row");
  const double row_h = series.size() == 1 ? 20 : 30, bar_h = series.size() == 1 ? 14 : 12;
  const double width = kLabelW + kBarW + kValueW, height = kTop + row_h * static_cast<double>(rows) + kBottom;
  const double top = std::max(largest_share(series, aggregate), 1e-9);
  std::string out = svg_open("categories", width, height, "category shares");
  for (size_t r = 0; r < rows; ++r) {
    const double y0 = kTop + row_h * static_cast<double>(r);
    if (static_cast<int>(r) == highlight)
      out += "<rect class=\"highlight\" x=\"1\" y=\"" + px(y0) + "\" width=\"" + px(width - 2) + "\" height=\"" +
             px(row_h) + "\"><title>largest difference</title></rect>\n";
    out += "<text class=\"label\" x=\"" + px(kLabelW - 6) + "\" y=\"" + px(y0 + row_h / 2 + 4) +
           "\" text-anchor=\"end\"><title>" + escape_html(labels[r]) + "</title>" +
           escape_html(shorten(labels[r], 30)) + "</text>\n";
    for (size_t s = 0; s < series.size(); ++s) {
      const double share = series[s].shares[r];
      const double w = share > 0 ? std::clamp(share / top * kBarW, 0.5, kBarW) : 0;
      const double y = y0 + (row_h - bar_h * static_cast<double>(series.size())) / 2 + bar_h * static_cast<double>(s);
      out += "<rect x=\"" + px(kLabelW) + "\" y=\"" + px(y) + "\" width=\"" + px(w) + "\" height=\"" + px(bar_h - 1) +
             "\" fill=\"" + series[s].color + (static_cast<int>(r) == aggregate ? "\" fill-opacity=\"0.45" : "") +
             "\"><title>" + escape_html(series[s].name) + ": " + percent(share) + "</title></rect>\n";
      out += text(kLabelW + w + 4, y + bar_h - 3, "start", percent(share), "value");
    }
  }
  return out + "</svg>\n";
}

}  // namespace kiln::transform
