#pragma once
// Data-parallel gradient exchange for one training step (docs/distributed.md).
//
// Dense gradients live in one flat buffer laid out in layer order, and backward runs layers last
// to first, so the buffer becomes final from the top down. It is cut into contiguous buckets from
// the top; a communication thread all-reduces each bucket as soon as backward has passed it, and
// finish() waits only for what is left (PyTorch DDP's bucketing, Horovod's background thread).
// Row-sparse embedding gradients are exchanged after backward, each table by all-gather of
// (ids, rows) or by an all-reduce of a table-sized buffer, whichever moves fewer bytes; all tables
// go in one fused all-gather plus one fused all-reduce. Every rank ends with the
// same summed gradients, in the same order, so the replicas stay bit-identical.
//
// Callers scale their gradients by local rows / global rows before the sum, so the result is the
// gradient of the mean loss over the global batch.
//
// On a device (parameters on sim or CUDA) the dense buckets are summed by a DeviceCommunicator
// (NCCL; the sim's stand-in in CI) on a stream of their own, each queued behind an event that
// marks its gradients final on the compute stream, so the all-reduce overlaps backward with no
// host thread; the compute stream waits for the last one. The sparse exchange and the state
// averaging run on device buffers too, through the same communicator on the compute stream: an
// all-gather of (ids, rows) padded to the largest count, merged on the device in the host
// merge's order, or the table-sized all-reduce; only the per-table counts cross the host.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/communicator.h"
#include "core/device_communicator.h"
#include "core/device_memory.h"
#include "models/param_registry.h"
#include "proto/train_config.pb.h"

namespace kiln::models {

struct GradientSyncStats {
  int64_t steps = 0;
  int64_t buckets_per_step = 0;
  int64_t threaded_buckets = 0;    // of those, reduced on the communication thread
  double dense_bytes_per_step = 0;
  double sparse_bytes = 0;         // this rank's part of the sparse exchanges and state, all steps
  double comm_seconds = 0;         // inside dense all-reduces, all steps
  double exposed_seconds = 0;      // of those, time backward had already finished (waited for)
  double sparse_seconds = 0;       // sparse exchange and state averaging
  int64_t sparse_dense_steps = 0;   // table exchanges done as a dense all-reduce
  int64_t sparse_gather_steps = 0;  // ... and as an all-gather
  int64_t sparse_device_steps = 0;  // of both, exchanged on device buffers by the device communicator
};

class GradientSync {
 public:
  GradientSync(Communicator& comm, ParamRegistry<float>& params, const DistributedConfig& config);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Before backward.
  void begin_step();
  // From backward (Model::backward's callback): dense gradients at [offset, n) are final.
  void dense_final_from(int64_t offset);
  // After backward: completes the dense all-reduce, exchanges the sparse gradients, and averages
  // the non-trainable state (batch-norm statistics) over the ranks.
  void finish_step();

  const GradientSyncStats& stats() const { return stats_; }

 private:
  struct Bucket {
    int64_t begin, end;
  };
  void comm_loop();
  void reduce_bucket(size_t b);
  void exchange_sparse_and_state();
  void exchange_sparse_and_state_on_device();
  // Whether table `handle` goes as a dense all-reduce this step, `rows_over_ranks` rows in all.
  bool exchange_as_dense(int handle, int64_t rows_over_ranks) const;
  // Device mode: queues the all-reduce of every bucket at or above `offset` not queued yet.
  void queue_device_buckets(int64_t offset);

  Communicator& comm_;
  ParamRegistry<float>& params_;
  DistributedConfig config_;
  std::vector<Bucket> buckets_;  // top of the buffer first
  size_t threaded_buckets_ = 0;  // buckets [0, this) go to the communication thread

  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t final_from_ = 0;   // dense gradients at [final_from_, n) are final
  size_t next_bucket_ = 0;   // the next bucket to all-reduce
  size_t done_buckets_ = 0;  // buckets all-reduced this step
  bool in_step_ = false, stop_ = false;
  std::exception_ptr error_;  // from the communication thread, rethrown by finish_step
  std::thread thread_;

  std::vector<float> fused_;  // dense-exchanged tables and the state, all-reduced together
  GradientSyncStats stats_;

  // Device mode.
  bool on_device_ = false;
  std::unique_ptr<DeviceCommunicator> device_comm_;
  std::unique_ptr<DeviceStream> comm_stream_;
  std::unique_ptr<DeviceEvent> ready_, reduced_;
  size_t device_next_ = 0;  // the next bucket to queue this step
  // Device scratch of the sparse exchange, kept from step to step: the all-gather's buffers, the
  // dense tables with the state, the merged counts.
  Tensor gather_send_, gather_recv_, device_fused_, merged_counts_;
};

}  // namespace kiln::models
