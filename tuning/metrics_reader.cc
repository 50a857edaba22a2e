#include "tuning/metrics_reader.h"

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "tuning/json_object.h"

namespace kiln::tuning {

std::vector<MetricPoint> MetricsReader::poll(bool final) {
  fresh_.clear();
  if (!error_.empty()) return {};
  std::ifstream in(path_, std::ios::binary);
  if (in) {
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    offset_ += chunk.size();
    pending_ += chunk;
  }
  size_t start = 0;
  for (size_t nl; error_.empty() && (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1)
    parse_line(pending_.substr(start, nl - start));
  pending_.erase(0, start);
  if (final && error_.empty() && !pending_.empty()) {
    parse_line(pending_);
    pending_.clear();
  }
  return fresh_;
}

void MetricsReader::parse_line(const std::string& raw) {
  ++line_number_;
  std::string line = raw;
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
  if (line.find_first_not_of(" \t") == std::string::npos) return;
  std::string where = str_cat("metrics file line ", line_number_, ": ");
  std::string problem;
  auto obj = parse_flat_json_object(line, &problem);
  if (!obj) {
    error_ = where + problem + ": " + line.substr(0, 120);
    return;
  }
  int64_t step = step_ + 1;
  if (auto it = obj->find("step"); it != obj->end()) {
    const double* s = std::get_if<double>(&it->second);
    if (!s || std::nearbyint(*s) != *s || *s < 0) {
      error_ = where + "\"step\" must be a non-negative integer: " + line.substr(0, 120);
      return;
    }
    step = static_cast<int64_t>(*s);
  }
  auto it = obj->find(tag_);
  if (it == obj->end()) return;
  const double* v = std::get_if<double>(&it->second);
  if (!v || !std::isfinite(*v)) {
    error_ = where + "\"" + tag_ + "\" is not a finite number: " + line.substr(0, 120);
    return;
  }
  step_ = step;
  last_ = *v;
  fresh_.emplace_back(step, *v);
}

}  // namespace kiln::tuning
