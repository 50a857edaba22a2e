#include "models/training_data.h"

#include <filesystem>

#include "core/error.h"
#include "io/idx.h"

namespace kiln::models {

namespace {

void require_file(const std::string& field, const std::string& path) {
  if (path.empty()) fail(field, " is not set");
  if (!std::filesystem::is_regular_file(path)) fail(field, ": file not found: ", path);
}

std::shared_ptr<const io::ExampleSource> idx_source(const IdxData& idx, const std::string& images_field,
                                                    const std::string& images, const std::string& labels_field,
                                                    const std::string& labels, int64_t max_examples,
                                                    const ModelSpec& model) {
  require_file(images_field, images);
  require_file(labels_field, labels);
  io::ImageDataset ds = io::read_idx_dataset(images, labels);
  Tensor x = ds.images, y = ds.labels;
  if (max_examples > 0 && max_examples < x.dim(0)) {
    x = x.slice_rows(0, max_examples);
    y = y.slice_rows(0, max_examples);
  }
  // IDX images are [n, h, w] or [n, h, w, 1]; the model sees [h, w, 1].
  Shape per_example = x.shape().drop_batch();
  if (per_example.rank() == 2) per_example = Shape{per_example[0], per_example[1], 1};
  x = x.reshape(per_example.with_batch(x.dim(0)));
  if (model.inputs_size() != 1 || model.inputs(0).kind() != InputSpec::DENSE)
    fail("model.inputs: IDX image data feeds exactly one DENSE input");
  Shape want(std::vector<int64_t>(model.inputs(0).shape().begin(), model.inputs(0).shape().end()));
  if (want != per_example)
    fail("model.inputs[0].shape is ", want.to_string(), " but ", images_field, " holds images of shape ",
         per_example.to_string());
  std::vector<io::ArraySource::Column> columns;
  columns.push_back({x, true, idx.pixel_scale()});
  columns.push_back({y, false, 1.0f});
  return std::make_shared<io::ArraySource>(std::move(columns));
}

}  // namespace

TrainingData load_training_data(const TrainConfig& config, bool need_train) {
  TrainingData data;
  const DataConfig& d = config.data();
  switch (d.source_case()) {
    case DataConfig::kIdx: {
      const IdxData& idx = d.idx();
      if (need_train)
        data.train = idx_source(idx, "data.idx.train_images", idx.train_images(), "data.idx.train_labels",
                                idx.train_labels(), idx.max_train_examples(), config.model());
      if (!idx.eval_images().empty() || !idx.eval_labels().empty())
        data.eval = idx_source(idx, "data.idx.eval_images", idx.eval_images(), "data.idx.eval_labels",
                               idx.eval_labels(), idx.max_eval_examples(), config.model());
      break;
    }
    case DataConfig::SOURCE_NOT_SET: fail("data: no data source set (e.g. data { idx { train_images: ... } })");
  }
  return data;
}

}  // namespace kiln::models
