#pragma once
// Stream-ordered copies, fills and frees on the sim device (cudaMemcpyAsync, cudaMemsetAsync,
// cudaFreeAsync). Each call checks its arguments at once (directions, bounds, liveness, overlap)
// and throws there; the data moves only when the stream reaches the task, which checks the device
// ranges again, so a block freed in between fails at the next synchronize(). Host memory is read
// or written at that later moment too: a host buffer rewritten before the stream passed its copy
// sends the new bytes, and a destination read before synchronize() still holds its old bytes, as
// with CUDA copies from and to pinned memory. Host buffers must outlive the stream's use of them.
#include <cstddef>

namespace kiln::sim {

class SimStream;

void copy_host_to_device_async(SimStream& stream, void* device_dst, const void* host_src, size_t bytes);
void copy_device_to_host_async(SimStream& stream, void* host_dst, const void* device_src, size_t bytes);
// Also between sim devices (they share one arena). The ranges must not overlap.
void copy_device_to_device_async(SimStream& stream, void* device_dst, const void* device_src, size_t bytes);
// Sets `bytes` bytes to (unsigned char)value.
void memset_async(SimStream& stream, void* device_dst, int value, size_t bytes);
// Frees the allocation starting at `device_ptr` (sim_memory().free) when the stream gets there:
// tasks queued before it still see the data. Runs even after an earlier task failed.
void free_async(SimStream& stream, void* device_ptr);

}  // namespace kiln::sim
