// The whole model path on the sim device against the CPU: a graph with every layer kind (conv,
// batch norm, pooling, flatten, dense with GELU, dropout, an embedding over ids, concat, a value
// with two consumers), forward, head, backward and two optimizer steps, with stream jitter so a
// missing synchronisation shows up as a wrong value. The sim runs the CPU kernels in stream
// order, so every result must be bit-identical.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>

#include <cstring>
#include <memory>
#include <vector>

#include "core/device_memory.h"
#include "core/philox.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"
#include "models/head.h"
#include "models/input_staging.h"
#include "models/model.h"
#include "models/optimizer.h"

namespace kiln::models {
namespace {

constexpr const char* kSpec = R"pb(
  inputs { name: "image" shape: [6, 6, 2] }
  inputs { name: "tokens" kind: IDS shape: [11] }
  layers { name: "conv" conv2d { filters: 4 kernel: 3 } inputs: "image" }
  layers { name: "bn" batch_norm {} }
  layers { name: "act" activation { type: RELU } }
  layers { name: "pool" max_pool2d { pool: 2 } }
  layers { name: "flat" flatten {} }
  layers { name: "hidden" dense { units: 8 activation: GELU } }
  layers { name: "drop" dropout { rate: 0.25 } }
  layers { name: "emb" embedding { dim: 3 combiner: MEAN } inputs: "tokens" }
  layers { name: "both" concat {} inputs: ["drop", "emb", "hidden"] }
  layers { name: "logits" dense { units: 5 } }
  head { type: MULTICLASS num_classes: 5 }
)pb";

struct Batch {
  Tensor image, ids, offsets, labels;
  int64_t nnz = 0;
};

Batch make_batch(int64_t batch, uint64_t seed) {
  PhiloxGenerator rng(seed, 1);
  Batch b;
  b.image = Tensor::empty(Shape{batch, 6, 6, 2}, DType::f32);
  for (int64_t i = 0; i < b.image.numel(); ++i) b.image.data<float>()[i] = static_cast<float>(rng.normal());
  b.offsets = Tensor::empty(Shape{batch + 1}, DType::i64);
  std::vector<int64_t> ids;
  b.offsets.data<int64_t>()[0] = 0;
  for (int64_t r = 0; r < batch; ++r) {
    const int64_t n = 1 + static_cast<int64_t>(rng.uniform() * 3);
    for (int64_t k = 0; k < n; ++k) ids.push_back(static_cast<int64_t>(rng.uniform() * 11) % 11);
    b.offsets.data<int64_t>()[r + 1] = static_cast<int64_t>(ids.size());
  }
  b.nnz = static_cast<int64_t>(ids.size());
  b.ids = Tensor::empty(Shape{b.nnz}, DType::i64);
  std::memcpy(b.ids.raw(), ids.data(), ids.size() * sizeof(int64_t));
  b.labels = Tensor::empty(Shape{batch}, DType::i32);
  for (int64_t r = 0; r < batch; ++r) b.labels.data<int32_t>()[r] = static_cast<int32_t>(r % 5);
  return b;
}

// What one run leaves: losses per step, the weights, the state and the last gradients, on the host.
struct Outcome {
  std::vector<double> losses;
  Tensor dense, state, grads, table;
};

Outcome train(const Device& device, int steps) {
  ModelSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(kSpec, &spec));
  DeviceStream stream(device);
  const Stream& s = stream.view();
  Model<float> model(spec, s);
  model.initialize(3);
  Head<float> head(spec.head(), model.output_shape());
  OptimizerConfig oc;
  oc.set_type(OptimizerConfig::ADAM);
  oc.set_learning_rate(0.01f);
  oc.set_clip_global_norm(0.5f);
  Optimizer opt(oc, model.params());
  InputStaging staging(s);
  Outcome out;
  Tensor dout;
  for (int step = 0; step < steps; ++step) {
    // Batches of changing size: buffers grow and shrink under queued work.
    const int64_t batch = step % 2 ? 7 : 12;
    Batch b = make_batch(batch, 100 + step);
    std::vector<Tensor> staged = staging.stage({b.image, b.ids, b.offsets, b.labels});
    Context ctx{s, batch, true, 9, step};
    std::vector<Value> inputs{{staged[0], Tensor()}, {staged[1], staged[2], b.nnz}};
    const Tensor& y = model.forward(ctx, inputs);
    if (!dout.defined()) dout = Tensor::empty(Shape{12, 5}, DType::f32, device);
    Tensor d = dout.view(0, y.shape());
    out.losses.push_back(head.loss(s, y, staged[3], batch, &d));
    model.backward(ctx, d);
    staging.release();
    opt.step(s, 0.01f);
  }
  out.dense = to_host(s, model.params().dense_values());
  out.state = to_host(s, model.params().state_values());
  out.grads = to_host(s, model.params().dense_grads());
  out.table = to_host(s, model.params().embedding_table(model.find_param("emb/table")));
  s.synchronize();
  return out;
}

void expect_same_bits(const Tensor& a, const Tensor& b, const char* what) {
  ASSERT_EQ(a.bytes(), b.bytes()) << what;
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.bytes()), 0) << what << " differ between cpu and sim";
}

TEST(SimModel, EveryLayerTrainsBitIdenticallyToTheCpu) {
  sim::set_sim_jitter(sim::SimJitter{17, 50});
  const Outcome cpu = train(Device::cpu(), 4);
  const Outcome sim = train(Device::sim(), 4);
  sim::set_sim_jitter(std::nullopt);
  ASSERT_EQ(cpu.losses.size(), sim.losses.size());
  for (size_t i = 0; i < cpu.losses.size(); ++i) EXPECT_EQ(cpu.losses[i], sim.losses[i]) << "step " << i;
  expect_same_bits(cpu.dense, sim.dense, "weights");
  expect_same_bits(cpu.state, sim.state, "batch-norm statistics");
  expect_same_bits(cpu.grads, sim.grads, "gradients");
  expect_same_bits(cpu.table, sim.table, "embedding table");
  EXPECT_TRUE(sim.dense.device().is_cpu());
}

TEST(SimModel, AHostReadOfAStagedInputIsCaught) {
  // Staged inputs are sim memory: the host cannot read them, and a kernel reading a freed block
  // fails the stream instead of computing on stale data.
  DeviceStream stream(Device::sim());
  InputStaging staging(stream.view());
  Tensor host = Tensor::zeros(Shape{4}, DType::f32);
  std::vector<Tensor> staged = staging.stage({host});
  EXPECT_TRUE(staged[0].device().is_sim());
  EXPECT_TRUE(sim::is_sim_pointer(staged[0].raw()));
  const Tensor back = to_host(stream.view(), staged[0]);
  EXPECT_EQ(std::memcmp(back.raw(), host.raw(), host.bytes()), 0);
  staging.release();
}

}  // namespace
}  // namespace kiln::models
