#pragma once
// The one Transformer: maps raw rows to model inputs with the statistics recorded in a
// TransformState. Training, export, serving and offline prediction all call apply(), so the
// preprocessing a model sees can never differ between them.
//
// Model inputs: "dense", f32 [batch, dense_width] — numeric values, one-hot/indicator blocks and
// missing indicators in spec order — and one IDS input per EMBEDDING feature, named after the
// feature, as i64 ids with CSR offsets (several ids per row for multi-valued columns).
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/error_budget.h"
#include "proto/model_spec.pb.h"
#include "proto/transform_state.pb.h"
#include "transform/raw_rows.h"

namespace kiln::transform {

struct IdsInput {
  std::string name;
  Tensor ids;      // i64 [nnz]
  Tensor offsets;  // i64 [batch + 1]
  int64_t id_space = 0;
};

struct ModelInputs {
  int64_t batch = 0;
  Tensor dense;                  // f32 [batch, dense_width]
  std::vector<IdsInput> ids;     // one per EMBEDDING feature, in spec order
  Tensor label;                  // f32 [batch] (REGRESSION, BINARY) or i32 [batch] (MULTICLASS)
  std::vector<std::string> keys;       // the key column, when the spec names one
  std::vector<int64_t> source_rows;    // input row of each output row (dropped rows are absent)
};

class RowScreen;

class Transformer {
 public:
  // Binds the spec's columns to the source's column names; a column the spec needs and the
  // source lacks is a kiln::Error naming it. need_label=false for serving (no label column).
  Transformer(const TransformState& state, const std::vector<std::string>& source_columns, bool need_label);
  ~Transformer();

  // Rows that cannot be used (transform/row_screen.h: a DROP_ROW feature missing, a number that
  // is not a finite number, a missing or unparseable label; and here an unseen MULTICLASS label)
  // are left out, the malformed ones reported to `budget`. Without a budget they raise.
  ModelInputs apply(const RawRows& rows, io::ErrorBudget* budget) const;

  const TransformState& state() const { return state_; }
  int64_t dense_width() const { return state_.dense_width(); }

 private:
  struct Feature;
  struct Scratch;
  ModelInputs apply(const RawRows& rows, io::ErrorBudget* budget, Scratch& scratch) const;
  TransformState state_;
  std::vector<std::unique_ptr<Feature>> features_;
  std::unique_ptr<RowScreen> screen_;  // the rules for which rows are used
  int label_col_ = -1, key_col_ = -1;
};

// The model inputs apply() produces for a state, as ModelSpec inputs: "dense" [dense_width] and
// one IDS input per EMBEDDING feature with its id space as shape.
std::vector<InputSpec> model_inputs(const TransformState& state);

// AUTO resolved: numeric features are DENSE, the others EMBEDDING.
FeatureColumn::Output resolved_output(const FeatureColumn& f);

// Validates a FeatureSpec on its own (names, kinds, crosses referencing known features, output
// kinds): errors name the feature. Called before any data is read.
void validate_feature_spec(const FeatureSpec& spec);

}  // namespace kiln::transform
