#pragma once
// Bare numbers for string fields marked [(bare_numbers) = true] (proto/options.proto): before a
// config is parsed, `parent_values: [2, 0.5]` becomes `parent_values: ["2", "0.5"]` (JSON
// `"parentValues": [2]` likewise), the number's text kept as written, so it means what the
// quoted form means. Protobuf's parsers take a string field's value only quoted; the rewrite is
// keyed on the field's name and leaves every other field to them.
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>

namespace kiln::io {

class BareNumbers {
 public:
  // Rewrites `text` (protobuf text format, or JSON when `json`) for the marked fields reachable
  // from `root`.
  BareNumbers(const std::string& text, const google::protobuf::Descriptor* root, bool json);
  const std::string& text() const { return text_; }
  // The column in the original text of a (0-based) column of the rewritten one, so errors point
  // where the user wrote.
  int original_column(int line, int column) const;

 private:
  struct Quoted {
    int line, column, length;  // where the number is in the original text
  };
  std::string text_;
  std::vector<Quoted> quoted_;  // in text order
};

}  // namespace kiln::io
