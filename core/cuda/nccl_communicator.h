#pragma once
// Collectives over device buffers for data-parallel training on GPUs: one rank per GPU, NCCL
// for the data, the host Communicator (MPI under mpirun/srun) only to hand rank 0's NCCL unique
// id to every rank. Calls are enqueued on a stream and return at once; synchronize() waits and
// turns a dead or hung peer into an error naming this rank instead of a hang.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/communicator.h"

typedef struct ncclComm* ncclComm_t;

namespace kiln::cuda {

class NcclCommunicator {
 public:
  // Every rank of `host` calls this with its own device; it blocks until all ranks joined. The
  // calling thread's current device is left as it was.
  NcclCommunicator(Communicator& host, int device);
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int device() const { return device_; }

  // In place, element-wise sum over the ranks.
  void all_reduce_sum(float* data, int64_t n, cudaStream_t stream);
  // Rank `root`'s bytes overwrite every other rank's.
  void broadcast(void* data, int64_t bytes, int root, cudaStream_t stream);
  // recv holds size() x bytes_per_rank: rank r's send bytes at r x bytes_per_rank.
  void all_gather(const void* send, void* recv, int64_t bytes_per_rank, cudaStream_t stream);
  // Waits for `stream`. An asynchronous NCCL error, or no completion within `timeout_s` (a peer
  // died or hangs inside a collective), aborts the NCCL communicator and throws naming the rank.
  // Returns with no CUDA error pending (cudaGetLastError() is cudaSuccess).
  void synchronize(cudaStream_t stream, double timeout_s);

 private:
  std::string who() const;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0, size_ = 1, device_ = 0;
};

}  // namespace kiln::cuda
