#pragma once
// The full pass over the training data that produces a TransformState. Every thread, file chunk
// and MPI rank accumulates its own rows; the accumulators merge exactly (integer counts and exact
// sums), so the state is bit-identical for any thread count, sharding and rank count.
#include <string>
#include <vector>

#include "core/communicator.h"
#include "proto/transform_state.pb.h"
#include "transform/raw_rows.h"

namespace kiln::transform {

struct AnalysisOptions {
  std::vector<std::string> files;  // patterns, expanded in sorted order
  int threads = 1;
  bool progress = false;           // print progress lines to stderr (rank 0)
};

// Analyzes the rows of `options.files` with `comm`: each rank reads files i with
// i % size == rank, then the accumulators are gathered and merged on every rank.
TransformState analyze_dataset(const FeatureSpec& spec, const AnalysisOptions& options, Communicator& comm);

// Analyzes rows held in memory (e.g. transform/column_rows.h; column_names[c] names column c) in
// this process and thread: the state analyze_dataset gives for the same rows in a CSV file, with
// no `files`.
TransformState analyze_rows(const FeatureSpec& spec, const RawRows& rows, const std::vector<std::string>& column_names);

}  // namespace kiln::transform
