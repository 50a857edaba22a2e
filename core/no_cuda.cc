// Stand-ins for the CUDA backend's entry points in a build without CUDA.
#include "core/allocator.h"
#include "core/device.h"
#include "core/device_choice.h"
#include "core/device_memory_backend.h"
#include "core/error.h"

namespace kiln {

int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "this build of kiln has no CUDA backend"; }
Allocator* cuda_allocator(int) { return nullptr; }
void synchronize_cuda_stream(void*) { fail("this build of kiln has no CUDA backend"); }

}  // namespace kiln

namespace kiln::cuda_memory {
namespace {
[[noreturn]] void not_built() { fail("this build of kiln has no CUDA backend"); }
}  // namespace
void set_current_device(int) { not_built(); }
void* stream_create(int) { not_built(); }
void stream_destroy(void*) {}
void* event_create(int) { not_built(); }
void event_destroy(void*) {}
void event_record(void*, void*) { not_built(); }
void event_make_wait(void*, void*) { not_built(); }
void event_synchronize(void*) { not_built(); }
void copy_async(void*, const void*, size_t, void*) { not_built(); }
void copy_rows_async(void*, size_t, const void*, size_t, size_t, size_t, void*) { not_built(); }
void memset_async(void*, int, size_t, void*) { not_built(); }
Allocator& pinned_allocator() { not_built(); }
void graph_begin_capture(int, void*) { not_built(); }
void* graph_end_capture(int, void*) { not_built(); }
void graph_launch(void*, void*) { not_built(); }
void graph_destroy(void*) {}
}  // namespace kiln::cuda_memory
