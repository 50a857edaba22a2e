// The sim device's stand-in for NCCL (core/device_communicator.h).
#include <cstring>
#include <string>
#include <vector>

#include "core/device_communicator.h"
#include "core/error.h"
#include "core/sim/sim_memory.h"

namespace kiln {

namespace {

class SimCommunicator final : public DeviceCommunicator {
 public:
  explicit SimCommunicator(Communicator& host) : host_(host) {}
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }

  void all_reduce_sum(const Stream& s, float* data, int64_t n) override {
    KILN_CHECK(s.device().is_sim(), "the sim communicator got a stream of ", s.device().to_string());
    if (n <= 0) return;
    // Stream order: everything queued before the collective has run. The host communicator is
    // called from this thread only, so MPI sees one caller at a time.
    s.synchronize();
    host_.all_reduce_sum(sim::sim_memory().untag_array(data, static_cast<size_t>(n)), n);
  }

  void all_gather(const Stream& s, const void* send, void* recv, int64_t bytes_per_rank) override {
    KILN_CHECK(s.device().is_sim(), "the sim communicator got a stream of ", s.device().to_string());
    if (bytes_per_rank <= 0) return;
    const auto bytes = static_cast<size_t>(bytes_per_rank);
    s.synchronize();
    const auto* mine = static_cast<const char*>(sim::sim_memory().untag(send, bytes));
    std::vector<std::string> all = host_.all_gather(std::string(mine, bytes));
    auto* out = static_cast<char*>(sim::sim_memory().untag(recv, bytes * all.size()));
    for (size_t r = 0; r < all.size(); ++r) {
      KILN_CHECK(all[r].size() == bytes, "all_gather: rank ", r, " sent ", all[r].size(), " bytes, this rank ", bytes);
      std::memcpy(out + r * bytes, all[r].data(), bytes);
    }
  }

 private:
  Communicator& host_;
};

}  // namespace

std::unique_ptr<DeviceCommunicator> make_sim_communicator(Communicator& host) {
  return std::make_unique<SimCommunicator>(host);
}

}  // namespace kiln
