#pragma once
// Collectives over device memory for data parallelism on a device, queued in the order of a
// stream. On CUDA the NCCL communicator (core/cuda/nccl_communicator.h, in kiln_nccl); on the sim
// device the host Communicator (MPI under mpirun) standing in for NCCL, so 2-rank data parallelism
// on a device runs in CI without a GPU. The sim one runs each collective as a task of the stream,
// in stream order, on its worker thread (over a duplicate of the host communicator), its output
// poisoned until the data arrive: a consumer on another stream that does not wait for an event
// recorded after the collective reads NaN, as it would read garbage from NCCL.
#include <cstdint>
#include <memory>

#include "core/communicator.h"
#include "core/stream.h"

namespace kiln {

class DeviceCommunicator {
 public:
  virtual ~DeviceCommunicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place, the element-wise sum over the ranks of n floats of device memory at `data`, after
  // the work queued on `s` so far; later work on `s` sees the sum.
  virtual void all_reduce_sum(const Stream& s, float* data, int64_t n) = 0;
  // `recv` (device memory, size() x bytes_per_rank bytes) receives every rank's `bytes_per_rank`
  // bytes at `send`, rank r's at r x bytes_per_rank, after the work queued on `s` so far.
  virtual void all_gather(const Stream& s, const void* send, void* recv, int64_t bytes_per_rank) = 0;
};

// The sim device's: `host` (its ranks) does the data movement.
std::unique_ptr<DeviceCommunicator> make_sim_communicator(Communicator& host);

}  // namespace kiln
