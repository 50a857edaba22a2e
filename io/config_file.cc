#include "io/config_file.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/bare_numbers.h"
#include "proto/options.pb.h"

namespace kiln::io {

namespace pb = google::protobuf;

namespace {

// Text-format errors carry line:column; the field they are about is the identifier before the
// colon on that line, which we add so the message names it.
// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) == std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The candidate nearest to `name`, when it is near enough to be a likely typo ("" otherwise).
std::string nearest(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

// The text between the first pair of double quotes after `marker` in `message` ("" if none).
std::string quoted_after(const std::string& message, const std::string& marker) {
  const size_t at = message.find(marker);
  if (at == std::string::npos) return "";
  const size_t open = message.find('"', at + marker.size());
  const size_t close = open == std::string::npos ? open : message.find('"', open + 1);
  return close == std::string::npos ? "" : message.substr(open + 1, close - open - 1);
}

// The values of every enum field named `field` reachable from `root`.
void enum_values_of(const pb::Descriptor* root, const std::string& field, std::vector<const pb::Descriptor*>& seen,
                    std::vector<std::string>& out) {
  if (std::find(seen.begin(), seen.end(), root) != seen.end()) return;
  seen.push_back(root);
  for (int i = 0; i < root->field_count(); ++i) {
    const pb::FieldDescriptor* f = root->field(i);
    if (f->enum_type() && f->name() == field)
      for (int v = 0; v < f->enum_type()->value_count(); ++v) out.push_back(f->enum_type()->value(v)->name());
    if (f->message_type()) enum_values_of(f->message_type(), field, seen, out);
  }
}

// The message type at a JSON error's path ("params[0].early_stopping"; "" is `root`), or null.
const pb::Descriptor* message_at(const pb::Descriptor* root, const std::string& path) {
  const pb::Descriptor* d = root;
  std::istringstream parts(path);
  for (std::string part; d && std::getline(parts, part, '.');) {
    const pb::FieldDescriptor* f = d->FindFieldByName(part.substr(0, part.find('[')));
    d = f ? f->message_type() : nullptr;
  }
  return d;
}

// A "did you mean" for protobuf's unknown-field and unknown-enum-value errors (text format and
// JSON); how to quote a string value.
std::string suggestion(const std::string& message, const pb::Descriptor* root) {
  std::vector<std::string> candidates;
  std::string name;
  const std::string json_unknown = ": Cannot find field.";
  if (message.ends_with(json_unknown)) {
    // JSON: "(params[0]) minValu: Cannot find field.", the path left out at the top level.
    std::string path, rest = message.substr(0, message.size() - json_unknown.size());
    if (rest.rfind('(', 0) == 0 && rest.find(") ") != std::string::npos) {
      path = rest.substr(1, rest.find(") ") - 1);
      rest = rest.substr(rest.find(") ") + 2);
    }
    name = rest;
    if (const pb::Descriptor* type = message_at(root, path))
      for (int i = 0; i < type->field_count(); ++i) candidates.insert(candidates.end(), {type->field(i)->json_name(), type->field(i)->name()});
  } else if (message.find("invalid value") != std::string::npos && message.find("type.googleapis.com/") != std::string::npos) {
    // JSON: (goal): invalid value "MINIMISE" for type type.googleapis.com/kiln.StudySpec.Goal
    name = quoted_after(message, "invalid value");
    const std::string type_name = message.substr(message.find("type.googleapis.com/") + 20);
    if (const pb::EnumDescriptor* e = pb::DescriptorPool::generated_pool()->FindEnumTypeByName(type_name))
      for (int v = 0; v < e->value_count(); ++v) candidates.push_back(e->value(v)->name());
  } else if (message.find("has no field named") != std::string::npos) {
    name = quoted_after(message, "has no field named");
    const pb::Descriptor* type = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(quoted_after(message, "Message type"));
    if (type)
      for (int i = 0; i < type->field_count(); ++i) candidates.push_back(type->field(i)->name());
  } else if (message.find("Unknown enumeration value of") != std::string::npos) {
    name = quoted_after(message, "Unknown enumeration value of");
    std::vector<const pb::Descriptor*> seen;
    enum_values_of(root, quoted_after(message, "for field"), seen, candidates);
  }
  // A number where a string field is expected (parameter_name: 2): say how to write it.
  const std::string got = "Expected string, got: ";
  if (message.rfind(got, 0) == 0) return str_cat(" (string values are quoted: \"", message.substr(got.size()), "\")");
  const std::string best = name.empty() ? "" : nearest(name, candidates);
  return best.empty() ? "" : str_cat(" (did you mean \"", best, "\"?)");
}

class ErrorCollector final : public pb::io::ErrorCollector {
 public:
  // `text` as the user wrote it; `rewritten`, when given, is what the parser reads.
  ErrorCollector(std::string source, const std::string& text, const pb::Descriptor* root,
                 const BareNumbers* rewritten = nullptr)
      : source_(std::move(source)), root_(root), rewritten_(rewritten) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
  }
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (!first_.empty()) return;
    if (rewritten_) column = rewritten_->original_column(line, column);
    first_ = str_cat(source_, ":", line + 1, ":", column + 1, ": ", message);
    // An unknown field's error names it; the field before it on the line is another one.
    std::string field = message.find("has no field named") == std::string::npos ? field_before(line, column) : "";
    if (!field.empty() && message.find(field) == std::string::npos) first_ += str_cat(" (field '", field, "')");
    first_ += suggestion(message, root_);
  }
  const std::string& first() const { return first_; }

 private:
  // The field a value error is about: the identifier before the last colon on the line that
  // precedes the error's column (several fields can share a line).
  std::string field_before(int line, int column) const {
    if (line < 0 || line >= static_cast<int>(lines_.size()) || column <= 0) return "";
    const std::string& l = lines_[line];
    const size_t colon = l.rfind(':', static_cast<size_t>(column) - 1);
    if (colon == std::string::npos) return "";
    size_t end = colon;
    while (end > 0 && std::isspace(static_cast<unsigned char>(l[end - 1]))) --end;
    size_t begin = end;
    while (begin > 0 && (std::isalnum(static_cast<unsigned char>(l[begin - 1])) || l[begin - 1] == '_')) --begin;
    return l.substr(begin, end - begin);
  }
  std::string source_;
  const pb::Descriptor* root_;
  const BareNumbers* rewritten_;
  std::vector<std::string> lines_;
  std::string first_;
};

bool looks_like_json(const std::string& path, const std::string& text) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) return true;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    return c == '{';
  }
  return false;
}

}  // namespace

void parse_config_text(const std::string& text, const std::string& source_name, pb::Message& message) {
  const bool json = looks_like_json(source_name, text);
  const BareNumbers parsed(text, message.GetDescriptor(), json);
  if (json) {
    pb::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = false;
    auto status = pb::util::JsonStringToMessage(parsed.text(), &message, opts);
    if (!status.ok()) {
      const std::string error(status.message());
      fail(source_name, ": ", error, suggestion(error, message.GetDescriptor()));
    }
    return;
  }
  ErrorCollector errors(source_name, text, message.GetDescriptor(), &parsed);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(parsed.text(), &message)) fail(errors.first().empty() ? source_name + ": parse error" : errors.first());
}

namespace {

// Makes the relative config_path fields of `message` relative to `base_dir`.
void resolve_config_paths(const std::string& base_dir, pb::Message& message) {
  if (base_dir.empty() || base_dir == ".") return;
  auto resolve = [&](const std::string& p) {
    return p.empty() || std::filesystem::path(p).is_absolute() ? p : (std::filesystem::path(base_dir) / p).string();
  };
  const pb::Reflection* r = message.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(message, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated())
        for (int i = 0; i < r->FieldSize(message, f); ++i) resolve_config_paths(base_dir, *r->MutableRepeatedMessage(&message, f, i));
      else
        resolve_config_paths(base_dir, *r->MutableMessage(&message, f));
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING && f->options().GetExtension(kiln::config_path)) {
      if (f->is_repeated())
        for (int i = 0; i < r->FieldSize(message, f); ++i)
          r->SetRepeatedString(&message, f, i, resolve(r->GetRepeatedString(message, f, i)));
      else
        r->SetString(&message, f, resolve(r->GetString(message, f)));
    }
  }
}

}  // namespace

void load_config(const std::string& path, pb::Message& message) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error&) {
    fail("config file not found or unreadable: ", path);
  }
  parse_config_text(text, path, message);
  resolve_config_paths(std::filesystem::path(path).parent_path().string(), message);
}

namespace {

std::string quote_if_string(const pb::FieldDescriptor* f, const std::string& value) {
  if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) return value;
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
    return value;
  return "\"" + pb::CEscape(value) + "\"";
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// Parses one field value without protobuf logging to stderr (our error says it all).
bool parse_field_value(const std::string& text, const pb::FieldDescriptor* f, pb::Message* msg) {
  ErrorCollector quiet("", text, msg->GetDescriptor());
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&quiet);
  return parser.ParseFieldValueFromString(quote_if_string(f, text), f, msg);
}

}  // namespace

void apply_override(const std::string& assignment, pb::Message& root) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) fail("--set ", assignment, ": expected path.to.field=value");
  std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  std::string where = "--set " + path;
  pb::Message* msg = &root;
  std::vector<std::string> parts = split(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string name = parts[i];
    int index = -1;
    size_t bracket = name.find('[');
    if (bracket != std::string::npos) {
      if (name.back() != ']') fail(where, ": malformed index in '", name, "'");
      try {
        index = std::stoi(name.substr(bracket + 1, name.size() - bracket - 2));
      } catch (const std::exception&) {
        fail(where, ": malformed index in '", name, "'");
      }
      name = name.substr(0, bracket);
    }
    const pb::Descriptor* d = msg->GetDescriptor();
    const pb::FieldDescriptor* f = d->FindFieldByName(name);
    if (!f) {
      std::vector<std::string> fields;
      for (int k = 0; k < d->field_count(); ++k) fields.push_back(d->field(k)->name());
      const std::string best = nearest(name, fields);
      fail(where, ": ", d->full_name(), " has no field '", name, "'", best.empty() ? "" : str_cat(" (did you mean '", best, "'?)"));
    }
    const pb::Reflection* r = msg->GetReflection();
    bool last = i + 1 == parts.size();
    if (!last) {
      if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) fail(where, ": '", name, "' is not a message");
      if (f->is_repeated()) {
        if (index < 0) fail(where, ": '", name, "' is repeated; give an index, e.g. ", name, "[0]");
        int size = r->FieldSize(*msg, f);
        if (index > size) fail(where, ": index ", index, " is past the end of '", name, "' (size ", size, ")");
        msg = index == size ? r->AddMessage(msg, f) : r->MutableRepeatedMessage(msg, f, index);
      } else {
        msg = r->MutableMessage(msg, f);
      }
      continue;
    }
    if (index >= 0) fail(where, ": an index is only allowed on repeated message fields along the path");
    if (f->is_repeated()) {
      r->ClearField(msg, f);
      if (!value.empty())
        for (const std::string& item : split(value, ','))
          if (!parse_field_value(item, f, msg))
            fail(where, ": '", item, "' is not a valid ", f->type_name(), " for ", f->full_name());
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      pb::Message* sub = r->MutableMessage(msg, f);
      parse_config_text(value, where, *sub);
    } else if (!parse_field_value(value, f, msg)) {
      std::string best;
      if (f->enum_type()) {
        std::vector<std::string> values;
        for (int k = 0; k < f->enum_type()->value_count(); ++k) values.push_back(f->enum_type()->value(k)->name());
        best = nearest(value, values);
      }
      fail(where, ": '", value, "' is not a valid ", f->type_name(), " for ", f->full_name(),
           best.empty() ? "" : str_cat(" (did you mean '", best, "'?)"));
    }
  }
}

void apply_overrides(const std::vector<std::string>& assignments, pb::Message& message) {
  for (const std::string& a : assignments) apply_override(a, message);
}

}  // namespace kiln::io
