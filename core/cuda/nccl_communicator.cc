#include "core/cuda/nccl_communicator.h"

#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/cuda/check.h"
#include "core/cuda/device_guard.h"
#include "core/error.h"

namespace kiln::cuda {

namespace {
// Counts above 2^31 go in pieces (NCCL takes size_t, but one call per 2 GiB keeps a hang's
// timeout meaningful and matches the MPI path).
constexpr int64_t kMaxElements = int64_t{1} << 29;
}  // namespace

#define KILN_NCCL_CHECK(expr)                                                                          \
  do {                                                                                                 \
    ncclResult_t kiln_nccl_ = (expr);                                                                  \
    if (kiln_nccl_ != ncclSuccess && kiln_nccl_ != ncclInProgress)                                     \
      ::kiln::fail(who(), ": ", #expr, " failed: ", ncclGetErrorString(kiln_nccl_), " (", \
                   ncclGetLastError(comm_), ")");                                                      \
  } while (0)

NcclCommunicator::NcclCommunicator(Communicator& host, int device)
    : rank_(host.rank()), size_(host.size()), device_(device) {
  // NCCL binds the communicator to the current device; the caller's device is restored after.
  const DeviceGuard guard(device);
  ncclUniqueId id{};
  if (rank_ == 0) KILN_NCCL_CHECK(ncclGetUniqueId(&id));
  host.broadcast_in_place(&id, sizeof id, 0);
  KILN_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_) ncclCommDestroy(comm_);
}

std::string NcclCommunicator::who() const {
  return "rank " + std::to_string(rank_) + "/" + std::to_string(size_) + " (GPU " + std::to_string(device_) + ")";
}

void NcclCommunicator::all_reduce_sum(float* data, int64_t n, cudaStream_t stream) {
  for (int64_t done = 0; done < n; done += kMaxElements) {
    size_t count = static_cast<size_t>(std::min(n - done, kMaxElements));
    KILN_NCCL_CHECK(ncclAllReduce(data + done, data + done, count, ncclFloat32, ncclSum, comm_, stream));
  }
}

void NcclCommunicator::broadcast(void* data, int64_t bytes, int root, cudaStream_t stream) {
  char* p = static_cast<char*>(data);
  for (int64_t done = 0; done < bytes; done += kMaxElements) {
    size_t count = static_cast<size_t>(std::min(bytes - done, kMaxElements));
    KILN_NCCL_CHECK(ncclBroadcast(p + done, p + done, count, ncclUint8, root, comm_, stream));
  }
}

void NcclCommunicator::all_gather(const void* send, void* recv, int64_t bytes_per_rank, cudaStream_t stream) {
  KILN_CHECK(bytes_per_rank <= kMaxElements, "all_gather of ", bytes_per_rank, " bytes per rank is too large");
  KILN_NCCL_CHECK(ncclAllGather(send, recv, static_cast<size_t>(bytes_per_rank), ncclUint8, comm_, stream));
}

void NcclCommunicator::synchronize(cudaStream_t stream, double timeout_s) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    cudaError_t done = cudaStreamQuery(stream);
    if (done == cudaSuccess) {
      // The polls that found the stream busy left cudaErrorNotReady as the thread's last error;
      // clear it, or the next cudaGetLastError (a launch check) reports it as a failure.
      cudaGetLastError();
      return;
    }
    if (done != cudaErrorNotReady) KILN_CUDA_CHECK(done);
    ncclResult_t async = ncclSuccess;
    KILN_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (async != ncclSuccess || (timeout_s > 0 && waited > timeout_s)) {
      // Abort, not destroy: destroy would wait for the collective that never finishes.
      ncclCommAbort(comm_);
      comm_ = nullptr;
      if (async != ncclSuccess) fail(who(), ": NCCL reported ", ncclGetErrorString(async), " during a collective");
      fail(who(), ": a NCCL collective has not completed after ", static_cast<int>(waited),
           " s: another rank has died or stopped responding");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace kiln::cuda
