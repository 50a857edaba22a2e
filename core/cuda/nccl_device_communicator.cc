// NCCL behind the DeviceCommunicator interface (core/device_communicator.h).
#include "core/cuda/nccl_device_communicator.h"

#include "core/cuda/nccl_communicator.h"
#include "core/cuda/stream.h"
#include "core/error.h"

namespace kiln::cuda {

namespace {

class NcclDeviceCommunicator final : public DeviceCommunicator {
 public:
  NcclDeviceCommunicator(Communicator& host, int device) : nccl_(host, device) {}
  int rank() const override { return nccl_.rank(); }
  int size() const override { return nccl_.size(); }
  void all_reduce_sum(const Stream& s, float* data, int64_t n) override {
    KILN_CHECK(s.device().is_cuda(), "the NCCL communicator got a stream of ", s.device().to_string());
    if (n > 0) nccl_.all_reduce_sum(data, n, raw(s));
  }
  void all_gather(const Stream& s, const void* send, void* recv, int64_t bytes_per_rank) override {
    KILN_CHECK(s.device().is_cuda(), "the NCCL communicator got a stream of ", s.device().to_string());
    if (bytes_per_rank > 0) nccl_.all_gather(send, recv, bytes_per_rank, raw(s));
  }

 private:
  NcclCommunicator nccl_;
};

}  // namespace

std::unique_ptr<DeviceCommunicator> make_nccl_device_communicator(Communicator& host, int device) {
  return std::make_unique<NcclDeviceCommunicator>(host, device);
}

}  // namespace kiln::cuda
