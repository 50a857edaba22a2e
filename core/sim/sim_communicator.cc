// The sim device's stand-in for NCCL (core/device_communicator.h).
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/device_communicator.h"
#include "core/error.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"

namespace kiln {

namespace {

// What a collective's output holds while the collective runs: a reader that did not wait for it
// sees NaN (the sim's allocation poison), not plausible old values.
void poison(void* host, size_t bytes) {
  auto* p = static_cast<unsigned char*>(host);
  for (size_t i = 0; i + 1 < bytes; i += 2) std::memcpy(p + i, &sim::kAllocPoison, 2);
}

class SimCommunicator final : public DeviceCommunicator {
 public:
  // The collectives run on a duplicate of `host` (its own MPI communicator) from the stream's
  // worker thread, so they never match the host's own collectives, which the main thread may
  // call meanwhile. Without one (MPI without MPI_THREAD_MULTIPLE), on `host` from the calling
  // thread after the stream has drained: the same result, but a missing wait goes unseen.
  explicit SimCommunicator(Communicator& host) : host_(host), device_(host.duplicate()) {}
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }

  void all_reduce_sum(const Stream& s, float* data, int64_t n) override {
    KILN_CHECK(s.device().is_sim(), "the sim communicator got a stream of ", s.device().to_string());
    if (n <= 0) return;
    const auto count = static_cast<size_t>(n);
    sim::sim_memory().untag_array(data, count);  // checked now, and again when it runs
    if (!device_) {
      s.synchronize();
      host_.all_reduce_sum(sim::sim_memory().untag_array(data, count), n);
      return;
    }
    // In stream order, as NCCL queues its kernel: the collective's output is in flux until the
    // task has run, so a reader on another stream must wait for an event recorded after it.
    sim::SimStream::from(s).enqueue([comm = device_, data, n, count] {
      float* buffer = sim::sim_memory().untag_array(data, count);
      std::vector<float> mine(buffer, buffer + count);
      poison(buffer, count * sizeof(float));
      comm->all_reduce_sum(mine.data(), n);
      std::memcpy(buffer, mine.data(), count * sizeof(float));
    });
  }

  void all_gather(const Stream& s, const void* send, void* recv, int64_t bytes_per_rank) override {
    KILN_CHECK(s.device().is_sim(), "the sim communicator got a stream of ", s.device().to_string());
    if (bytes_per_rank <= 0) return;
    const auto bytes = static_cast<size_t>(bytes_per_rank);
    const auto ranks = static_cast<size_t>(size());
    sim::sim_memory().untag(send, bytes);
    sim::sim_memory().untag(recv, bytes * ranks);
    auto gather = [send, recv, bytes, ranks](Communicator& comm) {
      const auto* mine = static_cast<const char*>(sim::sim_memory().untag(send, bytes));
      std::string sent(mine, bytes);
      auto* out = static_cast<char*>(sim::sim_memory().untag(recv, bytes * ranks));
      poison(out, bytes * ranks);
      std::vector<std::string> all = comm.all_gather(sent);
      for (size_t r = 0; r < all.size(); ++r) {
        KILN_CHECK(all[r].size() == bytes, "all_gather: rank ", r, " sent ", all[r].size(), " bytes, this rank ", bytes);
        std::memcpy(out + r * bytes, all[r].data(), bytes);
      }
    };
    if (!device_) {
      s.synchronize();
      gather(host_);
      return;
    }
    sim::SimStream::from(s).enqueue([comm = device_, gather] { gather(*comm); });
  }

 private:
  Communicator& host_;
  // Shared with the queued tasks: a stream may outlive this communicator.
  std::shared_ptr<Communicator> device_;
};

}  // namespace

std::unique_ptr<DeviceCommunicator> make_sim_communicator(Communicator& host) {
  return std::make_unique<SimCommunicator>(host);
}

}  // namespace kiln
