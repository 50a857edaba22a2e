#include "tuning/command_template.h"

#include <cctype>

#include "core/error.h"

namespace kiln::tuning {

const std::vector<std::string>& builtin_placeholders() {
  static const std::vector<std::string> names = {"kiln",     "train_config", "set_args",
                                                 "trial_id", "trial_dir",    "study_dir"};
  return names;
}

std::string default_command_template() {
  return "{kiln} train --config {train_config} --set output_dir={trial_dir}/train {set_args}";
}

namespace {

// Walks the template once; `on_text` gets literal text, `on_name` each placeholder.
template <typename Text, typename Name>
void scan(const std::string& tmpl, const std::string& where, Text on_text, Name on_name) {
  for (size_t i = 0; i < tmpl.size(); ++i) {
    char c = tmpl[i];
    if (c == '{' && i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      on_text('{');
      ++i;
    } else if (c == '}' && i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
      on_text('}');
      ++i;
    } else if (c == '{') {
      size_t end = tmpl.find('}', i);
      if (end == std::string::npos) fail(where, ": unmatched '{' at column ", i + 1, " (write {{ for a literal brace)");
      std::string name = tmpl.substr(i + 1, end - i - 1);
      bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
      for (char n : name) ok = ok && (std::isalnum(static_cast<unsigned char>(n)) || n == '_');
      if (!ok) fail(where, ": '{", name, "}' at column ", i + 1, " is not a placeholder name (letters, digits, _)");
      on_name(name);
      i = end;
    } else if (c == '}') {
      fail(where, ": unmatched '}' at column ", i + 1, " (write }} for a literal brace)");
    } else {
      on_text(c);
    }
  }
}

}  // namespace

std::vector<std::string> template_placeholders(const std::string& tmpl, const std::string& where) {
  std::vector<std::string> names;
  scan(tmpl, where, [](char) {}, [&](const std::string& n) { names.push_back(n); });
  return names;
}

std::string expand_template(const std::string& tmpl, const std::map<std::string, std::string>& values) {
  std::string out;
  scan(tmpl, "command", [&](char c) { out += c; },
       [&](const std::string& n) {
         auto it = values.find(n);
         if (it == values.end()) fail("command: no value for placeholder {", n, "}");
         out += it->second;
       });
  return out;
}

std::string shell_quote(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s)
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_./=:+,@%").find(c) != std::string_view::npos);
  if (plain) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace kiln::tuning
