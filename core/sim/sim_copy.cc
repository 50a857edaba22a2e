#include "core/sim/sim_copy.h"

#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"

namespace kiln::sim {
namespace {

// The host side of a copy: a real address (or nothing to copy).
void check_host(const char* op, const char* role, const void* host, size_t bytes) {
  if (is_sim_pointer(host))
    fail("sim ", op, ": the ", role, " ", host, " is sim device memory, not host memory (wrong copy direction?)");
  if (!host && bytes > 0) fail("sim ", op, ": the ", role, " is null for a copy of ", bytes, " bytes");
}

// The device side: must be inside one live allocation now (checked again when the task runs).
void check_device(const void* device, size_t bytes) { sim_memory().untag(device, bytes); }

}  // namespace

void copy_host_to_device_async(SimStream& stream, void* device_dst, const void* host_src, size_t bytes) {
  check_host("copy_host_to_device_async", "source", host_src, bytes);
  check_device(device_dst, bytes);
  stream.enqueue_copy([=] {
    if (bytes > 0) std::memcpy(sim_memory().untag(device_dst, bytes), host_src, bytes);
  });
}

void copy_device_to_host_async(SimStream& stream, void* host_dst, const void* device_src, size_t bytes) {
  check_host("copy_device_to_host_async", "destination", host_dst, bytes);
  check_device(device_src, bytes);
  stream.enqueue_copy([=] {
    if (bytes > 0) std::memcpy(host_dst, sim_memory().untag(device_src, bytes), bytes);
  });
}

void copy_device_to_device_async(SimStream& stream, void* device_dst, const void* device_src, size_t bytes) {
  check_device(device_dst, bytes);
  check_device(device_src, bytes);
  const auto dst = reinterpret_cast<uintptr_t>(device_dst), src = reinterpret_cast<uintptr_t>(device_src);
  if (bytes > 0 && dst < src + bytes && src < dst + bytes)
    fail("sim copy_device_to_device_async: ", bytes, "-byte ranges at ", device_src, " and ", device_dst, " overlap");
  stream.enqueue_copy([=] {
    if (bytes > 0) std::memcpy(sim_memory().untag(device_dst, bytes), sim_memory().untag(device_src, bytes), bytes);
  });
}

void memset_async(SimStream& stream, void* device_dst, int value, size_t bytes) {
  check_device(device_dst, bytes);
  stream.enqueue_copy([=] {
    if (bytes > 0) std::memset(sim_memory().untag(device_dst, bytes), value, bytes);
  });
}

void free_async(SimStream& stream, void* device_ptr) {
  if (!device_ptr) return;
  check_device(device_ptr, 0);
  stream.enqueue_control([=] { sim_memory().free(device_ptr); });
}

}  // namespace kiln::sim
