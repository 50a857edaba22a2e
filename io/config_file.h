#pragma once
// Configs are protobuf messages in text format (.pbtxt, as TF Serving and Triton use) or JSON.
// Unknown fields and wrong types are rejected with the file, line, column and field.
#include <string>
#include <vector>

#include <google/protobuf/message.h>

namespace kiln::io {

// Parses `path` into `message` (JSON when the file ends in .json or starts with '{'). Relative
// paths in fields marked [(config_path) = true] (proto/options.proto: data files, feature spec,
// servable base path, a study's train_config) become relative to the file's directory, so a
// config works from any working directory; output_dir stays relative to the working directory
// (outputs go where the command runs). Paths given by --set are taken as typed.
void load_config(const std::string& path, google::protobuf::Message& message);
void parse_config_text(const std::string& text, const std::string& source_name, google::protobuf::Message& message);

// Applies one `path.to.field=value` override. Repeated message fields take an index
// (`model.layers[2].dense.units=64`); a repeated scalar field takes a comma-separated list that
// replaces it. Errors name the override and the field.
void apply_override(const std::string& assignment, google::protobuf::Message& message);
void apply_overrides(const std::vector<std::string>& assignments, google::protobuf::Message& message);

}  // namespace kiln::io
