#pragma once
// Analyzes CSV text with a FeatureSpec for real (a temporary file, one process).
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/communicator.h"
#include "transform/dataset_analysis.h"

namespace kiln::transform::testing {

inline FeatureSpec parse_spec(const std::string& text) {
  FeatureSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  return spec;
}

inline TransformState analyze_csv(const FeatureSpec& spec, const std::string& csv) {
  // A file per process and call: ctest runs a file's tests as concurrent processes.
  static int calls = 0;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("kiln_analyze_text." + std::to_string(::getpid()) + "." + std::to_string(calls++) + ".csv"))
                               .string();
  std::ofstream(path) << csv;
  LocalCommunicator local;
  TransformState state;
  try {
    state = analyze_dataset(spec, AnalysisOptions{{path}, 1, false}, local);
  } catch (...) {
    std::filesystem::remove(path);
    throw;
  }
  std::filesystem::remove(path);
  return state;
}

}  // namespace kiln::transform::testing
