// The sim's stand-in for NCCL (core/device_communicator.h): a collective is a task of its stream,
// so a consumer on another stream that skips the event wait reads the collective's poison, as
// SimEvent.WithoutTheEventTheConsumerReadsPoison shows for copies. The host ranks are faked: two
// ranks with the same data, whose collective waits for the test to let it finish. CTest label: sim.
#include <gtest/gtest.h>

#include <cmath>
#include <latch>
#include <memory>
#include <string>
#include <vector>

#include "core/communicator.h"
#include "core/device_communicator.h"
#include "core/sim/sim_copy.h"
#include "core/sim/sim_event.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"

namespace kiln::sim {
namespace {

// The peer rank: `entered` opens when this rank's collective has started, and the collective
// waits for `arrive`, as it waits for its peer.
struct Peer {
  std::latch entered{1}, arrive{1};
};

// Two ranks holding the same data: a sum doubles it.
class TwoEqualRanks final : public Communicator {
 public:
  explicit TwoEqualRanks(std::shared_ptr<Peer> peer) : peer_(std::move(peer)) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void barrier() override {}
  std::vector<std::string> all_gather(const std::string& bytes) override {
    meet();
    return {bytes, bytes};
  }
  std::string broadcast(const std::string& bytes, int) override { return bytes; }
  void all_reduce_sum(double*, int64_t) override {}
  void all_reduce_sum(int64_t*, int64_t) override {}
  void all_reduce_sum(float* data, int64_t n) override {
    meet();
    for (int64_t i = 0; i < n; ++i) data[i] *= 2;
  }
  void broadcast_in_place(void*, int64_t, int) override {}
  [[noreturn]] void abort(int) override { std::abort(); }
  std::unique_ptr<Communicator> duplicate() override { return std::make_unique<TwoEqualRanks>(peer_); }

 private:
  void meet() {
    peer_->entered.count_down();
    peer_->arrive.wait();
  }
  std::shared_ptr<Peer> peer_;
};

struct TwoRankStreams {
  std::shared_ptr<Peer> peer = std::make_shared<Peer>();
  TwoEqualRanks host{peer};
  std::unique_ptr<DeviceCommunicator> comm = make_sim_communicator(host);
  SimStream compute, comm_stream;
  float* grads = static_cast<float*>(sim_memory().allocate(4 * sizeof(float)));
  std::vector<float> out = std::vector<float>(4, 0.0f);
  TwoRankStreams() {
    const std::vector<float> in{1, 2, 3, 4};
    copy_host_to_device_async(compute, grads, in.data(), 4 * sizeof(float));
    compute.synchronize();
  }
  ~TwoRankStreams() {
    if (!peer->arrive.try_wait()) peer->arrive.count_down();
    comm_stream.synchronize();
    compute.synchronize();
    sim_memory().free(grads);
  }
};

TEST(SimCommunicator, WithoutTheEventTheComputeStreamReadsTheCollectivesPoison) {
  TwoRankStreams t;
  // GradientSync::finish_step's pattern minus its wait on `reduced_`: the all-reduce queued on the
  // communication stream, the result read on the compute stream at once.
  t.comm->all_reduce_sum(t.comm_stream.view(), t.grads, 4);
  t.peer->entered.wait();  // the collective runs (and waits for its peer): deterministic, no timing
  copy_device_to_host_async(t.compute, t.out.data(), t.grads, 4 * sizeof(float));
  t.compute.synchronize();
  for (float v : t.out) EXPECT_TRUE(std::isnan(v)) << v;
  t.peer->arrive.count_down();
  t.comm_stream.synchronize();
}

TEST(SimCommunicator, WithTheEventTheComputeStreamReadsTheSum) {
  TwoRankStreams t;
  t.comm->all_reduce_sum(t.comm_stream.view(), t.grads, 4);
  SimEvent reduced;
  reduced.record(t.comm_stream);
  wait_on_event(t.compute, reduced);
  copy_device_to_host_async(t.compute, t.out.data(), t.grads, 4 * sizeof(float));
  EXPECT_FALSE(t.compute.idle()) << "the copy waits for the collective";
  t.peer->arrive.count_down();
  t.compute.synchronize();
  EXPECT_EQ(t.out, (std::vector<float>{2, 4, 6, 8}));
}

TEST(SimCommunicator, AllGatherRunsInStreamOrderToo) {
  TwoRankStreams t;
  float* all = static_cast<float*>(sim_memory().allocate(8 * sizeof(float)));
  t.comm->all_gather(t.comm_stream.view(), t.grads, all, 4 * sizeof(float));
  t.peer->entered.wait();
  std::vector<float> gathered(8, 0.0f);
  copy_device_to_host_async(t.compute, gathered.data(), all, 8 * sizeof(float));
  t.compute.synchronize();
  for (float v : gathered) EXPECT_TRUE(std::isnan(v)) << v;
  t.peer->arrive.count_down();
  t.comm_stream.synchronize();
  copy_device_to_host_async(t.compute, gathered.data(), all, 8 * sizeof(float));
  t.compute.synchronize();
  EXPECT_EQ(gathered, (std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4}));
  sim_memory().free(all);
}

}  // namespace
}  // namespace kiln::sim
