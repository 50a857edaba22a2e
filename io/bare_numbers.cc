#include "io/bare_numbers.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "proto/options.pb.h"

namespace kiln::io {

namespace pb = google::protobuf;

namespace {

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// The names (proto and JSON) of the marked fields reachable from `root`. A name that an unmarked
// field reachable from it also has is left out: the rewrite cannot tell the two apart.
std::set<std::string> marked_names(const pb::Descriptor* root) {
  std::set<std::string> marked, unmarked;
  std::vector<const pb::Descriptor*> todo{root}, seen;
  while (!todo.empty()) {
    const pb::Descriptor* d = todo.back();
    todo.pop_back();
    if (std::find(seen.begin(), seen.end(), d) != seen.end()) continue;
    seen.push_back(d);
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      const bool mark = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING && f->options().GetExtension(kiln::bare_numbers);
      (mark ? marked : unmarked).insert({f->name(), f->json_name()});
      if (f->message_type()) todo.push_back(f->message_type());
    }
  }
  std::set<std::string> out;
  std::set_difference(marked.begin(), marked.end(), unmarked.begin(), unmarked.end(), std::inserter(out, out.end()));
  return out;
}

// Walks the text once: skips strings and comments, finds the marked field names and quotes the
// bare numbers of their values.
class Rewriter {
 public:
  Rewriter(const std::string& text, bool json, std::set<std::string> names) : t_(text), json_(json), names_(std::move(names)) {}

  template <typename OnQuote>
  std::string run(OnQuote on_quote) {
    while (i_ < t_.size()) {
      const char c = t_[i_];
      if (c == '#' && !json_) {
        skip_comment();
      } else if (c == '"' || (c == '\'' && !json_)) {
        const size_t begin = i_;
        skip_string();
        // JSON names fields by strings: "parentValues".
        if (json_ && i_ - begin >= 2 && names_.count(t_.substr(begin + 1, i_ - begin - 2))) value(on_quote);
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        const size_t begin = i_;
        while (i_ < t_.size() && is_name_char(t_[i_])) ++i_;
        if (!json_ && names_.count(t_.substr(begin, i_ - begin))) value(on_quote);
      } else if (is_digit(c)) {
        while (i_ < t_.size() && (is_name_char(t_[i_]) || t_[i_] == '.')) ++i_;  // 1e5 is no name
      } else {
        ++i_;
      }
    }
    out_ += t_.substr(copied_);
    return out_;
  }

 private:
  void skip_comment() {
    while (i_ < t_.size() && t_[i_] != '\n') ++i_;
  }
  void skip_string() {
    const char quote = t_[i_++];
    while (i_ < t_.size() && t_[i_] != quote && t_[i_] != '\n') i_ += t_[i_] == '\\' ? 2 : 1;
    i_ = std::min(i_ + 1, t_.size());
  }
  void skip_space() {
    while (i_ < t_.size()) {
      if (std::isspace(static_cast<unsigned char>(t_[i_]))) ++i_;
      else if (t_[i_] == '#' && !json_) skip_comment();
      else break;
    }
  }
  // The length of the number at i_ ("2", "-1", "0.5", "1e-3"); 0 when there is none, or when
  // more follows it than a separator (2abc is left to the parser's error).
  size_t number_length() const {
    size_t j = i_;
    if (j < t_.size() && t_[j] == '-') ++j;
    size_t digits = 0;
    for (; j < t_.size() && is_digit(t_[j]); ++j) ++digits;
    if (j < t_.size() && t_[j] == '.')
      for (++j; j < t_.size() && is_digit(t_[j]); ++j) ++digits;
    if (digits == 0) return 0;
    if (j < t_.size() && (t_[j] == 'e' || t_[j] == 'E')) {
      size_t k = j + 1;
      if (k < t_.size() && (t_[k] == '+' || t_[k] == '-')) ++k;
      if (k < t_.size() && is_digit(t_[k])) {
        while (k < t_.size() && is_digit(t_[k])) ++k;
        j = k;
      }
    }
    if (j < t_.size() && (is_name_char(t_[j]) || t_[j] == '.')) return 0;
    return j - i_;
  }
  template <typename OnQuote>
  void quote_number(OnQuote& on_quote) {
    const size_t length = number_length();
    if (length == 0) return;
    out_ += t_.substr(copied_, i_ - copied_) + "\"" + t_.substr(i_, length) + "\"";
    on_quote(i_, length);
    i_ += length;
    copied_ = i_;
  }
  // After a marked name: `: 2` or `: [2, "x", 3]`.
  template <typename OnQuote>
  void value(OnQuote& on_quote) {
    skip_space();
    if (i_ >= t_.size() || t_[i_] != ':') return;
    ++i_;
    skip_space();
    if (i_ >= t_.size() || t_[i_] != '[') return quote_number(on_quote);
    ++i_;
    while (true) {
      skip_space();
      if (i_ >= t_.size() || t_[i_] == ']') return;
      if (t_[i_] == ',') {
        ++i_;
      } else if (t_[i_] == '"' || (t_[i_] == '\'' && !json_)) {
        skip_string();
      } else {
        const size_t before = i_;
        quote_number(on_quote);
        if (i_ == before) return;  // not a list of values: the parser says what it is
      }
    }
  }

  const std::string& t_;
  bool json_;
  std::set<std::string> names_;
  size_t i_ = 0, copied_ = 0;
  std::string out_;
};

}  // namespace

BareNumbers::BareNumbers(const std::string& text, const pb::Descriptor* root, bool json) {
  std::set<std::string> names = marked_names(root);
  if (names.empty()) {
    text_ = text;
    return;
  }
  int line = 0;
  size_t line_start = 0, scanned = 0;
  text_ = Rewriter(text, json, std::move(names)).run([&](size_t at, size_t length) {
    for (; scanned < at; ++scanned)
      if (text[scanned] == '\n') {
        ++line;
        line_start = scanned + 1;
      }
    quoted_.push_back({line, static_cast<int>(at - line_start), static_cast<int>(length)});
  });
}

int BareNumbers::original_column(int line, int column) const {
  int shift = 0;  // quotes added before `column` on this line
  for (const Quoted& q : quoted_) {
    if (q.line != line) continue;
    const int open = q.column + shift;  // the added opening quote, in the rewritten line
    if (column <= open) break;
    if (column <= open + q.length + 1) return q.column + std::clamp(column - open - 1, 0, q.length);
    shift += 2;
  }
  return column - shift;
}

}  // namespace kiln::io
