#pragma once
// Trial command templates: "python train.py --lr {learning_rate} --out {trial_dir}". A
// placeholder is {identifier}; {{ and }} are literal braces. Every placeholder must be a
// parameter or a built-in, which the study spec checks before the first trial runs.
#include <map>
#include <set>
#include <string>
#include <vector>

namespace kiln::tuning {

// The placeholders the driver always provides.
const std::vector<std::string>& builtin_placeholders();

// The command kiln tune runs when the spec gives none.
std::string default_command_template();

// The identifiers named in `tmpl`, in order of appearance; kiln::Error (prefixed by `where`) on
// malformed braces.
std::vector<std::string> template_placeholders(const std::string& tmpl, const std::string& where);

// Replaces each placeholder by values.at(name) (already shell-quoted where needed).
std::string expand_template(const std::string& tmpl, const std::map<std::string, std::string>& values);

// 'it'\''s' — a POSIX shell single-quoted word.
std::string shell_quote(const std::string& s);

}  // namespace kiln::tuning
