#include "models/warm_start.h"

#include <cstring>
#include <filesystem>
#include <unordered_map>

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include "core/device_memory.h"
#include "core/error.h"
#include "io/config_file.h"
#include "models/model_weights.h"
#include "models/trainer.h"
#include "models/training_data.h"
#include "proto/checkpoint.pb.h"
#include "proto/servable.pb.h"
#include "transform/transformer.h"

namespace kiln::models {

namespace fs = std::filesystem;

namespace {

// The servable's files (runtime/servable.h names them; models/ cannot depend on runtime/).
constexpr const char* kServableManifest = "servable.pbtxt";
constexpr const char* kServableWeights = "weights.kckpt";

int feature_index(const TransformState& state, const std::string& name) {
  for (int i = 0; i < state.spec().features_size(); ++i)
    if (state.spec().features(i).name() == name) return i;
  return -1;
}

bool is_vocabulary(const FeatureColumn& f) { return f.has_categorical() && !f.categorical().has_hash(); }

// Whether feature i of `a` and feature j of `b` give every value the same id.
bool same_ids(const TransformState& a, int i, const TransformState& b, int j) {
  const FeatureColumn &fa = a.spec().features(i), &fb = b.spec().features(j);
  if (!google::protobuf::util::MessageDifferencer::Equals(fa, fb)) return false;
  if (a.features(i).id_space() != b.features(j).id_space()) return false;
  if (is_vocabulary(fa)) {
    const auto &va = a.features(i).categorical().vocabulary(), &vb = b.features(j).categorical().vocabulary();
    return va.size() == vb.size() && std::equal(va.begin(), va.end(), vb.begin());
  }
  return true;
}

}  // namespace

std::string checkpoint_state_file(const std::string& checkpoint_dir, const std::string& fingerprint) {
  return (fs::path(checkpoint_dir) / ("transform_state-" + fingerprint + ".pbtxt")).string();
}

WarmStartSource load_warm_start(const std::string& path) {
  WarmStartSource src;
  if (fs::is_directory(path) && fs::exists(fs::path(path) / kServableManifest)) {
    ServableManifest m;
    io::load_config((fs::path(path) / kServableManifest).string(), m);
    src.model = m.model();
    if (m.has_transform_state()) src.state = m.transform_state();
    src.weights = io::read_checkpoint_file((fs::path(path) / kServableWeights).string());
    src.what = str_cat("servable ", path, " (version ", m.version(), ", ", m.trained_steps(), " steps)");
    return src;
  }
  std::string file = path;
  if (fs::is_directory(path)) {
    const fs::path sub = fs::path(path) / "checkpoints";
    file = latest_checkpoint(fs::is_directory(sub) ? sub.string() : path);
    if (file.empty())
      fail("warm_start_from: no checkpoint in ", path, " (give a training output_dir, its checkpoints directory, a ",
           "checkpoint file, or an exported servable version directory)");
  } else if (!fs::is_regular_file(path)) {
    fail("warm_start_from: ", path, " does not exist");
  }
  src.weights = io::read_checkpoint_file(file);
  CheckpointMeta meta;
  if (!meta.ParseFromString(src.weights.metadata)) fail("warm_start_from: ", file, ": unreadable checkpoint metadata");
  TrainConfig config;
  if (meta.config_text().empty() || !google::protobuf::TextFormat::ParseFromString(meta.config_text(), &config))
    fail("warm_start_from: ", file, " does not record the config it was trained with (written by an older kiln): ",
         "export it (kiln export) and warm-start from the servable");
  src.model = config.model();
  if (!meta.transform_state_fingerprint().empty()) {
    const std::string state = checkpoint_state_file(fs::path(file).parent_path().string(), meta.transform_state_fingerprint());
    if (!fs::exists(state))
      fail("warm_start_from: ", file, " was trained with the transform state ", state,
           ", which is missing: it is written beside the checkpoints; copy it along with them");
    TransformState s;
    io::load_config(state, s);
    src.state = std::move(s);
  }
  if (src.state && src.model.inputs().empty())
    for (const InputSpec& in : transform::model_inputs(*src.state)) *src.model.add_inputs() = in;
  src.what = str_cat("checkpoint ", file, " (step ", meta.step(), ")");
  return src;
}

RowMap embedding_row_map(const TransformState& old_state, const TransformState& new_state, const std::string& feature) {
  RowMap map;
  const int i = feature_index(old_state, feature), j = feature_index(new_state, feature);
  if (j < 0) {
    map.reason = "its input is not a feature of this run's transform";
    return map;
  }
  if (i < 0) {
    map.reason = "its input is not a feature of the warm-start model's transform";
    return map;
  }
  const FeatureColumn &of = old_state.spec().features(i), &nf = new_state.spec().features(j);
  const int64_t rows = new_state.features(j).id_space();
  if (is_vocabulary(nf)) {
    if (!is_vocabulary(of)) {
      map.reason = "it was not a vocabulary feature in the warm-start model";
      return map;
    }
    const auto& old_vocab = old_state.features(i).categorical().vocabulary();
    const auto& new_vocab = new_state.features(j).categorical().vocabulary();
    std::unordered_map<std::string, int64_t> old_id;
    for (int k = 0; k < old_vocab.size(); ++k) old_id.emplace(old_vocab[k], k);
    map.old_row.assign(static_cast<size_t>(rows), -1);
    for (int k = 0; k < new_vocab.size(); ++k) {
      auto it = old_id.find(new_vocab[k]);
      if (it == old_id.end()) {
        ++map.fresh;
        continue;
      }
      map.old_row[static_cast<size_t>(k)] = it->second;
      ++(it->second == k ? map.kept : map.moved);
    }
    map.dropped = old_vocab.size() - map.kept - map.moved;
    // OOV buckets hash the value modulo their count: the same count, the same rows.
    const int64_t oov = nf.categorical().vocabulary().num_oov_buckets();
    if (oov == of.categorical().vocabulary().num_oov_buckets())
      for (int64_t b = 0; b < oov; ++b) map.old_row[static_cast<size_t>(new_vocab.size() + b)] = old_vocab.size() + b;
    return map;
  }
  if (!same_ids(old_state, i, new_state, j)) {
    map.reason = "its configuration changed";
    return map;
  }
  // A cross hashes its components' ids: they must keep their meaning too.
  for (const std::string& c : nf.crossed().columns()) {
    const int ci = feature_index(old_state, c), cj = feature_index(new_state, c);
    if (ci < 0 || cj < 0 || !same_ids(old_state, ci, new_state, cj)) {
      map.reason = str_cat("its component '", c, "' gives other ids now (a cross hashes its components' ids)");
      return map;
    }
  }
  map.old_row.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) map.old_row[static_cast<size_t>(r)] = r;
  map.kept = rows;
  return map;
}

WarmStartReport warm_start(Model<float>& model, const ModelSpec& spec, const std::optional<TransformState>& state,
                           const WarmStartSource& source) {
  // The earlier model, rebuilt on the host from its spec and loaded with its weights.
  Model<float> old(source.model, Stream::cpu());
  load_model_weights(old, source.weights, str_cat("warm_start_from: ", source.what));
  WarmStartReport report;
  auto& params = model.params();
  const Stream& s = params.stream();
  for (int h = 0; h < params.size(); ++h) {
    const std::string name = model.param_name(h);
    const ParamInfo& info = params.info(h);
    const int oh = old.find_param(name);
    auto afresh = [&](const std::string& why) {
      report.warnings.push_back(str_cat(name, ": ", why, "; initialised afresh"));
      ++report.reinitialized;
    };
    if (oh < 0) {
      afresh("not in the warm-start model");
      continue;
    }
    const Tensor from = old.params().tensor(oh);
    if (info.kind != ParamKind::embedding) {
      if (from.shape() != info.shape) {
        afresh(str_cat("shape ", from.shape().to_string(), " in the warm-start model, ", info.shape.to_string(),
                       " now (its input changed)"));
        continue;
      }
      copy_sync(s, params.tensor(h), from);
      ++report.carried;
      continue;
    }
    // An embedding table: its rows follow the ids of its input feature.
    const std::string layer = name.substr(0, name.find('/'));
    std::string feature;
    for (const LayerSpec& l : spec.layers())
      if (l.name() == layer && l.inputs_size() == 1) feature = l.inputs(0);
    const int64_t dim = info.shape[1];
    if (from.shape()[1] != dim) {
      afresh(str_cat("width ", from.shape()[1], " in the warm-start model, ", dim, " now"));
      continue;
    }
    RowMap map;
    if (state && source.state && !feature.empty()) {
      map = embedding_row_map(*source.state, *state, feature);
    } else if (from.shape() == info.shape) {
      for (int64_t r = 0; r < info.shape[0]; ++r) map.old_row.push_back(r);
    } else {
      map.reason = str_cat("shape ", from.shape().to_string(), " in the warm-start model, ", info.shape.to_string(), " now");
    }
    if (map.old_row.empty()) {
      afresh(str_cat("its input '", feature, "': ", map.reason));
      continue;
    }
    Tensor table = to_host(s, params.tensor(h));
    const float* src = from.data<float>();
    float* dst = table.data<float>();
    const int64_t old_rows = from.shape()[0];
    for (size_t r = 0; r < map.old_row.size(); ++r) {
      const int64_t o = map.old_row[r];
      if (o >= 0 && o < old_rows)
        std::memcpy(dst + static_cast<int64_t>(r) * dim, src + o * dim, static_cast<size_t>(dim) * sizeof(float));
    }
    copy_sync(s, params.tensor(h), table);
    if (map.moved || map.fresh || map.dropped) {
      ++report.remapped;
      report.notes.push_back(str_cat(name, " (", feature, "): ", map.kept + map.moved,
                                     " tokens kept their rows (", map.moved, " at new ids), ", map.fresh, " new, ",
                                     map.dropped, " left the vocabulary"));
    } else {
      ++report.carried;
    }
  }
  return report;
}

}  // namespace kiln::models
